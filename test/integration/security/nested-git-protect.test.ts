// Invariant 2 (THREATS.md): no host code later. Host git takes any directory holding HEAD, objects/ and
// refs/ for a repository (bare discovery, git's default) and runs what its config names (`git fetch`:
// `core.sshCommand`); a
// directory renamed to `.git` keeps its birth time; direnv, mise, cargo and editors read their config in
// whatever subdirectory they start in, not only at the root; and an exit scan that stops at its budget
// must not pass what it did not see. Each case first shows the attack on the host (host git really runs
// the planted fsmonitor, which writes a marker; the sandbox really writes the nested names), then that
// through dist/silo nothing runs and the planted items are in quarantine.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok, py } from "../isolation/_helpers.ts";

const T = 180_000;
const gitHome = tmp("silo-githome-");
/** Host git, with no user or system config of the machine's. */
function git(cwd: string, ...args: string[]) {
  const r = Bun.spawnSync(["git", ...args], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: gitHome, GIT_CONFIG_NOSYSTEM: "1" },
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}
const marker = () => join(tmp("silo-marker-"), "fsmonitor-ran");
// fsmonitor runs on `git status` in a work tree; in a bare repository (no work tree) `git fetch`, which
// editors run on their own (auto-fetch), runs sshCommand for an ssh:// remote.
const evilConfig = (m: string) =>
  `[core]\n\tfsmonitor = touch ${m}; false\n\tsshCommand = touch ${m}; false\n[remote "origin"]\n\turl = ssh://example.invalid/x\n`;

/** Files in SILO_HOME/quarantine/<id>/files of the records made since `before`. */
const records = (home: string) => new Set(existsSync(join(home, "quarantine")) ? readdirSync(join(home, "quarantine")) : []);
function quarantined(home: string, before: Set<string>): string[] {
  const out: string[] = [];
  for (const id of records(home)) {
    const files = join(home, "quarantine", id, "files");
    if (!before.has(id) && existsSync(files)) for (const f of readdirSync(files, { recursive: true }) as string[]) out.push(f);
  }
  return out;
}

/** The sandbox's side: a bare repository's HEAD, objects/, refs/ and config in `dir`. */
const plantBare = (dir: string, m: string) => `d = ${JSON.stringify(dir)}
os.makedirs(d + "/objects", exist_ok=True); os.makedirs(d + "/refs", exist_ok=True)
open(d + "/HEAD", "w").write("ref: refs/heads/main\\n")
open(d + "/config", "w").write(${JSON.stringify(evilConfig(m))})
print(json.dumps("planted"))`;
function plantBareOnHost(dir: string, m: string) {
  mkdirSync(join(dir, "objects"), { recursive: true });
  mkdirSync(join(dir, "refs"), { recursive: true });
  writeFileSync(join(dir, "HEAD"), "ref: refs/heads/main\n");
  writeFileSync(join(dir, "config"), evilConfig(m));
}

describe("security: repositories without a .git name, renamed ones, nested protected names", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
  }, 600_000);
  afterAll(cleanUp);
  const run = async (project: string, code: string, env: Record<string, string> = {}) =>
    ok(await runSilo(["run", "python", "-c", py(code)], { home, cwd: project, env }));

  test("a bare repository planted in a subdirectory: host git fetch there runs its sshCommand; through silo it is quarantined whole", async () => {
    const control = makeProject(undefined, { "sub/a.txt": "a\n" });
    const cm = marker();
    plantBareOnHost(join(control, "sub"), cm);
    git(join(control, "sub"), "fetch", "origin");
    expect(existsSync(cm)).toBe(true);

    const project = makeProject(undefined, { "sub/a.txt": "a\n" });
    const m = marker();
    const before = records(home);
    await run(project, plantBare("sub", m));
    expect(existsSync(join(project, "sub/HEAD"))).toBe(false);
    git(project, "-C", "sub", "fetch", "origin");
    expect(existsSync(m)).toBe(false);
    expect(quarantined(home, before)).toEqual(expect.arrayContaining(["sub", "sub/HEAD", "sub/config", "sub/a.txt"]));
  }, T);

  test("a bare repository planted at a root without .git: its HEAD and config are quarantined, the rest stays", async () => {
    const control = makeProject(undefined, { "a.txt": "a\n" });
    const cm = marker();
    plantBareOnHost(control, cm);
    git(control, "fetch", "origin");
    expect(existsSync(cm)).toBe(true);

    const project = makeProject(undefined, { "a.txt": "a\n" });
    const m = marker();
    const before = records(home);
    await run(project, plantBare(".", m));
    expect(existsSync(join(project, "HEAD"))).toBe(false);
    expect(existsSync(join(project, "a.txt"))).toBe(true);
    git(project, "fetch", "origin");
    expect(existsSync(m)).toBe(false);
    expect(quarantined(home, before)).toEqual(expect.arrayContaining(["HEAD", "config"]));
  }, T);

  test("an old directory with HEAD and config renamed to sub2/.git: runs on the host; through silo quarantined whole", async () => {
    const shipped = (m: string) => ({ "sub2/x/HEAD": "ref: refs/heads/main\n", "sub2/x/config": evilConfig(m), "sub2/a.txt": "a\n" });
    const cm = marker();
    const control = makeProject(undefined, shipped(cm));
    mkdirSync(join(control, "sub2/x/objects"));
    mkdirSync(join(control, "sub2/x/refs"));
    renameSync(join(control, "sub2/x"), join(control, "sub2/.git"));
    git(join(control, "sub2"), "status");
    expect(existsSync(cm)).toBe(true);

    const m = marker();
    const project = makeProject(undefined, shipped(m));
    await Bun.sleep(2100); // shipped well before the run: silo counts from the whole second before the start, less one (ctime is coarse)
    const before = records(home);
    await run(project, `os.makedirs("sub2/x/objects"); os.makedirs("sub2/x/refs"); os.rename("sub2/x", "sub2/.git")
print(json.dumps("planted"))`);
    expect(existsSync(join(project, "sub2/.git"))).toBe(false);
    git(join(project, "sub2"), "status");
    expect(existsSync(m)).toBe(false);
    expect(quarantined(home, before)).toEqual(expect.arrayContaining(["sub2/.git", "sub2/.git/config"]));
  }, T);

  test("protected names below the root (.cargo/config.toml, .vscode/tasks.json, .envrc, mise.toml): written inside, quarantined at exit; old ones stay", async () => {
    const planted = ["crates/foo/.cargo/config.toml", "crates/foo/.vscode/tasks.json", "crates/foo/.envrc", "crates/foo/mise.toml", "crates/foo/.mise.toml", "crates/foo/.nvimrc", "crates/foo/dev.code-workspace"];
    const project = makeProject(undefined, { "crates/foo/src/lib.rs": "\n", "crates/old/.envrc": "old\n", "crates/old/.vscode/settings.json": "{}\n" });
    await Bun.sleep(2100); // well before the run (silo counts from a whole second before it, less one)
    const before = records(home);
    // The positive control: nothing stops the writes inside (the sandbox reads each back).
    const r = await run(project, `out = {}
for f in ${JSON.stringify(planted)}:
    os.makedirs(os.path.dirname(f), exist_ok=True); open(f, "w").write("planted\\n"); out[f] = open(f).read()
print(json.dumps(out))`);
    for (const f of planted) expect(JSON.parse(r.stdout)[f]).toBe("planted\n");
    for (const f of planted) expect([f, existsSync(join(project, f))]).toEqual([f, false]);
    expect(existsSync(join(project, "crates/foo/src/lib.rs"))).toBe(true);
    expect(existsSync(join(project, "crates/old/.envrc"))).toBe(true);
    expect(existsSync(join(project, "crates/old/.vscode/settings.json"))).toBe(true);
    const q = quarantined(home, before);
    for (const f of ["crates/foo/.cargo/config.toml", "crates/foo/.vscode", "crates/foo/.envrc", "crates/foo/mise.toml", "crates/foo/.mise.toml", "crates/foo/.nvimrc", "crates/foo/dev.code-workspace"]) expect(q).toContain(f);
    expect(q.some((f) => f.startsWith("crates/old"))).toBe(false);
  }, T);

  test("mise.toml and .exrc at the root are protected too", async () => {
    const project = makeProject(undefined, { "a.txt": "a\n" });
    const before = records(home);
    await run(project, `open("mise.toml", "w").write("[hooks]\\nenter = 'touch /tmp/x'\\n"); open(".exrc", "w").write("!touch /tmp/x\\n")
print(json.dumps("planted"))`);
    expect(existsSync(join(project, "mise.toml"))).toBe(false);
    expect(existsSync(join(project, ".exrc"))).toBe(false);
    expect(quarantined(home, before)).toEqual(expect.arrayContaining(["mise.toml", ".exrc"]));
  }, T);

  test("a scan past its budget fails closed: an error now, and a warning at the next run until a scan completes", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`many/f${i}`] = "";
    const project = makeProject(undefined, files);
    const m = marker();
    const env = { SILO_GIT_SCAN_BUDGET: "40" };
    const r = await run(project, `for i in range(60): open(f"many/g{i}", "w").close()
${plantBare("zz/sub", m)}`, env);
    expect(r.stderr).toContain("silo could not check all of them");
    expect(r.stderr).toContain("SILO_GIT_SCAN_BUDGET");
    const next = await run(project, `print(json.dumps("again"))`, env);
    expect(next.stderr).toContain("an earlier run's exit scan could not check all of this project");
    // With room for the tree, the planted repository is found and the mark goes.
    await run(project, `${plantBare("zz/sub2", m)}`);
    const after = await run(project, `print(json.dumps("clean"))`);
    expect(after.stderr).not.toContain("an earlier run's exit scan");
    expect(existsSync(join(project, "zz/sub2/HEAD"))).toBe(false);
  }, T);
});
