// Where cache mounts live on the host (THREATS.md invariant 6): per project by default, keyed by the
// project root's real path and identity (inode, birth time); shared only when declared; a login file shared only by `silo cache share-login`, then read-only.
import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheMounts, GLOBAL_BUILD_CACHES, projectCacheKey, shareLogin } from "../../../src/app/cache-mounts.ts";
import type { CacheMount } from "../../../src/config/schema.ts";
import { homePaths } from "../../../src/core/paths.ts";
import { tmp } from "../../helpers/silo.ts";

const NPM: CacheMount[] = [
  { name: "npm-index", path: "/root/.npm/_cacache/index-v5" },
  { name: "npm-cacache", path: "/root/.npm/_cacache", scope: "shared" },
  { name: "npm", path: "/root/.npm" },
];
const AGENT: CacheMount[] = [
  { name: "claude", path: "/root/.claude" },
  { name: "credentials", path: "/root/.claude/.credentials.json", scope: "login" },
];

/** A project root: a real directory (the key stats it), by its real path. */
const project = () => realpathSync(tmp("silo-cache-root-"));

describe("cache mounts", () => {
  test("the key: the same for a project, another for each other project and for a directory made anew at the same path", () => {
    const a = project();
    const b = project();
    expect(projectCacheKey(a)).toBe(projectCacheKey(a));
    expect(projectCacheKey(a)).not.toBe(projectCacheKey(b));
    expect(projectCacheKey(a)).toMatch(/^[0-9a-f]{32}$/);
    // Birth time is what tells a recreated directory apart when the inode number comes back (ext4 reuses them).
    expect(statSync(a, { bigint: true }).birthtimeNs).toBeGreaterThan(0n);
    const before = projectCacheKey(a);
    writeFileSync(join(a, "file"), "x"); // a change inside keeps the key
    expect(projectCacheKey(a)).toBe(before);
    rmSync(a, { recursive: true });
    mkdirSync(a);
    expect(projectCacheKey(a)).not.toBe(before);
    expect(GLOBAL_BUILD_CACHES).not.toMatch(/^[0-9a-f]{32}$/);
  });

  test("per project by default, shared when declared, parents mounted before what is nested in them", () => {
    const home = homePaths(tmp());
    const key = projectCacheKey(project());
    const mounts = cacheMounts(home, "node", NPM, key);
    expect(mounts).toEqual([
      { host: join(home.cache, "node/projects", key, "npm"), guest: "/root/.npm", readonly: false, kind: "dir" },
      { host: join(home.cache, "node/npm-cacache"), guest: "/root/.npm/_cacache", readonly: false, kind: "dir" },
      { host: join(home.cache, "node/projects", key, "npm-index"), guest: "/root/.npm/_cacache/index-v5", readonly: false, kind: "dir" },
    ]);
    for (const m of mounts) expect(statSync(m.host).isDirectory()).toBe(true);
    const other = cacheMounts(home, "node", NPM, projectCacheKey(project()));
    expect(other[1]!.host).toBe(mounts[1]!.host);
    expect(other[0]!.host).not.toBe(mounts[0]!.host);
    expect(other[2]!.host).not.toBe(mounts[2]!.host);
    expect(cacheMounts(home, "node", NPM, GLOBAL_BUILD_CACHES)[0]!.host).toBe(join(home.cache, "node/projects/global-build/npm"));
  });

  test("a link a sandbox left where a mount inside a shared cache goes is replaced by a directory", () => {
    const home = homePaths(tmp());
    cacheMounts(home, "node", NPM, projectCacheKey(project()));
    const point = join(home.cache, "node/npm-cacache/index-v5");
    rmSync(point, { recursive: true });
    const elsewhere = tmp();
    symlinkSync(elsewhere, point);
    cacheMounts(home, "node", NPM, projectCacheKey(project()));
    expect(lstatSync(point).isDirectory()).toBe(true);
    expect(existsSync(elsewhere)).toBe(true);
  });

  test("a login file: never adopted by a run; shared only by share-login, then every project's, read-only", () => {
    const home = homePaths(tmp());
    const shared = join(home.cache, "agent/credentials/.credentials.json");
    const [srcA, srcB] = [project(), project()];
    const mountsOf = (root: string) => cacheMounts(home, "agent", AGENT, projectCacheKey(root));
    expect(mountsOf(srcA).map((m) => m.guest)).toEqual(["/root/.claude"]);
    const local = join(home.cache, "agent/projects", projectCacheKey(srcA), "claude/.credentials.json");
    writeFileSync(local, '{"token":"a"}');
    // A project's login stays its own, however many runs: a hostile project's planted token is never shared.
    expect(mountsOf(srcA)).toHaveLength(1);
    expect(mountsOf(srcB)).toHaveLength(1);
    expect(existsSync(shared)).toBe(false);
    // The user shares it deliberately, from the project where they logged in.
    expect(shareLogin(home, "agent", AGENT, srcB)).toBeNull();
    expect(shareLogin(home, "agent", AGENT, srcA)).toBe(shared);
    expect(readFileSync(shared, "utf8")).toBe('{"token":"a"}');
    expect(statSync(shared).mode & 0o777).toBe(0o600);
    expect(mountsOf(srcB)[1]).toEqual({ host: shared, guest: "/root/.claude/.credentials.json", readonly: true, kind: "file" });
    // Once shared, a project's own copy no longer replaces it.
    const localB = join(home.cache, "agent/projects", projectCacheKey(srcB), "claude/.credentials.json");
    writeFileSync(localB, '{"token":"b"}');
    expect(mountsOf(srcB)[1]).toEqual({ host: shared, guest: "/root/.claude/.credentials.json", readonly: true, kind: "file" });
    expect(readFileSync(shared, "utf8")).toBe('{"token":"a"}');
  });

  test("a login file that is a symbolic link, a FIFO, empty or larger than 64 KiB is not shared", () => {
    const home = homePaths(tmp());
    const outside = join(tmp(), "secret");
    writeFileSync(outside, "host file");
    const cases: [string, (p: string) => void][] = [
      ["link", (p) => symlinkSync(outside, p)],
      ["fifo", (p) => expect(Bun.spawnSync(["mkfifo", p]).exitCode).toBe(0)],
      ["empty", (p) => writeFileSync(p, "")],
      ["large", (p) => writeFileSync(p, Buffer.alloc(64 * 1024 + 1, 120))],
    ];
    for (const [name, plant] of cases) {
      const root = project();
      const dir = join(home.cache, "agent/projects", projectCacheKey(root), "claude");
      mkdirSync(dir, { recursive: true });
      plant(join(dir, ".credentials.json"));
      expect({ name, shared: shareLogin(home, "agent", AGENT, root) }).toEqual({ name, shared: null });
      expect({ name, mounts: cacheMounts(home, "agent", AGENT, projectCacheKey(root)).length }).toEqual({ name, mounts: 1 });
      expect(existsSync(join(home.cache, "agent/credentials/.credentials.json"))).toBe(false);
    }
  });
});
