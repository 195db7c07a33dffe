/**
 * Package caches survive across runs: pip's cache is per project (SILO_HOME/cache/python/projects/<key>/pip,
 * the key from the root's path and identity, app/cache-mounts.ts:
 * pip installs the wheels it built, and trusts a revalidated index page, without checking them, so one
 * project's must not be another's — security/caches.test.ts), so a second `pip install` of the same wheel
 * in a fresh sandbox of the same project comes from the cache, and another project downloads it again.
 * The index is a PEP 503 page served by this test on the host's loopback, reached through
 * host.silo.internal (hostAccess, trusted); the sandbox has no other network.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { projectCacheKey } from "../../../src/app/cache-mounts.ts";
import { makeHome, runSilo, siloBin } from "../../helpers/silo.ts";
import { ok, removeScratch, scratch, scratchProject } from "./_helpers.ts";

const PROJECT_TOML = "[overrides.python.network]\nhostAccess = true\n";

describe("tool package caches", () => {
  let home: string;
  let wheel: { name: string; bytes: Uint8Array };
  const requests: string[] = [];
  let server: ReturnType<typeof Bun.serve>;

  beforeAll(async () => {
    expect(existsSync(siloBin)).toBe(true);
    home = scratch(makeHome());
    ok(await runSilo(["install", "python"], { home }));
    // Build the wheel inside the sandbox (pip wheel needs no network for a local project).
    const src = scratchProject("", {
      "pkg/setup.py": `from setuptools import setup\nsetup(name="cachedpkg", version="1.0", packages=["cachedpkg"])\n`,
      "pkg/cachedpkg/__init__.py": "VALUE = 42\n",
    });
    ok(await runSilo(["run", "python", "-m", "pip", "wheel", "--no-deps", "./pkg", "-w", "/workspace/wheels"], { home, cwd: src }));
    const name = readdirSync(join(src, "wheels"))[0]!;
    wheel = { name, bytes: await Bun.file(join(src, "wheels", name)).bytes() };
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        requests.push(path);
        if (path === "/simple/cachedpkg/") return new Response(`<a href="/files/${wheel.name}">${wheel.name}</a>`, { headers: { "content-type": "text/html" } });
        if (path === `/files/${wheel.name}`) return new Response(wheel.bytes, { headers: { "cache-control": "max-age=86400" } });
        return new Response("not found", { status: 404 });
      },
    });
  });
  afterAll(() => {
    server?.stop(true);
    removeScratch();
  });

  async function pipInstall(project: string): Promise<string> {
    const index = `http://host.silo.internal:${server.port}/simple`;
    const r = ok(await runSilo(["run", "python", "-m", "pip", "install", "--index-url", index, "--trusted-host", "host.silo.internal", "cachedpkg"], { home, cwd: project }));
    return r.stdout;
  }

  async function trustedProject(): Promise<string> {
    const project = scratchProject(PROJECT_TOML);
    ok(await runSilo(["trust"], { home, cwd: project }));
    return project;
  }
  const fileRequests = () => requests.filter((p) => p.startsWith("/files/")).length;

  test("a second pip install in a fresh sandbox of the same project comes from its cache; another project's does not", async () => {
    const project = await trustedProject();
    const first = await pipInstall(project);
    expect(first).toContain("Downloading");
    expect(fileRequests()).toBe(1);
    const key = projectCacheKey(realpathSync(project));
    expect(readdirSync(join(home, "cache/python/projects", key, "pip")).some((d) => d.startsWith("http"))).toBe(true);
    const second = await pipInstall(project);
    expect(second).toContain("Using cached");
    // The wheel was not fetched again: only the index page was.
    expect(fileRequests()).toBe(1);
    expect(requests.filter((p) => p === "/simple/cachedpkg/")).toHaveLength(2);
    const other = await pipInstall(await trustedProject());
    expect(other).toContain("Downloading");
    expect(fileRequests()).toBe(2);
  });
});
