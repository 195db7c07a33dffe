import { describe, expect, test } from "bun:test";
import { choosePlatform, hostPlatform, parseImageConfig, parseManifest, type Descriptor } from "../../../src/image/manifest.ts";

const d = (n: number, platform?: Descriptor["platform"], mediaType = "application/vnd.oci.image.manifest.v1+json"): Descriptor => ({
  mediaType,
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100,
  platform,
});
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

describe("choosePlatform", () => {
  const index = [
    d(1, { os: "linux", architecture: "amd64" }),
    d(2, { os: "linux", architecture: "arm64", variant: "v8" }),
    d(3, { os: "linux", architecture: "arm", variant: "v6" }),
    d(4, { os: "linux", architecture: "arm", variant: "v7" }),
    d(5, { os: "unknown", architecture: "unknown" }),
    d(6, { os: "windows", architecture: "amd64" }),
  ];
  test("picks os/arch", () => expect(choosePlatform(index, { os: "linux", architecture: "amd64" }, "x").digest).toBe(index[0]!.digest));
  test("arm64 without variant matches v8", () => expect(choosePlatform(index, { os: "linux", architecture: "arm64" }, "x").digest).toBe(index[1]!.digest));
  test("variant is honoured", () => expect(choosePlatform(index, { os: "linux", architecture: "arm", variant: "v7" }, "x").digest).toBe(index[3]!.digest));
  test("missing platform lists the others", () => {
    expect(() => choosePlatform(index, { os: "linux", architecture: "s390x" }, "img")).toThrow(/no image for linux\/s390x/);
    try {
      choosePlatform(index, { os: "linux", architecture: "s390x" }, "img");
    } catch (e) {
      expect((e as { hint: string }).hint).toContain("linux/arm64/v8");
      expect((e as { hint: string }).hint).not.toContain("unknown");
    }
  });
  test("host platform is linux/<arch>", () => expect(hostPlatform()).toMatch(/^linux\/(amd64|arm64|arm\/v7|[a-z0-9]+)$/));
});

describe("parseManifest", () => {
  const layer = (mediaType: string, extra = {}) => ({ mediaType, digest: `sha256:${"c".repeat(64)}`, size: 5, ...extra });
  const manifest = (layers: unknown[], mediaType = "application/vnd.docker.distribution.manifest.v2+json") =>
    enc({ schemaVersion: 2, mediaType, config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: `sha256:${"d".repeat(64)}`, size: 9 }, layers });

  test("docker schema2 with gzip layers", () => {
    const m = parseManifest(manifest([layer("application/vnd.docker.image.rootfs.diff.tar.gzip")]), "", "x");
    expect(m.kind).toBe("image");
    if (m.kind === "image") expect(m.layers[0]!.compression).toBe("gzip");
  });
  test("OCI zstd and uncompressed layers", () => {
    const m = parseManifest(manifest([layer("application/vnd.oci.image.layer.v1.tar+zstd"), layer("application/vnd.oci.image.layer.v1.tar")], "application/vnd.oci.image.manifest.v1+json"), "", "x");
    if (m.kind !== "image") throw new Error("not an image");
    expect(m.layers.map((l) => l.compression)).toEqual(["zstd", "none"]);
  });
  test("an index (media type from the header)", () => {
    const m = parseManifest(enc({ schemaVersion: 2, manifests: [d(1, { os: "linux", architecture: "amd64" })] }), "application/vnd.oci.image.index.v1+json", "x");
    expect(m.kind).toBe("index");
  });
  test("foreign layers are refused", () => {
    expect(() => parseManifest(manifest([layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", { urls: ["https://example.com/l"] })]), "", "win")).toThrow(/foreign/);
    expect(() => parseManifest(manifest([layer("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")]), "", "x")).toThrow(/foreign/);
  });
  test("schema 1 is refused with a hint", () => {
    expect(() => parseManifest(enc({ schemaVersion: 1, name: "x", fsLayers: [] }), "application/vnd.docker.distribution.manifest.v1+prettyjws", "old")).toThrow(/schema 1/);
  });
  test("digests are checked before they become file names", () => {
    expect(() => parseManifest(manifest([{ ...layer("application/vnd.oci.image.layer.v1.tar"), digest: "sha256:../../etc/passwd" }]), "", "x")).toThrow(/digest/);
    expect(() => parseManifest(manifest([{ ...layer("application/vnd.oci.image.layer.v1.tar"), digest: `sha512:${"e".repeat(128)}` }]), "", "x")).toThrow(/digest/);
  });
  test("not JSON", () => expect(() => parseManifest(new TextEncoder().encode("<html>"), "text/html", "x")).toThrow(/not JSON/));
});

test("parseImageConfig keeps what a sandbox needs", () => {
  const c = parseImageConfig(enc({ architecture: "amd64", config: { Env: ["PATH=/bin", "LANG=C"], Cmd: ["python3"], WorkingDir: "/app", User: "1000", Entrypoint: null } }), "x");
  expect(c).toEqual({ env: ["PATH=/bin", "LANG=C"], cmd: ["python3"], entrypoint: undefined, workingDir: "/app", user: "1000" });
  expect(parseImageConfig(enc({}), "x")).toEqual({ env: [], cmd: undefined, entrypoint: undefined, workingDir: undefined, user: undefined });
});
