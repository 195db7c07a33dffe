/**
 * The original silo's command line, through dist/silo (issue 13 items 5, 6, 7, 9): the `--` rules of
 * `silo build` and `silo run`, `silo run SHIM`, `silo ide` without project markers, and 125 (silo's own
 * failure) for a tool that is not installed against 127 for a command missing inside the sandbox.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseJsonc } from "../../../src/lsp/jsonc.ts";
import { makeHome, makeProject, runSilo, type SiloResult } from "../../helpers/silo.ts";

let home: string;
beforeAll(async () => {
  home = makeHome();
  for (const t of ["python@3.11-slim", "node@22-slim"]) {
    const r = await runSilo(["install", t], { home });
    if (r.exitCode !== 0) throw new Error(`silo install ${t} failed: ${r.stderr}`);
  }
}, 600_000);

/** Expect success, showing silo's stderr when it is not. */
function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
  return r;
}

const ARGV = "import sys; print(sys.argv[1:])";

describe("`--`: silo's before the tool, the tool's after it", () => {
  test("`silo run --timing -- python --version`: a `--` before the tool ends silo's flags", async () => {
    const r = ok(await runSilo(["run", "--timing", "--", "python", "--version"], { home, cwd: makeProject("") }));
    expect(r.stdout).toMatch(/^Python 3\.11\.\d+\n$/);
    expect(r.stderr).toContain("timing:");
  });

  test("after the tool everything reaches it as typed, `--` included (run and shorthand)", async () => {
    const proj = makeProject("");
    const viaRun = ok(await runSilo(["run", "python", "-c", ARGV, "--", "-pattern", "--timing"], { home, cwd: proj }));
    expect(viaRun.stdout).toBe("['--', '-pattern', '--timing']\n");
    const viaShim = ok(await runSilo(["python3", "-c", ARGV, "--", "--debug"], { home, cwd: proj }));
    expect(viaShim.stdout).toBe("['--', '--debug']\n");
  });

  test("`silo npm test -- --watch`: npm gets its `--` and hands --watch to the script", async () => {
    const proj = makeProject("", { "package.json": JSON.stringify({ name: "t", version: "1.0.0", scripts: { test: "echo script-args:" } }) });
    const r = ok(await runSilo(["npm", "test", "--", "--watch"], { home, cwd: proj }));
    // Had silo eaten the `--`, npm would read --watch as its own option and the script would get nothing.
    expect(r.stdout).toContain("script-args: --watch");
  });

  test("`silo build python -- CMD` and `silo build --global python -- CMD`: the `--` right after the tool is dropped", async () => {
    const proj = makeProject("");
    const write = (path: string, text: string) => ["python", "-c", `open(${JSON.stringify(path)}, "w").write(${JSON.stringify(text)})`];
    ok(await runSilo(["build", "--global", "python", "--", ...write("/opt/from-global", "global")], { home, cwd: proj }));
    ok(await runSilo(["build", "python", "--", ...write("/opt/from-project", "project")], { home, cwd: proj }));
    const r = ok(await runSilo(["run", "python", "-c", "print(open('/opt/from-global').read(), open('/opt/from-project').read())"], { home, cwd: proj }));
    expect(r.stdout).toBe("global project\n");
    // Only a `--` right after the tool is silo's: one later on belongs to the command.
    const later = ok(await runSilo(["build", "python", "--", "python", "-c", "import sys; open('/opt/argv', 'w').write(repr(sys.argv[1:]))", "--", "x"], { home, cwd: proj }));
    expect(later.exitCode).toBe(0);
    expect(ok(await runSilo(["run", "python", "-c", "print(open('/opt/argv').read())"], { home, cwd: proj })).stdout).toBe("['--', 'x']\n");
    ok(await runSilo(["build", "--global", "python", "--remove"], { home, cwd: proj }));
  }, 300_000);
});

describe("`silo run SHIM`", () => {
  test("`silo run npm ...` runs node with its npm shim, as `silo npm ...` does", async () => {
    const proj = makeProject("", { "package.json": JSON.stringify({ name: "t", version: "1.0.0", scripts: { test: "node -e \"console.log('ran in', process.cwd(), process.version)\"" } }) });
    const version = ok(await runSilo(["run", "npm", "--version"], { home, cwd: proj }));
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const t = ok(await runSilo(["run", "npm", "test"], { home, cwd: proj }));
    expect(t.stdout).toMatch(/ran in \/workspace v\d+\./);
    // pip belongs to python: the same through another tool's shim.
    expect(ok(await runSilo(["run", "pip", "--version"], { home, cwd: proj })).stdout).toMatch(/^pip \d+.*python 3\.11/);
  });
});

describe("exit codes: 125 is silo's failure, 127 a command missing in the sandbox", () => {
  test("a tool that is not installed or not known: 125 before anything starts", async () => {
    const proj = makeProject("");
    const unknown = await runSilo(["run", "nosuchtool", "--version"], { home, cwd: proj });
    expect(unknown.exitCode).toBe(125);
    expect(unknown.stderr).toContain("tool `nosuchtool` is not installed");
    const shorthand = await runSilo(["nosuchtool"], { home, cwd: proj });
    expect(shorthand.exitCode).toBe(125);
    expect((await runSilo(["uninstall", "nosuchtool"], { home })).exitCode).toBe(125);
    expect((await runSilo(["shim", "add", "nosuchtool", "x"], { home })).exitCode).toBe(125);
    expect((await runSilo(["install", "nosuchtool"], { home })).exitCode).toBe(125);
  });

  test("a command missing inside the sandbox stays 127", async () => {
    const r = await runSilo(["run", "python", "-c", "import subprocess, sys; sys.exit(subprocess.call(['sh', '-c', 'no-such-command']))"], { home, cwd: makeProject("") });
    expect(r.exitCode).toBe(127);
    const direct = await runSilo(["run", "--shim", "no-such-command", "python"], { home, cwd: makeProject("") });
    expect(direct.exitCode).toBe(127);
  });
});

describe("`silo ide` without project markers", () => {
  test("falls back to the installed tools with a language server and says which (zed, vscode)", async () => {
    const proj = makeProject("", { "notes.txt": "no markers here\n" });
    const r = ok(await runSilo(["ide", "zed"], { home, cwd: proj }));
    expect(r.stderr).toContain("using the installed tools with a language server: node, python");
    const s = parseJsonc(readFileSync(join(proj, ".zed/settings.json"), "utf8")) as { lsp: Record<string, { binary: { arguments: string[] } }> };
    expect(s.lsp["typescript-language-server"]!.binary.arguments).toEqual(["lsp", "node"]);
    expect(s.lsp["pyright"]!.binary.arguments).toEqual(["lsp", "python"]);
    const v = ok(await runSilo(["ide", "vscode"], { home, cwd: proj }));
    expect(v.stderr).toContain("using the installed tools with a language server: node, python");
    const vs = parseJsonc(readFileSync(join(proj, ".vscode/settings.json"), "utf8")) as Record<string, { command: string[] }[]>;
    expect(vs["vscode-lspconfig.serverConfigurations"]!.map((c) => c.command.slice(1))).toEqual([["lsp", "node"], ["lsp", "python"]]);
  });

  test("markers still decide when there are some; with nothing installed and no markers it fails (125)", async () => {
    const proj = makeProject("", { "pyproject.toml": "[project]\nname = 'x'\n" });
    const r = ok(await runSilo(["ide", "zed"], { home, cwd: proj }));
    expect(r.stderr).not.toContain("installed tools");
    const s = parseJsonc(readFileSync(join(proj, ".zed/settings.json"), "utf8")) as { lsp: Record<string, unknown> };
    expect(Object.keys(s.lsp)).toEqual(["pyright"]);
    const bare = makeProject("");
    const none = await runSilo(["ide", "zed"], { home: makeHome(), cwd: bare });
    expect(none.exitCode).toBe(125);
    expect(none.stderr).toContain("no tool with a language server detected");
    expect(existsSync(join(bare, ".zed"))).toBe(false);
  });
});
