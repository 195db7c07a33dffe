import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "smol-toml";
import { makeHome, makeProject, runSilo, siloBin, tmp } from "../../helpers/silo.ts";

const COMMANDS = ["install", "uninstall", "run", "shell", "list", "init", "build", "rebuild", "shim", "lsp", "ide", "status", "cache", "clean", "pull", "sync", "use", "unuse", "config", "doctor", "trust", "untrust", "shellenv", "reset", "registry"];

describe("silo --help and --version", () => {
  test("--help lists every command", async () => {
    const r = await runSilo(["--help"], { home: makeHome() });
    expect(r.exitCode).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(c);
  });
  test("every command has its own --help", async () => {
    const home = makeHome();
    for (const c of [...COMMANDS, "cache gc", "shim add", "config show"]) {
      const r = await runSilo([...c.split(" "), "--help"], { home });
      expect(r.exitCode, c).toBe(0);
      expect(r.stdout, c).toContain("USAGE");
    }
  });
  test("--version", async () => {
    const r = await runSilo(["--version"], { home: makeHome() });
    expect(r.stdout).toMatch(/^silo \d+\.\d+\.\d+/);
  });
});

describe("errors and exit codes", () => {
  test("an unknown flag is an error (125), with a suggestion", async () => {
    const r = await runSilo(["list", "--availabel"], { home: makeHome() });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("unknown flag `--availabel` for silo list (did you mean `--available`?)");
  });
  test("an unknown run flag before the tool is refused; after the tool it belongs to the tool", async () => {
    const r = await runSilo(["run", "--nope", "python", "-c", "pass"], { home: makeHome(), cwd: makeProject("") });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("unknown flag `--nope` for silo run");
  });
  test("an unknown command or tool is silo's own failure (125), with a suggestion", async () => {
    const r = await runSilo(["pyhton", "x.py"], { home: makeHome() });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("did you mean `silo python`?");
  });
  test("bad config is silo's own failure: 125, file:line:col, no stack trace; --debug shows one", async () => {
    const home = makeHome();
    const proj = makeProject('[tools]\npython = "3.11-slim"\n[mount]\nexclud = [".env"]\n');
    const r = await runSilo(["run", "python", "-c", "pass"], { home, cwd: proj });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain(`${proj}/silo.toml:4:1: unknown key \`mount.exclud\` (did you mean \`mount.exclude\`?)`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const bad = makeProject("tools = [\n");
    const s = await runSilo(["config", "show"], { home, cwd: bad });
    expect(s.exitCode).toBe(125);
    expect(s.stderr).toMatch(new RegExp(`${bad}/silo.toml:\\d+:\\d+: invalid TOML`));
    const d = await runSilo(["--debug", "config", "show"], { home, cwd: bad });
    expect(d.stderr).toMatch(/\n\s+at /);
  });
  test("a wrong type says what was expected", async () => {
    const r = await runSilo(["config", "show"], { home: makeHome(), cwd: makeProject('passEnv = "HOME"\n') });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain('passEnv: expected an array of strings, got string ("HOME")');
  });
  test("running a tool the registry does not know is silo's own failure before the command starts (125)", async () => {
    const r = await runSilo(["run", "nosuchtool"], { home: makeHome(), cwd: makeProject("") });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("tool `nosuchtool` is not installed");
    expect(r.stderr).toContain("silo install nosuchtool");
  });
});

describe("config show and trust", () => {
  test("shows merged values with their source, and the trust state", async () => {
    const home = makeHome('[env]\nFROM_GLOBAL = "g"\n');
    const proj = makeProject('passEnv = ["SECRET"]\n[env]\nFROM_PROJECT = "p"\n');
    let r = await runSilo(["config", "show", "--tool", "python"], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`[untrusted]`);
    expect(r.stdout).toMatch(/env\.FROM_GLOBAL += "g" +# global silo\.toml/);
    expect(r.stdout).toMatch(new RegExp(`env\\.FROM_PROJECT += "p" +# ${proj}/silo\\.toml`));
    expect(r.stdout).toMatch(/overrides\.python\.network\.proxy\.allow += \["pypi\.org","files\.pythonhosted\.org"\] +# registry:python/);
    expect(r.stdout).not.toContain("SECRET");
    expect(r.stderr).toContain("ignoring passEnv");
    expect(r.stderr).toContain("silo trust");

    r = await runSilo(["trust"], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    r = await runSilo(["config", "show"], { home, cwd: proj });
    expect(r.stdout).toContain("[trusted]");
    expect(r.stdout).toMatch(/passEnv += \["SECRET"\]/);

    writeFileSync(join(proj, "silo.toml"), 'passEnv = ["SECRET", "MORE"]\n');
    r = await runSilo(["config", "show"], { home, cwd: proj });
    expect(r.stdout).toContain("[changed]");
    expect(r.stderr).toContain("changed since you trusted it");
    expect(r.stdout).not.toContain("MORE");

    r = await runSilo(["untrust"], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
  });
  test("config network allow writes the project file, keeps comments, keeps an existing trust", async () => {
    const home = makeHome();
    const proj = makeProject('# my comment\n[tools]\nnode = "22-slim"\n');
    await runSilo(["trust"], { home, cwd: proj });
    const r = await runSilo(["config", "network", "allow", "node", "api.example.com"], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    const text = readFileSync(join(proj, "silo.toml"), "utf8");
    expect(text).toContain("# my comment");
    expect(text).toMatch(/\[overrides\.node\.network\.proxy\]\nallow = \[ ?"api\.example\.com" ?\]/);
    const s = await runSilo(["config", "show"], { home, cwd: proj });
    expect(s.stdout).toContain("[trusted]");
    const bad = await runSilo(["config", "network", "allow", "node", "*.com"], { home, cwd: proj });
    expect(bad.exitCode).toBe(125);
  });
});

describe("init, use, shellenv", () => {
  test("init detects tools, writes silo.toml and .gitignore, lists what to install", async () => {
    const home = makeHome();
    const proj = makeProject(undefined, { "package.json": "{}", "requirements.txt": "" });
    const r = await runSilo(["init", "--no-interactive", "--port", "3000", "--exclude", ".env,secrets"], { home, cwd: proj });
    expect(r.exitCode).toBe(0);
    const text = readFileSync(join(proj, "silo.toml"), "utf8");
    expect(text).toContain('[tools]\nnode = "22-slim"\npython = "3.12-slim"');
    expect(text).toContain('exclude = [".env", "secrets"]');
    expect(text).toContain("[[overrides.node.ports]]\nhost = 3000\nguest = 3000");
    expect(readFileSync(join(proj, ".gitignore"), "utf8")).toContain(".silo/");
    expect(r.stderr).toContain("still to install: silo install node@22-slim, silo install python@3.12-slim");
    const again = await runSilo(["init", "--no-interactive"], { home, cwd: proj });
    expect(again.exitCode).toBe(125);
  });
  test("use and unuse pin a version in silo.toml", async () => {
    const home = makeHome();
    const proj = makeProject("# keep me\n");
    expect((await runSilo(["use", "python@3.11-slim"], { home, cwd: proj })).exitCode).toBe(0);
    expect(readFileSync(join(proj, "silo.toml"), "utf8")).toBe('# keep me\n\n[tools]\npython = "3.11-slim"\n');
    expect((await runSilo(["use", "node@lts"], { home, cwd: proj })).exitCode).toBe(0);
    expect(readFileSync(join(proj, "silo.toml"), "utf8")).toContain('node = "22-slim"');
    expect((await runSilo(["unuse", "python"], { home, cwd: proj })).exitCode).toBe(0);
    expect(readFileSync(join(proj, "silo.toml"), "utf8")).not.toContain("python");
    expect((await runSilo(["use", "--global", "python@3.11-slim"], { home, cwd: proj })).exitCode).toBe(0);
    expect(readFileSync(join(home, "silo.toml"), "utf8")).toContain('[tools]\npython = "3.11-slim"');
  });
  test("shellenv prints the PATH line per shell", async () => {
    const home = makeHome();
    expect((await runSilo(["shellenv", "bash"], { home })).stdout).toBe(`export PATH='${home}/bin':"$PATH"\n`);
    expect((await runSilo(["shellenv", "fish"], { home })).stdout).toBe(`fish_add_path --prepend --move '${home}/bin'\n`);
    expect((await runSilo(["shellenv", "tcsh"], { home })).exitCode).toBe(125);
  });
});

describe("shims", () => {
  /** An installed-tools file as `silo install` writes it, without pulling (shim logic needs no image). */
  function fakeInstall(home: string, tools: Record<string, string[]>) {
    const cfg = {
      tools: Object.fromEntries(
        Object.entries(tools).map(([name, shims]) => [
          name,
          {
            version: "1",
            image: `docker.io/library/${name}:1`,
            digest: "sha256:" + "0".repeat(64),
            installedAt: "2026-01-01T00:00:00Z",
            definition: { name, description: name, image: `docker.io/library/${name}`, versions: { default: "1", available: ["1"] }, shims },
          },
        ]),
      ),
    };
    writeFileSync(join(home, "config.toml"), stringify(cfg));
  }
  test("shim add/list/remove manage symlinks to the binary, with conflicts refused", async () => {
    const home = makeHome();
    fakeInstall(home, { python: ["python", "pip"], node: ["node", "npm"] });
    let r = await runSilo(["shim", "add", "python", "ipython:python -m IPython"], { home });
    expect(r.exitCode).toBe(0);
    expect(readlinkSync(join(home, "bin", "ipython"))).toBe(siloBin);
    expect(lstatSync(join(home, "bin", "npm")).isSymbolicLink()).toBe(true);
    r = await runSilo(["shim", "list"], { home });
    expect(r.stdout).toMatch(/ipython +python +python -m IPython/);
    r = await runSilo(["shim", "add", "python", "npm"], { home });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("already belongs to node");
    r = await runSilo(["shim", "remove", "python", "ipython"], { home });
    expect(r.exitCode).toBe(0);
    expect(existsSync(join(home, "bin", "ipython"))).toBe(false);
  });
  test("a shim whose tool the project does not claim falls through to the next command on PATH", async () => {
    const home = makeHome();
    fakeInstall(home, { node: ["node", "npm"] });
    await runSilo(["shim", "list"], { home });
    await runSilo(["shim", "add", "node", "npm"], { home }); // creates bin/ and the symlinks
    const hostBin = tmp();
    writeFileSync(join(hostBin, "npm"), '#!/bin/sh\necho "host npm $*"\nexit 7\n', { mode: 0o755 });
    const proj = makeProject('[tools]\npython = "3.11-slim"\n'); // claims python only
    // Only a trusted file's claims may send a shim to a host command (test/integration/security/host-exec).
    expect((await runSilo(["trust"], { home, cwd: proj })).exitCode).toBe(0);
    const r = await runSilo(["test", "--flag"], { home, cwd: proj, bin: join(home, "bin", "npm"), env: { PATH: `${join(home, "bin")}:${hostBin}:/usr/bin:/bin` } });
    expect(r.stdout).toBe("host npm test --flag\n");
    expect(r.exitCode).toBe(7);
  });
  test("a shim with no tool and nothing else on PATH exits 127", async () => {
    const home = makeHome();
    mkdirSync(join(home, "bin"));
    symlinkSync(siloBin, join(home, "bin", "frobnicate"));
    const r = await runSilo([], { home, bin: join(home, "bin", "frobnicate"), env: { PATH: `${join(home, "bin")}:/usr/bin:/bin` } });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain("frobnicate: command not found");
  });
});
