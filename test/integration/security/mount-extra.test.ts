/**
 * THREATS.md invariant 3: widening needs trust of those exact bytes. A trusted `[[mount.extra]]` with a
 * source inside the project names a directory; trust covers the text `host = "data"`, not what `data` is
 * later. A sandbox can replace the directory with a symlink to any host path, and bwrap follows symlinks in
 * a bind source: the next run would bind that host path, writable. silo refuses a source below the project
 * root that has a symlink on its way.
 *
 * Positive control first: with a symlink in place, a raw bwrap bind of the same source reaches the victim.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

afterAll(cleanUp);

const TOML = '[[mount.extra]]\nhost = "data"\nguest = "/data"\n';

describe("mount.extra: a source the sandbox turned into a symlink", () => {
  let home: string;
  const setup = async () => (home ??= await installedHome("python@3.11-slim"));

  test("positive control: bwrap binds what the symlink points to", () => {
    const victim = tmp("silo-victim-");
    writeFileSync(join(victim, "key"), "TOPSECRET\n");
    const proj = tmp("silo-proj-");
    symlinkSync(victim, join(proj, "data"));
    const r = Bun.spawnSync(["bwrap", "--ro-bind", "/", "/", "--bind", join(proj, "data"), "/mnt", "--", "cat", "/mnt/key"]);
    expect(r.stdout.toString()).toBe("TOPSECRET\n");
  });

  test("trusted, a real directory is bound; swapped for a symlink by the sandbox, the next run refuses it", async () => {
    await setup();
    const victim = tmp("silo-victim-");
    writeFileSync(join(victim, "key"), "TOPSECRET\n");
    const proj = tmp("silo-proj-");
    mkdirSync(join(proj, "data"));
    writeFileSync(join(proj, "data", "ok"), "project data\n");
    writeFileSync(join(proj, "silo.toml"), TOML);
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const first = ok(await runSilo(["run", "python", "-c", "print(open('/data/ok').read(), end='')"], { home, cwd: proj }));
    expect(first.stdout).toBe("project data\n");

    // What a sandbox can do to the project: replace the directory with a link to the victim.
    const plant = `import os; os.rename("/workspace/data", "/workspace/data.old"); os.symlink(${JSON.stringify(victim)}, "/workspace/data")`;
    ok(await runSilo(["run", "python", "-c", plant], { home, cwd: proj }));
    renameSync(join(proj, "data.old"), join(proj, "kept")); // out of the way; `data` is now the planted link

    const r = await runSilo(["run", "python", "-c", "import os; print(os.listdir('/data')); open('/data/w', 'w').write('x')"], { home, cwd: proj });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("symbolic link inside the project");
    expect(r.stdout).not.toContain("key");
    expect(existsSync(join(victim, "w"))).toBe(false);
  }, 300_000);
});
