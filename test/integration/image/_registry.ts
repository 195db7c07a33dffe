/**
 * Test registries: pushing synthetic images to the real fixture registry, and a fake OCI registry on
 * Bun.serve (127.0.0.1) for the failure modes docker-registry cannot produce (token auth, 429, 500-then-200,
 * stalls, cut connections, corrupted blobs). Every fake request is logged so tests can count them.
 */
import { homePaths } from "../../../src/core/paths.ts";
import { removeTree } from "../../../src/core/fs.ts";
import { gzipTar, type TEntry } from "../../unit/image/_tarball.ts";
import { fixtureRegistry, tmp } from "../../helpers/silo.ts";

export const sha = (b: Uint8Array | string) => `sha256:${new Bun.CryptoHasher("sha256").update(b).digest("hex")}`;
const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

export interface TestImage {
  manifest: Uint8Array;
  digest: string;
  mediaType: string;
  blobs: Map<string, Uint8Array>;
}

/** An OCI image from layers of tar entries (gzip), with an image config. */
export function makeImage(layers: TEntry[][], opts: { arch?: string; cmd?: string[]; layerMediaType?: string; compress?: (tar: TEntry[]) => Uint8Array; extraLayerFields?: Record<string, unknown> } = {}): TestImage {
  const blobs = new Map<string, Uint8Array>();
  const descs = layers.map((l) => {
    const bytes = (opts.compress ?? gzipTar)(l);
    const digest = sha(bytes);
    blobs.set(digest, bytes);
    return { mediaType: opts.layerMediaType ?? LAYER_GZIP, digest, size: bytes.length, ...opts.extraLayerFields };
  });
  const config = json({ architecture: opts.arch ?? "amd64", os: "linux", config: { Env: ["PATH=/bin", "TEST=1"], Cmd: opts.cmd ?? ["sh"] }, rootfs: { type: "layers", diff_ids: [] } });
  blobs.set(sha(config), config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
    layers: descs,
  });
  return { manifest, digest: sha(manifest), mediaType: OCI_MANIFEST, blobs };
}

/** An index over images, one per platform. */
export function makeIndex(images: { image: TestImage; platform: { os: string; architecture: string; variant?: string } }[]): TestImage {
  const manifest = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((i) => ({ mediaType: i.image.mediaType, digest: i.image.digest, size: i.image.manifest.length, platform: i.platform })),
  });
  const blobs = new Map<string, Uint8Array>();
  for (const i of images) for (const [d, b] of i.image.blobs) blobs.set(d, b);
  return { manifest, digest: sha(manifest), mediaType: OCI_INDEX, blobs };
}

/** Push an image to the real fixture registry (blob uploads, then the manifest under `tag`). */
export async function pushToRegistry(repo: string, tag: string, image: TestImage, children: TestImage[] = [], base = fixtureRegistry) {
  for (const img of [...children, image]) {
    for (const [digest, bytes] of img.blobs) {
      const head = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
      if (head.ok) continue;
      const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
      if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
      const loc = new URL(start.headers.get("location")!, base);
      loc.searchParams.set("digest", digest);
      const put = await fetch(loc, { method: "PUT", body: bytes, headers: { "content-type": "application/octet-stream" } });
      if (put.status !== 201) throw new Error(`blob put ${digest}: ${put.status} ${await put.text()}`);
    }
    const ref = img === image ? tag : img.digest;
    const put = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: "PUT", body: img.manifest, headers: { "content-type": img.mediaType } });
    if (put.status !== 201) throw new Error(`manifest put ${repo}:${ref}: ${put.status} ${await put.text()}`);
  }
}

export interface LoggedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

type Handler = (req: Request, url: URL, log: LoggedRequest[]) => Response | Promise<Response> | undefined | Promise<Response | undefined>;

/**
 * A fake registry serving `repos` (repo → tag → image). `intercept` runs first and may answer instead
 * (return undefined to fall through to the normal behaviour).
 */
export function fakeRegistry(repos: Record<string, Record<string, TestImage>>, intercept?: Handler) {
  const log: LoggedRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 30,
    async fetch(req) {
      const url = new URL(req.url);
      log.push({ method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers) });
      const own = await intercept?.(req, url, log);
      if (own) return own;
      return serveRegistry(repos, req, url);
    },
  });
  return { server, log, base: `http://127.0.0.1:${server.port}`, host: `127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

export function serveRegistry(repos: Record<string, Record<string, TestImage>>, req: Request, url: URL): Response {
  if (url.pathname === "/v2/") return Response.json({});
  const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.+)$/.exec(url.pathname);
  if (!m) return new Response("not found", { status: 404 });
  const [, repo, kind, ref] = m;
  const images = repos[repo!];
  if (!images) return Response.json({ errors: [{ code: "NAME_UNKNOWN" }] }, { status: 404 });
  const all = Object.values(images);
  if (kind === "tags") return Response.json({ name: repo, tags: Object.keys(images) });
  if (kind === "manifests") {
    const img = images[ref!] ?? all.flatMap((i) => [i, ...childrenOf(i)]).find((i) => i.digest === ref);
    if (!img) return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN" }] }, { status: 404 });
    return new Response(img.manifest, { headers: { "content-type": img.mediaType, "docker-content-digest": img.digest } });
  }
  const blob = all.map((i) => i.blobs.get(ref!)).find(Boolean);
  if (!blob) return Response.json({ errors: [{ code: "BLOB_UNKNOWN" }] }, { status: 404 });
  const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
  if (range) {
    const from = Number(range[1]);
    return new Response(blob.subarray(from), { status: 206, headers: { "content-range": `bytes ${from}-${blob.length - 1}/${blob.length}` } });
  }
  return new Response(blob);
}

/** Images referenced by an index are served by digest too (kept on the index object). */
const children = new WeakMap<TestImage, TestImage[]>();
export function withChildren(index: TestImage, kids: TestImage[]): TestImage {
  children.set(index, kids);
  return index;
}
const childrenOf = (i: TestImage) => children.get(i) ?? [];

const homes: string[] = [];
/** A fresh SILO_HOME (paths) with no config: tests pass mirrors to pullImage directly. */
export function freshHome() {
  const h = homePaths(tmp("silo-home-"));
  homes.push(h.home);
  return h;
}
/** Remove the homes made by freshHome (call in afterAll: an unpacked python image is 330 MB). */
export function removeHomes() {
  for (const h of homes.splice(0)) removeTree(h);
}
