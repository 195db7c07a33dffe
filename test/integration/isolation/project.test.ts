// Working on a real project inside the sandbox: nothing planted for the host to run later, git still
// works, and upstream's scenarios (scripts, arguments, pytest, pip --target, a venv, `npm test` via the shim).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "./_helpers.ts";

const T = 120_000;
const git = (cwd: string, ...args: string[]) => {
  const r = Bun.spawnSync(["git", ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd } });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.toString();
};

describe("isolation: project work", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim", "node");
  }, 600_000);
  afterAll(cleanUp);

  test("writes to .git/hooks, .git/config and silo.toml fail inside while git add/commit/log work", async () => {
    const project = makeProject("", { "src/app.py": "print(1)\n", ".vscode/settings.json": "{}" });
    git(project, "init", "-q");
    // Writable on the host: what the sandbox must not be able to do is possible in principle.
    writeFileSync(join(project, ".git/hooks/probe"), "x");
    const probe = `import json, subprocess
out = {}
for p in [".git/hooks/pre-commit", ".git/config", "silo.toml", ".vscode/tasks.json"]:
    try:
        open(p, "a").write("\\n# planted"); out[p] = "written"
    except OSError as e: out[p] = e.strerror
env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin", "HOME": "/root"}
subprocess.run(["git", "add", "src/app.py"], check=True, env=env)
subprocess.run(["git", "commit", "-qm", "from the sandbox"], check=True, env=env)
out["log"] = subprocess.run(["git", "log", "--format=%s"], check=True, env=env, capture_output=True, text=True).stdout.strip()
print(json.dumps(out))`;
    const r = ok(await runSilo(["run", "python", "-c", probe], { home, cwd: project }));
    expect(JSON.parse(r.stdout)).toEqual({
      ".git/hooks/pre-commit": "Read-only file system",
      ".git/config": "Read-only file system",
      "silo.toml": "Read-only file system",
      ".vscode/tasks.json": "Read-only file system",
      log: "from the sandbox",
    });
    expect(existsSync(join(project, ".git/hooks/pre-commit"))).toBe(false);
    expect(readFileSync(join(project, "silo.toml"), "utf8")).toBe("");
    expect(git(project, "log", "--format=%s").trim()).toBe("from the sandbox");
  }, T);

  test("a script runs with its arguments untouched: spaces, quotes, --flags", async () => {
    const project = makeProject("", { "tool.py": "import sys, json\nprint(json.dumps(sys.argv[1:]))\n" });
    const args = ["a b", `"quoted"`, "it's", "--flag", "--opt=x y", "-c", "$HOME", "*", ""];
    const r = ok(await runSilo(["run", "python", "tool.py", ...args], { home, cwd: project }));
    expect(JSON.parse(r.stdout)).toEqual(args);
  }, T);

  test("pytest on a project: passing suite exits 0, a failing test exits 1", async () => {
    const project = makeProject("", {
      "calc.py": "def add(a, b):\n    return a + b\n",
      "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    });
    writeFileSync(join(project, "pyproject.toml"), "[tool.pytest.ini_options]\npythonpath = ['.']\n");
    const pass = await runSilo(["run", "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], { home, cwd: project });
    expect(ok(pass).stdout).toContain("1 passed");
    writeFileSync(join(project, "tests/test_bad.py"), "def test_bad():\n    assert 1 == 2\n");
    const fail = await runSilo(["run", "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], { home, cwd: project });
    expect(fail.exitCode).toBe(1);
    expect(fail.stdout).toContain("1 failed");
  }, T);

  const pkg = {
    "pkg/pyproject.toml": `[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "silodemo"\nversion = "1.0"\n`,
    "pkg/silodemo/__init__.py": "VALUE = 'from silodemo'\n",
  };

  test("pip install --target into the project lands there, owned by the user, and is importable later", async () => {
    const project = makeProject("", pkg);
    ok(await runSilo(["run", "--shim", "pip", "python", "install", "-q", "--no-index", "--no-build-isolation", "--target", "vendor", "./pkg"], { home, cwd: project }));
    expect(statSync(join(project, "vendor/silodemo/__init__.py")).uid).toBe(process.getuid!());
    const r = ok(await runSilo(["run", "python", "-c", "import sys; sys.path.insert(0, 'vendor'); import silodemo; print(silodemo.VALUE)"], { home, cwd: project }));
    expect(r.stdout.trim()).toBe("from silodemo");
  }, T);

  test("a venv created in the project is used by later runs", async () => {
    const project = makeProject("", pkg);
    // The system site-packages lend the venv setuptools' wheel support (there is no index to fetch it from).
    ok(await runSilo(["run", "python", "-m", "venv", "--system-site-packages", ".venv"], { home, cwd: project }));
    expect(existsSync(join(project, ".venv/pyvenv.cfg"))).toBe(true);
    ok(await runSilo(["run", "--shim", "pip", "python", "install", "-q", "--no-index", "--no-build-isolation", "./pkg"], { home, cwd: project }));
    const r = ok(await runSilo(["run", "python", "-c", "import sys, silodemo; print(sys.prefix, silodemo.VALUE)"], { home, cwd: project }));
    expect(r.stdout.trim()).toBe("/workspace/.venv from silodemo");
  }, T);

  test("`npm test` through the npm shim runs the project's test script in the sandbox", async () => {
    const project = makeProject("", {
      "package.json": JSON.stringify({ name: "demo", version: "1.0.0", scripts: { test: "node test.js" } }),
      "test.js": "const os = require('os'); console.log('npm-test-ok', process.cwd(), os.userInfo().uid);\n",
    });
    const shim = join(home, "bin", "npm");
    expect(existsSync(shim)).toBe(true);
    const r = ok(await runSilo(["test"], { home, cwd: project, bin: shim }));
    expect(r.stdout).toContain("npm-test-ok /workspace 0");
  }, T);

  test("a file hidden from the sandbox stays on the host (a hostile tool cannot delete it)", async () => {
    const project = makeProject(`[mount]\nexclude = [".env"]\n`, { ".env": "TOKEN=1\n" });
    mkdirSync(join(project, "sub"));
    const r = await runSilo(["run", "python", "-c", "import os; print(repr(open('.env').read())); os.remove('.env')"], { home, cwd: project });
    expect(r.stdout.trim()).toBe("''");
    expect(r.exitCode).toBe(1); // removing the mount point fails
    expect(readFileSync(join(project, ".env"), "utf8")).toBe("TOKEN=1\n");
  }, T);
});
