// Pulls from the real fixture registry (Debian's docker-registry with images from scripts/fixtures/build.sh).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { digestForRef, listImages, listLayers, openDb } from "../../../src/cache/db.ts";
import { exportExt4, localImage, pullImage, removeRootfs } from "../../../src/image/pull.ts";
import { hostPlatform } from "../../../src/image/manifest.ts";
import { fixtureRegistry } from "../../helpers/silo.ts";
import { freshHome, makeImage, pushToRegistry, removeHomes } from "./_registry.ts";

const mirrors = { "docker.io": fixtureRegistry };
const home = freshHome();
afterAll(removeHomes);

beforeAll(async () => {
  const r = await fetch(`${fixtureRegistry}/v2/`).catch(() => null);
  if (!r?.ok) throw new Error(`the fixture registry at ${fixtureRegistry} is not running: bash scripts/fixtures/build.sh`);
});

describe("python:3.11-slim from the fixture registry", () => {
  let pulled: Awaited<ReturnType<typeof pullImage>>;
  beforeAll(async () => {
    pulled = await pullImage("python:3.11-slim", { home, mirrors, quiet: true });
  });

  test("a complete rootfs with the image's config", () => {
    expect(pulled.ref).toBe("docker.io/library/python:3.11-slim");
    expect(pulled.rootfs).toBe(join(home.rootfs, pulled.digest.slice(7)));
    expect(statSync(join(pulled.rootfs, "usr/bin/python3")).isFile() || lstatSync(join(pulled.rootfs, "usr/bin/python3")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(pulled.rootfs, "usr/local/bin/python"))).toBe("/usr/bin/python3");
    expect(existsSync(join(pulled.rootfs, "usr/lib/python3/dist-packages/pytest"))).toBe(true);
    expect(pulled.config.cmd).toEqual(["python3"]);
    expect(pulled.config.env.some((e) => e.startsWith("PATH="))).toBe(true);
    expect(pulled.sizes.download).toBeGreaterThan(10_000_000);
    expect(pulled.sizes.unpacked).toBeGreaterThan(pulled.sizes.download);
    // no temp directories or partial downloads left behind
    expect(readdirSync(home.rootfs).filter((n) => n.startsWith("."))).toEqual([]);
    expect(readdirSync(join(home.images, "tmp")).filter((n) => n.endsWith(".partial"))).toEqual([]);
  });

  test("python runs from it", () => {
    const p = Bun.spawnSync(["bwrap", "--ro-bind", pulled.rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all", "--", "/usr/local/bin/python", "-c", "import sys, pytest; print(sys.version_info[:2])"]);
    expect(p.stderr.toString()).toBe("");
    expect(p.stdout.toString().trim()).toBe("(3, 11)");
  });

  test("the index records the ref, the manifest and its layers", () => {
    const db = openDb(home);
    expect(digestForRef(db, pulled.ref, hostPlatform())).toBe(pulled.digest);
    const img = listImages(db).find((i) => i.digest === pulled.digest)!;
    expect(img.refs).toContain(pulled.ref);
    expect(img.unpackedSize).toBe(pulled.sizes.unpacked);
    expect(listLayers(db).filter((l) => l.users > 0).length).toBeGreaterThanOrEqual(2);
  });

  test("a second pull reuses the rootfs; another tag of the same image too", async () => {
    const again = await pullImage("python:3.11-slim", { home, mirrors, quiet: true });
    expect(again.cached).toBe(true);
    expect(again.rootfs).toBe(pulled.rootfs);
    const other = await pullImage("python:3.12-slim", { home, mirrors, quiet: true });
    expect(other.digest).toBe(pulled.digest);
    expect(other.cached).toBe(true);
  });

  test("the zstd variant unpacks to the same tree", async () => {
    const z = await pullImage("python:3.11-slim-zstd", { home, mirrors, quiet: true });
    expect(z.digest).not.toBe(pulled.digest);
    const list = (root: string) => {
      const out: string[] = [];
      const walk = (d: string) => {
        for (const n of readdirSync(join(root, d))) {
          const rel = d ? `${d}/${n}` : n;
          const st = lstatSync(join(root, rel));
          out.push(`${rel} ${st.mode} ${st.isFile() ? st.size : 0} ${Math.floor(st.mtimeMs / 1000)}`);
          if (st.isDirectory()) walk(rel);
        }
      };
      walk("");
      return out.sort();
    };
    expect(list(z.rootfs)).toEqual(list(pulled.rootfs));
    expect(z.sizes.unpacked).toBe(pulled.sizes.unpacked);
  });
});

describe("other fixture images", () => {
  test("busybox, and an ext4 image of it for the VM drivers", async () => {
    const b = await pullImage("busybox", { home, mirrors, quiet: true });
    expect(lstatSync(join(b.rootfs, "bin/busybox")).isFile()).toBe(true);
    expect(readlinkSync(join(b.rootfs, "bin/sh"))).toBe("/bin/busybox");
    const img = await exportExt4(b.digest, home);
    expect(img).toBe(join(home.images, "ext4", `${b.digest.slice(7)}.ext4`));
    const ls = Bun.spawnSync(["debugfs", "-R", "ls -l /bin", img], { env: { PATH: "/usr/sbin:/sbin:/usr/bin:/bin" } });
    expect(ls.stdout.toString()).toMatch(/100755 \(1\)\s+\d+\s+\d+\s+\d+ .* busybox/);
    expect(await exportExt4(b.digest, home)).toBe(img); // made once
  });

  test("node:22-slim has the global TypeScript tools", async () => {
    const n = await pullImage("node:22-slim", { home, mirrors, quiet: true });
    expect(readlinkSync(join(n.rootfs, "usr/local/bin/typescript-language-server"))).toContain("typescript-language-server");
    expect(n.config.cmd).toEqual(["node"]);
  });

  test("a multi-platform index pushed to docker-registry", async () => {
    const amd = makeImage([[{ name: "etc/arch", data: "amd64\n" }]], { arch: "amd64" });
    const arm = makeImage([[{ name: "etc/arch", data: "arm64\n" }]], { arch: "arm64" });
    const { makeIndex } = await import("./_registry.ts");
    const index = makeIndex([
      { image: amd, platform: { os: "linux", architecture: "amd64" } },
      { image: arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ]);
    await pushToRegistry("library/silo-multi", "1", index, [amd, arm]);
    const a = await pullImage("silo-multi:1", { home, mirrors, quiet: true, platform: "linux/amd64" });
    const b = await pullImage("silo-multi:1", { home, mirrors, quiet: true, platform: "linux/arm64/v8" });
    expect(readFileSync(join(a.rootfs, "etc/arch"), "utf8")).toBe("amd64\n");
    expect(readFileSync(join(b.rootfs, "etc/arch"), "utf8")).toBe("arm64\n");
  });
});

describe("offline", () => {
  // A proxy in front of the fixture registry that can be switched off: the ref stays the same.
  let up = true;
  const proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (!up) return new Response("gone", { status: 503 });
      const u = new URL(req.url);
      return fetch(`${fixtureRegistry}${u.pathname}${u.search}`, { headers: req.headers, redirect: "manual" });
    },
  });
  afterAll(() => proxy.stop(true));
  const ref = `127.0.0.1:${proxy.port}/library/busybox:latest`;

  test("a tag pulled before still works when its registry is gone", async () => {
    const h = freshHome();
    const first = await pullImage(ref, { home: h, quiet: true });
    proxy.stop(true);
    const second = await pullImage(ref, { home: h, quiet: true, attempts: 1, timeoutMs: 1000 });
    expect(second.digest).toBe(first.digest);
    expect(second.cached).toBe(true);
    up = false;
  });

  test("a digest ref that is here needs no network at all", async () => {
    const h = freshHome();
    const b = await pullImage("busybox", { home: h, mirrors, quiet: true });
    const byDigest = await pullImage(`busybox@${b.digest}`, { home: h, mirrors: { "docker.io": "http://127.0.0.1:1" }, quiet: true, attempts: 1 });
    expect(byDigest.rootfs).toBe(b.rootfs);
  });

  test("a removed rootfs is gone for localImage, and comes back from the blob store", async () => {
    const h = freshHome();
    const b = await pullImage("busybox", { home: h, mirrors, quiet: true });
    removeRootfs(b.digest, h);
    expect(localImage(b.digest, h)).toBeNull();
    const again = await pullImage("busybox", { home: h, mirrors, quiet: true });
    expect(again.cached).toBeUndefined();
    expect(localImage(b.digest, h)?.rootfs).toBe(b.rootfs);
  });
});
