import { SiloError } from "../core/errors.ts";
import { isDigest } from "./ref.ts";

/** What silo needs from an image config to start a tool. */
export interface ImageConfig {
  env: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir?: string;
  user?: string;
}

export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** Accept header for manifest GETs: every format silo reads, newest first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(", ");

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  platform?: Platform;
}
export type Compression = "gzip" | "zstd" | "none";
export interface Layer extends Descriptor {
  compression: Compression;
}
export type ParsedManifest =
  | { kind: "index"; manifests: Descriptor[] }
  | { kind: "image"; mediaType: string; config: Descriptor; layers: Layer[] };

const invalid = (what: string, why: string) =>
  new SiloError("E_IMAGE", `${what} is not a valid image manifest: ${why}`, "the registry sent something silo cannot read; try again, or report the image");

function checkDescriptor(d: unknown, what: string): Descriptor {
  const o = d as Descriptor;
  if (!o || typeof o !== "object") throw invalid(what, "a descriptor is not an object");
  if (typeof o.digest !== "string" || !isDigest(o.digest))
    throw invalid(what, `unsupported or malformed digest ${JSON.stringify(o.digest)} (silo verifies sha256)`);
  if (!Number.isSafeInteger(o.size) || o.size < 0) throw invalid(what, `bad size for ${o.digest}`);
  if (typeof o.mediaType !== "string") throw invalid(what, `no mediaType for ${o.digest}`);
  return o;
}

/** The compression a layer's media type announces; foreign (non-distributable) layers are refused. */
export function layerCompression(d: Descriptor, what: string): Compression {
  const mt = d.mediaType;
  if (d.urls?.length || mt.includes("foreign") || mt.includes("nondistributable"))
    throw new SiloError(
      "E_IMAGE",
      `${what} has a foreign (non-distributable) layer ${d.digest.slice(0, 19)} (${mt})`,
      "such layers are fetched from third-party URLs and cannot be verified by the registry; silo runs Linux images only",
    );
  if (mt.endsWith("+gzip") || mt.endsWith(".tar.gzip")) return "gzip";
  if (mt.endsWith("+zstd")) return "zstd";
  if (mt.endsWith(".tar") || mt === "application/vnd.docker.image.rootfs.diff.tar") return "none";
  throw invalid(what, `unknown layer media type ${mt}`);
}

/** Parse a manifest or index; `contentType` is the response header, used when the body has no mediaType. */
export function parseManifest(bytes: Uint8Array, contentType: string, what: string): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw invalid(what, "it is not JSON");
  }
  const mt = (typeof doc.mediaType === "string" ? doc.mediaType : contentType.split(";")[0]!.trim()) || "";
  if (doc.schemaVersion === 1 || mt === MEDIA.dockerSchema1 || mt === MEDIA.dockerSchema1Signed)
    throw new SiloError("E_IMAGE", `${what} uses Docker schema 1, which silo does not read`, "push the image again with a current Docker or skopeo (schema 2 / OCI)");
  if (doc.schemaVersion !== 2) throw invalid(what, `schemaVersion ${String(doc.schemaVersion)}`);
  if (Array.isArray(doc.manifests) && (mt === MEDIA.ociIndex || mt === MEDIA.dockerList || !doc.layers))
    return { kind: "index", manifests: doc.manifests.map((m) => checkDescriptor(m, what)) };
  if (!Array.isArray(doc.layers)) throw invalid(what, "it has no layers");
  const config = checkDescriptor(doc.config, what);
  const layers = doc.layers.map((l) => {
    const d = checkDescriptor(l, what);
    return { ...d, compression: layerCompression(d, what) };
  });
  return { kind: "image", mediaType: mt || MEDIA.ociManifest, config, layers };
}

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

/** `linux/amd64` for this machine (images are Linux images on every host OS: macOS runs them in a VM). */
export function hostPlatform(): string {
  const arch = ARCH[process.arch] ?? process.arch;
  return arch === "arm" ? "linux/arm/v7" : `linux/${arch}`;
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) throw new SiloError("E_USAGE", `invalid platform \`${s}\``, "write it as os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8");
  return { os, architecture, variant: variant || undefined };
}

export const formatPlatform = (p: Platform) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;

/** Pick the manifest for `wanted` from an index; arm64's variant v8 is implied when absent. */
export function choosePlatform(manifests: Descriptor[], wanted: Platform, what: string): Descriptor {
  const norm = (p: Platform) => ({ ...p, variant: p.architecture === "arm64" && !p.variant ? "v8" : p.variant });
  const w = norm(wanted);
  const candidates = manifests.filter((m) => m.platform && m.platform.os === w.os && m.platform.architecture === w.architecture);
  // With a variant only that variant; without one, prefer the plain entry, else any variant.
  const pick = w.variant
    ? candidates.find((m) => norm(m.platform!).variant === w.variant)
    : (candidates.find((m) => !m.platform!.variant) ?? candidates[0]);
  if (pick) return pick;
  const have = manifests
    .map((m) => m.platform)
    .filter((p): p is Platform => !!p && p.os !== "unknown")
    .map(formatPlatform);
  throw new SiloError(
    "E_IMAGE",
    `${what} has no image for ${formatPlatform(wanted)}`,
    have.length ? `it has: ${have.join(", ")}; pick one with --platform` : "the image index lists no platforms",
  );
}

/** The fields of an OCI/Docker image config that a sandbox needs. */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfig {
  let doc: { config?: Record<string, unknown>; os?: string };
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new SiloError("E_IMAGE", `the config of ${what} is not JSON`);
  }
  const c = doc.config ?? {};
  const strings = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined);
  const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
  return {
    env: strings(c.Env) ?? [],
    cmd: strings(c.Cmd),
    entrypoint: strings(c.Entrypoint),
    workingDir: str(c.WorkingDir),
    user: str(c.User),
  };
}
