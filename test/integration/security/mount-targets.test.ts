/**
 * THREATS.md invariant 2 (no host effect later from what a sandbox wrote) and 9 (fail closed): bwrap
 * resolves every mount destination after its pivot, while /oldroot is the host's root, and creates what
 * is missing, through a dangling final symlink too. A `silo build` sandbox writes a layer that later runs
 * stack; a symlink it plants there on a path silo mounts onto would make the next run create directories
 * or files anywhere on the host. Two reproductions from the attacker pass:
 *   A: /root/.cache -> /oldroot/<dir>: the pip cache mount makes <dir>/pip on the host;
 *   B: /run/silo/ssh-agent.sock -> /oldroot/<dir>/planted: `--ssh-agent` creates the file on the host.
 *   C: a link the sandbox left in a host cache directory, where a passFiles file is later bound into it.
 * Positive control first: a plain bwrap with the very layer (or cache) the sandbox wrote does create them.
 * Then silo refuses the run (125, naming the layer or link) and the host has nothing new; removing the
 * layer (`silo build python --remove`) fixes it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

let home: string;
let agent: ReturnType<typeof Bun.listen> | null = null;
afterAll(() => {
  agent?.stop(true);
  cleanUp();
});
const setup = async () => (home ??= await installedHome("python@3.11-slim"));

/** `silo build` a project layer with `code` run as the build step; returns the project and its layer's root. */
async function plant(code: string): Promise<{ proj: string; layer: string }> {
  const proj = makeProject("");
  ok(await runSilo(["build", "python", "python", "-c", code], { home, cwd: proj }));
  return { proj, layer: realpathSync(join(proj, ".silo/python/current/root")) };
}

/** bwrap alone, the layer as its root, one bind onto `dest`: what silo's mount would do without its check. */
function plainBwrap(layer: string, src: string, dest: string) {
  const r = spawnSync("bwrap", ["--unshare-user", "--ro-bind", layer, "/", "--bind", src, dest, "/nothing-to-run"], { encoding: "utf8" });
  expect(r.status).not.toBe(0); // nothing runs: the mount already happened
}

describe("mount destinations through a symlink a build planted", () => {
  test("A: /root/.cache in the layer: bwrap makes the pip cache on the host; silo refuses, and nothing is made", async () => {
    await setup();
    const target = tmp("silo-planted-a-");
    // /root/.cache/pip is the build's own cache mount: the directory holding it moves away whole.
    const { proj, layer } = await plant(`import os
os.rename("/root/.cache", "/root/.c2")
os.symlink("/oldroot${target}", "/root/.cache")`);

    const cache = tmp("silo-cache-");
    plainBwrap(layer, cache, "/root/.cache/pip");
    expect(readdirSync(target)).toEqual(["pip"]);
    spawnSync("rmdir", [join(target, "pip")]);

    const r = await runSilo(["run", "python", "-c", "print('ran')"], { home, cwd: proj });
    expect(r.exitCode).toBe(125);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`refusing to mount /root/.cache/pip: /root/.cache is a symlink (to /oldroot${target}) in the layer ${layer}`);
    expect(r.stderr).toContain("silo build TOOL --remove");
    expect(readdirSync(target)).toEqual([]);

    ok(await runSilo(["build", "python", "--remove"], { home, cwd: proj }));
    expect(ok(await runSilo(["run", "python", "-c", "print('ran')"], { home, cwd: proj })).stdout).toBe("ran\n");
    expect(readdirSync(target)).toEqual([]);
  });

  test("B: /run/silo/ssh-agent.sock in the layer: bwrap creates the file on the host; silo refuses, and nothing is made", async () => {
    await setup();
    const target = tmp("silo-planted-b-");
    const planted = join(target, "planted");
    const { proj, layer } = await plant(`import os
os.makedirs("/run/silo", exist_ok=True)
os.symlink("/oldroot${planted}", "/run/silo/ssh-agent.sock")`);

    const dir = tmp("silo-agent-");
    const sock = join(dir, "agent.sock");
    agent = Bun.listen({ unix: sock, socket: { data() {} } });
    plainBwrap(layer, sock, "/run/silo/ssh-agent.sock");
    expect(existsSync(planted)).toBe(true);
    spawnSync("rm", ["-f", planted]);

    const r = await runSilo(["run", "--ssh-agent", "python", "-c", "print('ran')"], { home, cwd: proj, env: { SSH_AUTH_SOCK: sock } });
    expect(r.exitCode).toBe(125);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`refusing to mount /run/silo/ssh-agent.sock: /run/silo/ssh-agent.sock is a symlink (to /oldroot${planted}) in the layer ${layer}`);
    expect(existsSync(planted)).toBe(false);
    expect(readdirSync(target)).toEqual([]);
  });

  test("a file bound into a cache (passFiles ~/.cache/pip/x) where a sandbox left a link in that cache: refused", async () => {
    await setup();
    const fakeHome = tmp("silo-fakehome-");
    mkdirSync(join(fakeHome, ".cache/pip"), { recursive: true });
    writeFileSync(join(fakeHome, ".cache/pip/pass.cfg"), "cfg\n");
    const target = tmp("silo-planted-c-");
    const planted = join(target, "planted");
    // The sandbox writes the project's pip cache, a host directory, and leaves a dangling link in it.
    const proj = makeProject("");
    const env = { HOME: fakeHome };
    ok(await runSilo(["run", "python", "-c", `import os; os.symlink("/oldroot${planted}", "/root/.cache/pip/pass.cfg")`], { home, cwd: proj, env }));
    const link = spawnSync("find", [join(home, "cache"), "-name", "pass.cfg", "-type", "l"], { encoding: "utf8" }).stdout.trim();
    expect(link).not.toBe("");

    plainBwrap(realpathSync(join(link, "..")), join(fakeHome, ".cache/pip/pass.cfg"), "/pass.cfg");
    expect(existsSync(planted)).toBe(true);
    spawnSync("rm", ["-f", planted]);

    writeFileSync(join(proj, "silo.toml"), `passFiles = ["~/.cache/pip/pass.cfg"]\n`);
    ok(await runSilo(["trust"], { home, cwd: proj, env }));
    const r = await runSilo(["run", "python", "-c", "print('ran')"], { home, cwd: proj, env });
    expect(r.exitCode).toBe(125);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`refusing to mount /root/.cache/pip/pass.cfg: ${link} is a symlink (to /oldroot${planted})`);
    expect(existsSync(planted)).toBe(false);
  });
});
