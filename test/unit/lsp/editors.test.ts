import { describe, expect, test } from "bun:test";
import { mergeNeovimConfig, mergeVscodeSettings, mergeZedSettings } from "../../../src/lsp/editors.ts";
import { parseJsonc } from "../../../src/lsp/jsonc.ts";

const vscodeUser = `{
  // my settings
  "editor.tabSize": 2,
  "vscode-lspconfig.serverConfigurations": [
    { "name": "clangd", "document_selector": [{ "language": "c" }], "command": ["clangd"] }
  ],
  "python.languageServer": "Pylance", // was Pylance
}
`;

describe("VS Code", () => {
  test("adds one vscode-lspconfig server per tool, keeps the user's servers, settings and comments", () => {
    const out = mergeVscodeSettings(vscodeUser, ["python", "node"], "silo");
    expect(out).toContain("// my settings");
    expect(out).toContain("// was Pylance");
    const s = parseJsonc(out) as Record<string, any>;
    expect(s["editor.tabSize"]).toBe(2);
    expect(s["python.languageServer"]).toBe("None");
    expect(s["typescript.validate.enable"]).toBe(false);
    const servers = s["vscode-lspconfig.serverConfigurations"];
    expect(servers.map((x: any) => x.name)).toEqual(["clangd", "silo-python", "silo-node"]);
    expect(servers[1]).toEqual({ name: "silo-python", document_selector: [{ scheme: "file", language: "python" }], command: ["silo", "lsp", "python"] });
    expect(servers[2].document_selector.map((d: any) => d.language)).toEqual(["typescript", "typescriptreact", "javascript", "javascriptreact"]);
  });

  test("re-running is idempotent", () => {
    const once = mergeVscodeSettings(vscodeUser, ["python"], "silo");
    expect(mergeVscodeSettings(once, ["python"], "silo")).toBe(once);
  });

  test("a new file", () => {
    const s = parseJsonc(mergeVscodeSettings("", ["go"], "/opt/silo")) as Record<string, any>;
    expect(s["vscode-lspconfig.serverConfigurations"][0].command).toEqual(["/opt/silo", "lsp", "go"]);
    expect(s["go.useLanguageServer"]).toBe(false);
  });
});

describe("Zed", () => {
  test("binary override per server, language_servers pick it and turn the default off", () => {
    const user = `// zed\n{\n  "theme": "One Dark",\n  "languages": { "Python": { "tab_size": 4, "language_servers": ["ruff", "..."] } }\n}\n`;
    const out = mergeZedSettings(user, ["python", "node"], "silo");
    expect(out).toContain("// zed");
    const s = parseJsonc(out) as Record<string, any>;
    expect(s.theme).toBe("One Dark");
    expect(s.lsp.pyright.binary).toEqual({ path: "silo", arguments: ["lsp", "python"] });
    expect(s.lsp["typescript-language-server"].binary).toEqual({ path: "silo", arguments: ["lsp", "node"] });
    expect(s.languages.Python).toEqual({ tab_size: 4, language_servers: ["pyright", "!basedpyright", "!pylsp", "!ty", "ruff", "..."] });
    expect(s.languages.TypeScript.language_servers).toEqual(["typescript-language-server", "!vtsls", "..."]);
    expect(mergeZedSettings(out, ["python", "node"], "silo")).toBe(out);
  });
});

describe("Neovim", () => {
  test("a marked block with vim.lsp.config + enable; rewritten in place, the rest kept", () => {
    const out = mergeNeovimConfig("vim.opt.number = true\n", ["node"], "silo");
    expect(out.startsWith("vim.opt.number = true\n\n-- >>> silo ide >>>")).toBe(true);
    expect(out).toContain(`vim.lsp.config("ts_ls", {\n  cmd = { "silo", "lsp", "node" },`);
    expect(out).toContain(`vim.lsp.enable("ts_ls")`);
    const again = mergeNeovimConfig(out + "-- mine after\n", ["python"], "silo");
    expect(again).not.toContain("ts_ls");
    expect(again).toContain(`cmd = { "silo", "lsp", "python" }`);
    expect(again).toContain("vim.opt.number = true");
    expect(again).toContain("-- mine after");
    expect(again.match(/>>> silo ide >>>/g)?.length).toBe(1);
  });
});
