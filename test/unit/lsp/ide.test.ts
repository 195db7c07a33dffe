import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeIdeConfig } from "../../../src/app/ide.ts";
import { parseJsonc } from "../../../src/lsp/jsonc.ts";
import { makeHome, makeProject } from "../../helpers/silo.ts";

process.env.SILO_HOME = makeHome();

describe("writeIdeConfig", () => {
  test("detects tools from marker files and merges into an existing .vscode/settings.json", async () => {
    const dir = makeProject(undefined, {
      "package.json": "{}",
      "pyproject.toml": "",
      ".vscode/settings.json": `{\n  // keep me\n  "editor.rulers": [100],\n}\n`,
    });
    const r = await writeIdeConfig("vscode", { cwd: dir });
    expect(r.tools).toEqual(["node", "python"]);
    expect(r.path).toBe(join(dir, ".vscode/settings.json"));
    expect(r.written).toBe(true);
    const text = readFileSync(r.path, "utf8");
    expect(text).toContain("// keep me");
    const s = parseJsonc(text) as Record<string, any>;
    expect(s["editor.rulers"]).toEqual([100]);
    expect(s["vscode-lspconfig.serverConfigurations"].map((x: any) => x.command.slice(1))).toEqual([["lsp", "node"], ["lsp", "python"]]);
    expect((await writeIdeConfig("vscode", { cwd: dir })).written).toBe(false);
  });

  test("--tool picks one; zed and neovim files land at the project root (silo.toml dir) from a subdirectory", async () => {
    const dir = makeProject("", { "src/x.go": "" });
    const sub = join(dir, "src");
    const zed = await writeIdeConfig("zed", { cwd: sub, tool: "go" });
    expect(zed.path).toBe(join(dir, ".zed/settings.json"));
    expect((parseJsonc(readFileSync(zed.path, "utf8")) as any).lsp.gopls.binary.arguments).toEqual(["lsp", "go"]);
    const nvim = await writeIdeConfig("neovim", { cwd: sub, tool: "go", dryRun: true });
    expect(nvim.path).toBe(join(dir, ".nvim.lua"));
    expect(nvim.written).toBe(false);
    expect(nvim.content).toContain(`vim.lsp.enable("gopls")`);
  });

  test("unknown tools, nothing detected and broken files are SiloErrors with a hint", async () => {
    const empty = makeProject();
    await expect(writeIdeConfig("vscode", { cwd: empty })).rejects.toThrow(/no tool with a language server detected/);
    await expect(writeIdeConfig("vscode", { cwd: empty, tool: "psql" })).rejects.toThrow(/does not know how to wire psql/);
    const broken = makeProject(undefined, { ".vscode/settings.json": `{ "a": 1 "b": 2 }` });
    await expect(writeIdeConfig("vscode", { cwd: broken, tool: "python" })).rejects.toThrow(/cannot merge into .*settings.json: expected , or } at line 1/);
    expect(readFileSync(join(broken, ".vscode/settings.json"), "utf8")).toBe(`{ "a": 1 "b": 2 }`);
  });
});
