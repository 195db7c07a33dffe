// Registry behaviours docker-registry cannot produce, against a fake registry on 127.0.0.1.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { localImage, pullImage, type PullOptions } from "../../../src/image/pull.ts";
import { tmp } from "../../helpers/silo.ts";
import { fakeRegistry, freshHome, removeHomes, makeImage, makeIndex, withChildren, type TestImage } from "./_registry.ts";

// Incompressible, so the layer is big enough to cut, stall and resume in the middle.
const image = makeImage([[{ name: "etc/hello", data: "hello from the fake registry\n" }, { name: "bin/big", data: crypto.getRandomValues(new Uint8Array(300_000)) }]]);
const layerDigest = [...image.blobs.keys()][0]!;
const layerBytes = image.blobs.get(layerDigest)!;
const fast: PullOptions = { quiet: true, backoffMs: 5, attempts: 4, timeoutMs: 2000 };
const servers: { stop(): void }[] = [];
afterAll(() => {
  servers.forEach((s) => s.stop());
  removeHomes();
});

function serve(intercept?: Parameters<typeof fakeRegistry>[1], repos: Record<string, Record<string, TestImage>> = { "test/img": { "1": image } }) {
  const f = fakeRegistry(repos, intercept);
  servers.push(f);
  return f;
}

const readHello = (rootfs: string) => readFileSync(join(rootfs, "etc/hello"), "utf8");
const errorOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string; hint?: string };
  }
  throw new Error("expected the pull to fail");
};

describe("authentication", () => {
  test("the anonymous bearer-token dance", async () => {
    let tokenCalls = 0;
    const f = serve((req, url) => {
      if (url.pathname === "/token") {
        tokenCalls++;
        expect(url.searchParams.get("service")).toBe("fake-registry");
        expect(url.searchParams.get("scope")).toBe("repository:test/img:pull");
        return Response.json({ token: "tok-123" });
      }
      if (url.pathname.startsWith("/v2/") && req.headers.get("authorization") !== "Bearer tok-123")
        return new Response("{}", {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="${f.base}/token",service="fake-registry",scope="repository:test/img:pull"` },
        });
    });
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() });
    expect(readHello(r.rootfs)).toBe("hello from the fake registry\n");
    expect(tokenCalls).toBe(1); // the token is reused for the config and layer requests
  });

  test("credentials from Docker's config.json go to the token service", async () => {
    const dir = tmp();
    const cfg = join(dir, "config.json");
    const f = serve((req, url) => {
      if (url.pathname === "/token") {
        if (req.headers.get("authorization") !== `Basic ${btoa("alice:s3cret")}`) return new Response("no", { status: 401 });
        return Response.json({ access_token: "alice-token" });
      }
      if (req.headers.get("authorization") !== "Bearer alice-token")
        return new Response("{}", { status: 401, headers: { "www-authenticate": `Bearer realm="${f.base}/token",service="x"` } });
    });
    writeFileSync(cfg, JSON.stringify({ auths: { [f.host]: { auth: btoa("alice:s3cret") } } }));
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome(), dockerConfig: cfg });
    expect(readHello(r.rootfs)).toContain("hello");
    writeFileSync(cfg, JSON.stringify({ auths: { [f.host]: { auth: btoa("alice:wrong") } } }));
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome(), dockerConfig: cfg }));
    expect(e.message).toContain("401");
    expect(e.hint).toContain("were not accepted");
  });

  test("basic auth", async () => {
    const dir = tmp();
    const cfg = join(dir, "config.json");
    const f = serve((req) => {
      if (req.headers.get("authorization") !== `Basic ${btoa("bob:pw")}`) return new Response("{}", { status: 401, headers: { "www-authenticate": 'Basic realm="fake"' } });
    });
    writeFileSync(cfg, JSON.stringify({ auths: { [`http://${f.host}`]: { username: "bob", password: "pw" } } }));
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome(), dockerConfig: cfg });
    expect(readHello(r.rootfs)).toContain("hello");
  });

  test("401 without credentials says what to do", async () => {
    const f = serve(() => new Response("{}", { status: 401, headers: { "www-authenticate": 'Basic realm="fake"' } }));
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome(), dockerConfig: "/nonexistent" }));
    expect(e.message).toMatch(/refused access to test\/img \(401 unauthorized\)/);
    expect(e.hint).toContain("docker login");
  });

  test("403", async () => {
    const f = serve(() => new Response("{}", { status: 403 }));
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() }));
    expect(e.message).toContain("403 forbidden");
  });
});

describe("registry errors", () => {
  test("404 names the tag and lists the tags the registry has", async () => {
    const f = serve(undefined, { "test/img": { "1": image, "1.1": image, "2": image } });
    const e = await errorOf(pullImage(`${f.host}/test/img:3`, { ...fast, home: freshHome() }));
    expect(e.message).toMatch(/not found.*no manifest for `3`/);
    expect(e.hint).toContain("1, 1.1, 2");
  });

  test("500 then success", async () => {
    let n = 0;
    const f = serve((_req, url) => (url.pathname.includes("/manifests/") && n++ < 2 ? new Response("boom", { status: 500 }) : undefined));
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() });
    expect(readHello(r.rootfs)).toContain("hello");
    expect(f.log.filter((l) => l.path.includes("/manifests/1")).length).toBe(3);
  });

  test("500 forever gives up with a clear error", async () => {
    const f = serve(() => new Response("boom", { status: 503 }));
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() }));
    expect(e.message).toContain("failed with 503");
    expect(f.log.filter((l) => l.path.includes("/manifests/")).length).toBe(4);
  });

  test("429 honours Retry-After", async () => {
    let n = 0;
    const f = serve((_req, url) => (url.pathname.includes("/blobs/") && n++ === 0 ? new Response("slow down", { status: 429, headers: { "retry-after": "0" } }) : undefined));
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() });
    expect(readHello(r.rootfs)).toContain("hello");
    expect(n).toBeGreaterThan(1);
  });

  test("a registry that never answers times out", async () => {
    const f = serve(async () => {
      await Bun.sleep(3000);
      return new Response("late");
    });
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, attempts: 2, timeoutMs: 300, home: freshHome() }));
    expect(e.message).toMatch(/timed out after 0\.3 s/);
    expect(e.code).toBe("E_NETWORK");
  });

  test("nothing listening", async () => {
    const f = serve();
    f.stop();
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() }));
    expect(e.message).toMatch(/connection refused/);
  });

  test("a mirror that is down falls back to the registry itself", async () => {
    const f = serve();
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome(), mirrors: { [f.host]: "http://127.0.0.1:1" } });
    expect(readHello(r.rootfs)).toContain("hello");
  });
});

describe("verification and resume", () => {
  test("a blob that does not match its digest is refused and leaves nothing behind", async () => {
    const bad = layerBytes.slice();
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff;
    const f = serve((_req, url) => (url.pathname.endsWith(layerDigest) ? new Response(bad) : undefined));
    const home = freshHome();
    const e = await errorOf(pullImage(`${f.host}/test/img:1`, { ...fast, home }));
    expect(e.message).toContain("digest mismatch");
    expect(f.log.filter((l) => l.path.endsWith(layerDigest)).length).toBe(2); // one fresh retry, then the error
    expect(existsSync(join(home.images, "blobs/sha256", layerDigest.slice(7)))).toBe(false);
    expect(readdirSync(join(home.images, "tmp")).filter((n) => n.endsWith(".partial"))).toEqual([]);
    expect(existsSync(home.rootfs) ? readdirSync(home.rootfs) : []).toEqual([]);
  });

  test("a manifest that does not match the pinned digest is refused", async () => {
    const other = makeImage([[{ name: "x", data: "y" }]]);
    const f = serve((_req, url) => (url.pathname.includes(`/manifests/${image.digest}`) ? new Response(other.manifest, { headers: { "content-type": other.mediaType } }) : undefined));
    const e = await errorOf(pullImage(`${f.host}/test/img@${image.digest}`, { ...fast, home: freshHome() }));
    expect(e.message).toContain("does not match its digest");
  });

  test("a connection cut mid-blob resumes with a Range request", async () => {
    let first = true;
    const f = serve((req, url) => {
      if (!url.pathname.endsWith(layerDigest) || req.headers.get("range") || !first) return undefined;
      first = false;
      const half = layerBytes.subarray(0, layerBytes.length >> 1);
      const body = new ReadableStream({
        start(c) {
          c.enqueue(half);
          c.close(); // short of the Content-Length it announced
        },
      });
      return new Response(body, { headers: { "content-length": String(layerBytes.length) } });
    });
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home: freshHome() });
    expect(readHello(r.rootfs)).toContain("hello");
    const gets = f.log.filter((l) => l.path.endsWith(layerDigest));
    expect(gets.length).toBe(2);
    expect(gets[1]!.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  test("a partial download left by an earlier run is resumed, not restarted", async () => {
    const f = serve();
    const home = freshHome();
    mkdirSync(join(home.images, "tmp"), { recursive: true });
    const have = 1000;
    writeFileSync(join(home.images, "tmp", `${layerDigest.slice(7)}.partial`), layerBytes.subarray(0, have));
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home });
    expect(readHello(r.rootfs)).toContain("hello");
    expect(f.log.find((l) => l.path.endsWith(layerDigest))!.headers.range).toBe(`bytes=${have}-`);
  });

  test("a stalled body times out and resumes", async () => {
    let first = true;
    const f = serve((req, url) => {
      if (!url.pathname.endsWith(layerDigest) || !first) return undefined;
      first = false;
      const body = new ReadableStream({
        async pull(c) {
          c.enqueue(layerBytes.subarray(0, 5000));
          await Bun.sleep(5000); // then nothing: the idle timeout must fire
        },
      });
      return new Response(body, { headers: { "content-length": String(layerBytes.length) } });
    });
    const r = await pullImage(`${f.host}/test/img:1`, { ...fast, timeoutMs: 400, home: freshHome() });
    expect(readHello(r.rootfs)).toContain("hello");
    expect(f.log.filter((l) => l.path.endsWith(layerDigest))[1]!.headers.range).toBe("bytes=5000-");
  });

  test("a damaged blob in the store is detected and fetched again", async () => {
    const f = serve();
    const home = freshHome();
    const first = await pullImage(`${f.host}/test/img:1`, { ...fast, home });
    const { removeRootfs } = await import("../../../src/image/local.ts");
    removeRootfs(first.digest, home);
    const path = join(home.images, "blobs/sha256", layerDigest.slice(7));
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    writeFileSync(path, bytes);
    const again = await pullImage(`${f.host}/test/img:1`, { ...fast, home });
    expect(readHello(again.rootfs)).toContain("hello");
    expect(f.log.filter((l) => l.path.endsWith(layerDigest)).length).toBe(2);
    expect(new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex")).toBe(layerDigest.slice(7));
  });
});

describe("image formats", () => {
  test("an index: the host's platform, or the one asked for", async () => {
    const amd = makeImage([[{ name: "etc/hello", data: "amd64\n" }]], { arch: "amd64" });
    const arm = makeImage([[{ name: "etc/hello", data: "arm64\n" }]], { arch: "arm64" });
    const index = withChildren(
      makeIndex([
        { image: amd, platform: { os: "linux", architecture: "amd64" } },
        { image: arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      ]),
      [amd, arm],
    );
    const f = serve(undefined, { "test/multi": { latest: index } });
    const home = freshHome();
    const a = await pullImage(`${f.host}/test/multi`, { ...fast, home, platform: "linux/amd64" });
    expect(readHello(a.rootfs)).toBe("amd64\n");
    expect(a.digest).toBe(amd.digest);
    const b = await pullImage(`${f.host}/test/multi`, { ...fast, home, platform: "linux/arm64" });
    expect(readHello(b.rootfs)).toBe("arm64\n");
    const e = await errorOf(pullImage(`${f.host}/test/multi`, { ...fast, home, platform: "linux/riscv64" }));
    expect(e.message).toContain("no image for linux/riscv64");
    expect(e.hint).toContain("linux/amd64, linux/arm64/v8");
  });

  test("zstd and uncompressed layers", async () => {
    const zst = makeImage([[{ name: "etc/hello", data: "zstd\n" }]], { compress: (l) => Bun.zstdCompressSync(require("../../unit/image/_tarball.ts").makeTar(l)), layerMediaType: "application/vnd.oci.image.layer.v1.tar+zstd" });
    const raw = makeImage([[{ name: "etc/hello", data: "raw\n" }]], { compress: (l) => require("../../unit/image/_tarball.ts").makeTar(l), layerMediaType: "application/vnd.oci.image.layer.v1.tar" });
    const f = serve(undefined, { "test/zst": { "1": zst }, "test/raw": { "1": raw } });
    const home = freshHome();
    expect(readHello((await pullImage(`${f.host}/test/zst:1`, { ...fast, home })).rootfs)).toBe("zstd\n");
    expect(readHello((await pullImage(`${f.host}/test/raw:1`, { ...fast, home })).rootfs)).toBe("raw\n");
  });

  test("foreign layers are refused", async () => {
    const foreign = makeImage([[{ name: "x", data: "y" }]], { layerMediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", extraLayerFields: { urls: ["https://example.invalid/layer"] } });
    const f = serve(undefined, { "test/win": { "1": foreign } });
    const e = await errorOf(pullImage(`${f.host}/test/win:1`, { ...fast, home: freshHome() }));
    expect(e.message).toContain("foreign");
    expect(f.log.some((l) => l.path.includes("/blobs/"))).toBe(false);
  });

  test("an image whose layers attack the host is unpacked inside its rootfs only", async () => {
    const outside = tmp("silo-outside-");
    writeFileSync(join(outside, "canary"), "untouched");
    const evil = makeImage([
      [{ name: "link", type: "symlink", linkname: outside }, { name: "link/canary", data: "pwned" }, { name: `../../../../../..${outside}/new`, data: "x" }],
      [{ name: "link/.wh.canary", data: "" }, { name: "h", type: "hardlink", linkname: `${outside}/canary` }],
    ]);
    const f = serve(undefined, { "test/evil": { "1": evil } });
    const e = await errorOf(pullImage(`${f.host}/test/evil:1`, { ...fast, home: freshHome() }));
    expect(e.message).toContain("hard-links"); // the hard link to a host path found nothing inside the rootfs
    expect(readdirSync(outside)).toEqual(["canary"]);
    expect(readFileSync(join(outside, "canary"), "utf8")).toBe("untouched");
  });
});

test("localImage needs no network and no database", async () => {
  const f = serve();
  const home = freshHome();
  const r = await pullImage(`${f.host}/test/img:1`, { ...fast, home });
  f.stop();
  const local = localImage(r.digest, home);
  expect(local).toEqual({ rootfs: r.rootfs, config: r.config });
  expect(local!.config.env).toContain("TEST=1");
  expect(localImage(`sha256:${"0".repeat(64)}`, home)).toBeNull();
});
