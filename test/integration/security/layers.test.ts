/**
 * THREATS.md invariants 3 and 6: build layers that came with the repository. A `.silo/<tool>/current`
 * in a clone is stacked on the image only if this SILO_HOME built it (its generation and the identity of
 * its root recorded at build time) or the user trusted it (`silo trust`). A copy of a layer that was
 * built, under the same generation name, does not count.
 *
 * Positive control first: trusted, the cloned layer really replaces python3 in the sandbox.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

afterAll(cleanUp);

const FAKE = "#!/bin/sh\necho PWNED-BY-A-CLONED-LAYER\n";
const PY = ["run", "python", "-c", "print('the real python')"];

/** A project as cloned: silo.toml and a `.silo/python` layer whose python is a fake. */
function clonedProject(): string {
  const proj = tmp("silo-clone-");
  writeFileSync(join(proj, "silo.toml"), "");
  const gen = `g-${Date.now().toString(36)}-${"0".repeat(12)}`;
  const base = join(proj, ".silo/python");
  for (const bin of ["usr/bin", "usr/local/bin"]) {
    mkdirSync(join(base, gen, "root", bin), { recursive: true });
    for (const name of ["python", "python3", "python3.11"]) {
      writeFileSync(join(base, gen, "root", bin, name), FAKE);
      chmodSync(join(base, gen, "root", bin, name), 0o755);
    }
  }
  writeFileSync(join(base, gen, "build.json"), JSON.stringify({ version: 1, tool: "python", scope: "project", digest: "", steps: [], builtAt: "", silo: "x" }));
  symlinkSync(gen, join(base, "current"));
  return proj;
}

describe("layers: a build layer that came with the project", () => {
  let home: string;
  const setup = async () => (home ??= await installedHome("python@3.11-slim"));

  test("positive control: trusted, the cloned layer replaces python3", async () => {
    await setup();
    const proj = clonedProject();
    const t = ok(await runSilo(["trust"], { home, cwd: proj }));
    expect(t.stderr).toContain("trusted the build layers of python");
    const r = ok(await runSilo(PY, { home, cwd: proj }));
    expect(r.stdout).toBe("PWNED-BY-A-CLONED-LAYER\n");
  }, 300_000);

  test("untrusted, it is ignored with one warning naming silo rebuild / silo trust", async () => {
    await setup();
    const proj = clonedProject();
    const r = ok(await runSilo(PY, { home, cwd: proj }));
    expect(r.stdout).toBe("the real python\n");
    expect(r.stderr).toContain("ignoring the build layer");
    expect(r.stderr).toContain("silo rebuild python");
    expect(r.stderr).toContain("silo trust");
    expect(r.stderr.split("ignoring the build layer").length).toBe(2);
  }, 300_000);

  test("a layer this SILO_HOME built is stacked; a copy of it in another project (same generation name) is not, nor built upon", async () => {
    await setup();
    const a = tmp("silo-proj-");
    writeFileSync(join(a, "silo.toml"), "");
    ok(await runSilo(["build", "python", "sh", "-c", "mkdir -p /opt && echo built-here > /opt/marker"], { home, cwd: a }));
    const read = ["run", "python", "-c", "import os; print(open('/opt/marker').read().strip() if os.path.exists('/opt/marker') else 'no marker')"];
    expect(ok(await runSilo(read, { home, cwd: a })).stdout).toBe("built-here\n");

    const b = tmp("silo-proj-");
    writeFileSync(join(b, "silo.toml"), "");
    expect(Bun.spawnSync(["cp", "-a", join(a, ".silo"), join(b, ".silo")]).exitCode).toBe(0);
    const r = ok(await runSilo(read, { home, cwd: b }));
    expect(r.stdout).toBe("no marker\n");
    expect(r.stderr).toContain("ignoring the build layer");
    // `silo build` in b starts from nothing, not from the copy.
    ok(await runSilo(["build", "python", "true"], { home, cwd: b }));
    expect(ok(await runSilo(read, { home, cwd: b })).stdout).toBe("no marker\n");
    // The original still applies in a.
    expect(ok(await runSilo(read, { home, cwd: a })).stdout).toBe("built-here\n");
  }, 300_000);
});
