// Invariant 2 (THREATS.md): no host code later. Code planted under `.git/` (or in a `gitdir:` file) runs
// when the user next uses git: host git runs `core.fsmonitor` on every `git status` (editors poll it).
// Each vector first works on the host (positive control: host `git status` runs the planted fsmonitor,
// which writes a marker), then through dist/silo host git runs nothing afterwards and the planted bits are
// in quarantine; git itself still works inside, and its commits reach the host only after the sandbox.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: gitHome, GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "h", GIT_AUTHOR_EMAIL: "h@x", GIT_COMMITTER_NAME: "h", GIT_COMMITTER_EMAIL: "h@x",
    },
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}
const gitOk = (cwd: string, ...args: string[]) => {
  const r = git(cwd, ...args);
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.err}`);
  return r.out;
};

/** A repository with one commit, and a marker path that a planted fsmonitor would create. */
function repo(): { project: string; marker: string } {
  const project = makeProject(undefined, { "src/app.py": "print(1)\n", "README": "hi\n" });
  gitOk(project, "init", "-q", "-b", "main");
  gitOk(project, "add", ".");
  gitOk(project, "commit", "-qm", "initial");
  return { project, marker: join(tmp("silo-marker-"), "fsmonitor-ran") };
}
/** git config text that makes `git status` run a command writing `marker`. */
const evilConfig = (marker: string) => `[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch ${marker}; false\n`;

/** The quarantine records there are now. */
const records = (home: string) => new Set(existsSync(join(home, "quarantine")) ? readdirSync(join(home, "quarantine")) : []);
/** Files in SILO_HOME/quarantine/<id>/files (relative to it) of the records made since `before`. */
function quarantined(home: string, before: Set<string>): string[] {
  const q = join(home, "quarantine");
  const out: string[] = [];
  for (const id of records(home)) {
    if (before.has(id)) continue;
    const files = join(q, id, "files");
    if (existsSync(files)) for (const f of readdirSync(files, { recursive: true }) as string[]) out.push(f);
  }
  return out;
}

// The sandbox's side of each attack, in python (the image has no shell tools to speak of).
const PLANT = {
  commondir: (m: string) => `import shutil
shutil.copytree(".git", "evil", symlinks=True)
open("evil/config", "w").write(${JSON.stringify(evilConfig(m))})
open(".git/commondir", "w").write("../evil\\n")
print(json.dumps("planted"))`,
  rename: (m: string) => `import shutil
out = {}
shutil.copytree(".git", "fresh", symlinks=True)
open("fresh/config", "w").write(${JSON.stringify(evilConfig(m))})
for name, f in [("rename", lambda: os.rename(".git", "old-git")), ("replace", lambda: os.replace("fresh", ".git")), ("rmtree", lambda: shutil.rmtree(".git"))]:
    try:
        f(); out[name] = "done"
    except OSError as e:
        out[name] = e.strerror
try:
    os.makedirs(".git/hooks", exist_ok=True); open(".git/config", "w").write(${JSON.stringify(evilConfig(m))}); out["config"] = "written"
except OSError as e:
    out["config"] = e.strerror
print(json.dumps(out))`,
  subdir: (m: string) => `import shutil
shutil.copytree(".git", "evil", symlinks=True)
open("evil/config", "w").write(${JSON.stringify(evilConfig(m))})
open("src/.git", "w").write("gitdir: ../evil\\n")
print(json.dumps("planted"))`,
  configAndHooks: (m: string) => `out = {}
for p, text in [(".git/config", ${JSON.stringify(evilConfig(m))}), (".git/hooks/pre-commit", "#!/bin/sh\\ntouch ${m}\\n")]:
    try:
        open(p, "w").write(text); os.chmod(p, 0o755); out[p] = "written"
    except OSError as e:
        out[p] = e.strerror
print(json.dumps(out))`,
};

describe("security: code planted under .git", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
  }, 600_000);
  afterAll(cleanUp);

  const run = async (project: string, code: string, env: Record<string, string> = {}, cwd = project) =>
    ok(await runSilo(["run", "python", "-c", py(code)], { home, cwd, env }));

  test("commondir → ../evil with core.fsmonitor: runs on the host; through silo .git/commondir is quarantined", async () => {
    const control = repo();
    cpSync(join(control.project, ".git"), join(control.project, "evil"), { recursive: true });
    writeFileSync(join(control.project, "evil/config"), evilConfig(control.marker));
    writeFileSync(join(control.project, ".git/commondir"), "../evil\n");
    git(control.project, "status");
    expect(existsSync(control.marker)).toBe(true);

    const { project, marker } = repo();
    const before = records(home);
    await run(project, PLANT.commondir(marker));
    expect(existsSync(join(project, ".git/commondir"))).toBe(false);
    gitOk(project, "status");
    expect(existsSync(marker)).toBe(false);
    expect(quarantined(home, before)).toContain(".git/commondir");
  }, T);

  test("renaming .git away and recreating it: runs on the host; through silo .git cannot be renamed or replaced", async () => {
    const control = repo();
    renameSync(join(control.project, ".git"), join(control.project, "old-git"));
    cpSync(join(control.project, "old-git"), join(control.project, ".git"), { recursive: true });
    writeFileSync(join(control.project, ".git/config"), evilConfig(control.marker));
    git(control.project, "status");
    expect(existsSync(control.marker)).toBe(true);

    const { project, marker } = repo();
    const r = JSON.parse((await run(project, PLANT.rename(marker))).stdout);
    expect(r.rename).toBe("Device or resource busy");
    expect(r.replace).toBe("Device or resource busy");
    expect(r.config).toBe("Read-only file system");
    expect(readFileSync(join(project, ".git/config"), "utf8")).not.toContain("fsmonitor");
    expect(gitOk(project, "log", "--format=%s").trim()).toBe("initial");
    gitOk(project, "status");
    expect(existsSync(marker)).toBe(false);
  }, T);

  test("src/.git with `gitdir: ../evil`: runs for git in src/; through silo src/.git is quarantined", async () => {
    const control = repo();
    cpSync(join(control.project, ".git"), join(control.project, "evil"), { recursive: true });
    writeFileSync(join(control.project, "evil/config"), evilConfig(control.marker));
    writeFileSync(join(control.project, "src/.git"), "gitdir: ../evil\n");
    git(join(control.project, "src"), "status");
    expect(existsSync(control.marker)).toBe(true);

    const { project, marker } = repo();
    const before = records(home);
    await run(project, PLANT.subdir(marker));
    expect(existsSync(join(project, "src/.git"))).toBe(false);
    gitOk(join(project, "src"), "status");
    expect(existsSync(marker)).toBe(false);
    expect(quarantined(home, before)).toContain("src/.git");
  }, T);

  test("a worktree's .git file: rewriting it runs code on the host; through silo it is read-only", async () => {
    const control = repo();
    const wt = join(tmp("silo-wt-"), "wt");
    gitOk(control.project, "worktree", "add", "-q", wt);
    cpSync(join(control.project, ".git"), join(wt, "evil"), { recursive: true });
    writeFileSync(join(wt, "evil/config"), evilConfig(control.marker));
    writeFileSync(join(wt, ".git"), "gitdir: ./evil\n");
    git(wt, "status");
    expect(existsSync(control.marker)).toBe(true);

    const { project, marker } = repo();
    const wt2 = join(tmp("silo-wt-"), "wt");
    gitOk(project, "worktree", "add", "-q", wt2);
    const before = readFileSync(join(wt2, ".git"), "utf8");
    const code = `import shutil
out = {}
for name, f in [("write", lambda: open(".git", "w").write("gitdir: ./evil\\n")), ("remove", lambda: os.remove(".git"))]:
    try:
        f(); out[name] = "done"
    except OSError as e:
        out[name] = e.strerror
os.makedirs("evil", exist_ok=True); open("evil/config", "w").write(${JSON.stringify(evilConfig(marker))})
print(json.dumps(out))`;
    const r = JSON.parse((await run(wt2, code)).stdout);
    expect(r).toEqual({ write: "Read-only file system", remove: "Device or resource busy" });
    expect(readFileSync(join(wt2, ".git"), "utf8")).toBe(before);
    gitOk(wt2, "status");
    expect(existsSync(marker)).toBe(false);
  }, T);

  test("writing .git/config and .git/hooks/*: runs on the host; through silo both are read-only", async () => {
    const control = repo();
    writeFileSync(join(control.project, ".git/config"), evilConfig(control.marker));
    git(control.project, "status");
    expect(existsSync(control.marker)).toBe(true);
    const hookControl = repo();
    writeFileSync(join(hookControl.project, ".git/hooks/pre-commit"), `#!/bin/sh\ntouch ${hookControl.marker}\n`, { mode: 0o755 });
    git(hookControl.project, "commit", "-q", "--allow-empty", "-m", "x");
    expect(existsSync(hookControl.marker)).toBe(true);

    const { project, marker } = repo();
    const r = JSON.parse((await run(project, PLANT.configAndHooks(marker))).stdout);
    expect(r).toEqual({ ".git/config": "Read-only file system", ".git/hooks/pre-commit": "Read-only file system" });
    gitOk(project, "status");
    gitOk(project, "commit", "-q", "--allow-empty", "-m", "host");
    expect(existsSync(marker)).toBe(false);
  }, T);

  test("a .git symlink to a directory in the project: that directory is overlaid, a replaced link is put back", async () => {
    const control = repo();
    renameSync(join(control.project, ".git"), join(control.project, ".bare"));
    symlinkSync(".bare", join(control.project, ".git"));
    writeFileSync(join(control.project, ".bare/commondir"), "../evil\n");
    cpSync(join(control.project, ".bare"), join(control.project, "evil"), { recursive: true });
    writeFileSync(join(control.project, "evil/config"), evilConfig(control.marker));
    git(control.project, "status");
    expect(existsSync(control.marker)).toBe(true);

    const { project, marker } = repo();
    renameSync(join(project, ".git"), join(project, ".bare"));
    symlinkSync(".bare", join(project, ".git"));
    const before = records(home);
    const code = `import shutil, subprocess
env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin", "HOME": "/root"}
subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "through the link"], check=True, env=env)
shutil.copytree(".bare", "evil", symlinks=True)
open("evil/config", "w").write(${JSON.stringify(evilConfig(marker))})
open(".bare/commondir", "w").write("../evil\\n")
os.remove(".git"); os.symlink("evil", ".git")
print(json.dumps("planted"))`;
    await run(project, code);
    expect(existsSync(join(project, ".bare/commondir"))).toBe(false);
    expect(readlinkSync(join(project, ".git"))).toBe(".bare"); // the replaced link: put back (app/protect.ts)
    expect(quarantined(home, before)).toEqual(expect.arrayContaining([".git", ".bare/commondir"]));
    expect(gitOk(project, "log", "-1", "--format=%s").trim()).toBe("through the link");
    gitOk(project, "status");
    expect(existsSync(marker)).toBe(false);
  }, T);

  test("a gitdir: file 300 directories down (deeper than the waiter walks) is still found and quarantined", async () => {
    const deep = Array(300).fill("d").join("/");
    const control = repo();
    cpSync(join(control.project, ".git"), join(control.project, "evil"), { recursive: true });
    writeFileSync(join(control.project, "evil/config"), evilConfig(control.marker));
    mkdirSync(join(control.project, deep), { recursive: true });
    writeFileSync(join(control.project, deep, ".git"), `gitdir: ${"../".repeat(300)}evil\n`);
    git(join(control.project, deep), "status");
    expect(existsSync(control.marker)).toBe(true);

    const { project, marker } = repo();
    const before = records(home);
    await run(project, `import shutil
shutil.copytree(".git", "evil", symlinks=True)
open("evil/config", "w").write(${JSON.stringify(evilConfig(marker))})
os.makedirs("${deep}")
open("${deep}/.git", "w").write("gitdir: " + "../" * 300 + "evil\\n")
print(json.dumps("planted"))`);
    expect(existsSync(join(project, deep, ".git"))).toBe(false);
    expect(quarantined(home, before)).toContain(`${deep}/.git`);
    gitOk(join(project, deep), "status");
    expect(existsSync(marker)).toBe(false);
  }, T);

  test("a .git made in a project that had none is quarantined whole", async () => {
    const project = makeProject(undefined, { "a.txt": "a\n" });
    const marker = join(tmp("silo-marker-"), "fsmonitor-ran");
    const before = records(home);
    await run(project, `os.makedirs(".git/objects"); os.makedirs(".git/refs/heads")
open(".git/HEAD", "w").write("ref: refs/heads/main\\n")
open(".git/config", "w").write(${JSON.stringify(evilConfig(marker))})
print(json.dumps("planted"))`);
    expect(existsSync(join(project, ".git"))).toBe(false);
    expect(quarantined(home, before)).toContain(".git/config");
  }, T);

  test("a trusted [mount] writable = [\".git\"] binds .git directly: the host sees a commit at once", async () => {
    const { project } = repo();
    writeFileSync(join(project, "silo.toml"), `[mount]\nwritable = [".git"]\n`);
    ok(await runSilo(["trust"], { home, cwd: project }));
    const code = `import subprocess
env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin", "HOME": "/root"}
subprocess.run(["git", "config", "user.name", "direct"], check=True, env=env)
subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "direct"], check=True, env=env)
print(json.dumps(open("/proc/self/mountinfo").read().count(" /workspace/.git ")))`;
    const r = await run(project, code);
    expect(JSON.parse(r.stdout)).toBe(0); // no mount of its own: the project's directory itself
    expect(gitOk(project, "config", "user.name").trim()).toBe("direct");
    expect(gitOk(project, "log", "-1", "--format=%s").trim()).toBe("direct");
  }, T);

  for (const stage of ["native", "sh"] as const) {
    test(`git add/commit/branch/stash work inside (${stage} stage); the host sees them only after the sandbox, fsck-clean`, async () => {
      const { project, marker } = repo();
      const code = `import subprocess, time
env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin", "HOME": "/root"}
g = lambda *a: subprocess.run(["git", *a], check=True, env=env, capture_output=True, text=True).stdout
open("src/app.py", "a").write("print(2)\\n")
g("add", "src/app.py"); g("commit", "-qm", "from the sandbox")
g("branch", "feature")
open("README", "a").write("more\\n"); g("stash")
log = g("log", "--format=%s").split("\\n")[:2]
# Planted beside the real work: these go to quarantine, the commit goes through.
open(".git/commondir", "w").write("../evil\\n")
os.makedirs(".git/info", exist_ok=True); open(".git/info/attributes", "w").write("* filter=evil\\n")
open("ready", "w").write("1")
while not os.path.exists("go"): time.sleep(0.05)
print(json.dumps(log))`;
      const env: Record<string, string> = stage === "sh" ? { SILO_STAGE: "sh" } : {};
      const before = records(home);
      const running = runSilo(["run", "python", "-c", py(code)], { home, cwd: project, env });
      const ready = join(project, "ready");
      for (let i = 0; i < 1200 && !existsSync(ready); i++) await Bun.sleep(50);
      expect(existsSync(ready)).toBe(true);
      // While the sandbox runs, host git sees none of it.
      expect(gitOk(project, "log", "--format=%s").trim()).toBe("initial");
      expect(git(project, "rev-parse", "--verify", "-q", "feature").code).not.toBe(0);
      expect(gitOk(project, "stash", "list")).toBe("");
      writeFileSync(join(project, "go"), "");
      const r = ok(await running);
      expect(JSON.parse(r.stdout)).toEqual(["from the sandbox", "initial"]);
      rmSync(join(project, "ready"));
      rmSync(join(project, "go"));
      expect(gitOk(project, "log", "--format=%s").trim().split("\n")).toEqual(["from the sandbox", "initial"]);
      expect(gitOk(project, "rev-parse", "feature")).toBe(gitOk(project, "rev-parse", "main"));
      expect(gitOk(project, "stash", "list")).toContain("WIP on main");
      expect(gitOk(project, "status", "--porcelain")).toBe("");
      const fsck = git(project, "fsck", "--strict");
      expect(`${fsck.code} ${fsck.err}`).toBe("0 ");
      expect(existsSync(join(project, ".git/commondir"))).toBe(false);
      expect(existsSync(join(project, ".git/info/attributes"))).toBe(false);
      expect(quarantined(home, before)).toEqual(expect.arrayContaining([".git/commondir", ".git/info"]));
      expect(existsSync(marker)).toBe(false);
    }, T);
  }
});
