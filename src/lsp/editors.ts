/**
 * Editor configuration that launches `silo lsp <tool>`, as pure text transforms of the existing file.
 *
 * What each editor can actually do (honestly):
 * - Zed: first-class. `lsp.<server>.binary` replaces the command of a built-in server, and
 *   `languages.<L>.language_servers` picks it (and turns off the unsandboxed default, e.g. vtsls, basedpyright).
 * - Neovim 0.11+: first-class. `vim.lsp.config(name, { cmd = {...} })` + `vim.lsp.enable(name)`, merged
 *   over nvim-lspconfig's defaults when that plugin is installed. Written to `.nvim.lua`, which Neovim runs
 *   only with `exrc` set and after `:trust` (it asks whenever the file changes).
 * - VS Code: has no built-in way to run an arbitrary LSP command. Its TypeScript support is tsserver (not
 *   LSP), Pylance/rust-analyzer/Go extensions take an executable path without arguments. So we configure the
 *   generic client extension "vscode-lspconfig" (whtsht.vscode-lspconfig), which takes a full argv per server,
 *   and switch off the extensions' own unsandboxed servers where a setting exists.
 */

import { parseJsonc, setJsoncValue } from "./jsonc.ts";

export type Editor = "vscode" | "zed" | "neovim";

interface EditorData {
  /** VS Code language ids. */
  vscodeLanguages: string[];
  /** Settings that stop the editor's own unsandboxed server, with why. */
  vscodeOff?: { key: string; value: unknown; why: string }[];
  zed: { server: string; languages: string[]; disable: string[] };
  nvim: { name: string; filetypes: string[]; rootMarkers: string[] };
}

/** Tools whose language server silo knows how to wire into editors. */
export const EDITOR_TOOLS: Record<string, EditorData> = {
  node: {
    vscodeLanguages: ["typescript", "typescriptreact", "javascript", "javascriptreact"],
    vscodeOff: [
      // tsserver itself cannot be switched off by a setting; disable the built-in extension for full effect.
      { key: "typescript.validate.enable", value: false, why: "VS Code's built-in tsserver still runs unsandboxed; this only turns off its duplicate diagnostics.\nDisable the built-in \"TypeScript and JavaScript Language Features\" extension for this workspace to stop it." },
      { key: "javascript.validate.enable", value: false, why: "as above, for JavaScript" },
    ],
    zed: { server: "typescript-language-server", languages: ["TypeScript", "TSX", "JavaScript"], disable: ["vtsls"] },
    nvim: { name: "ts_ls", filetypes: ["javascript", "javascriptreact", "typescript", "typescriptreact"], rootMarkers: ["tsconfig.json", "jsconfig.json", "package.json", ".git"] },
  },
  python: {
    vscodeLanguages: ["python"],
    vscodeOff: [{ key: "python.languageServer", value: "None", why: "the sandboxed pyright replaces Pylance/Jedi, which would run unsandboxed" }],
    zed: { server: "pyright", languages: ["Python"], disable: ["basedpyright", "pylsp", "ty"] },
    nvim: { name: "pyright", filetypes: ["python"], rootMarkers: ["pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile", "pyrightconfig.json", ".git"] },
  },
  rust: {
    // The rust-analyzer extension's `rust-analyzer.server.path` takes no arguments: disable that extension here.
    vscodeLanguages: ["rust"],
    zed: { server: "rust-analyzer", languages: ["Rust"], disable: [] },
    nvim: { name: "rust_analyzer", filetypes: ["rust"], rootMarkers: ["Cargo.toml", ".git"] },
  },
  go: {
    vscodeLanguages: ["go"],
    vscodeOff: [{ key: "go.useLanguageServer", value: false, why: "the Go extension would start its own gopls unsandboxed" }],
    zed: { server: "gopls", languages: ["Go"], disable: [] },
    nvim: { name: "gopls", filetypes: ["go", "gomod", "gowork", "gotmpl"], rootMarkers: ["go.work", "go.mod", ".git"] },
  },
  deno: {
    vscodeLanguages: ["typescript", "typescriptreact", "javascript", "javascriptreact"],
    zed: { server: "deno", languages: ["TypeScript", "TSX", "JavaScript"], disable: ["vtsls", "typescript-language-server"] },
    nvim: { name: "denols", filetypes: ["javascript", "javascriptreact", "typescript", "typescriptreact"], rootMarkers: ["deno.json", "deno.jsonc"] },
  },
};

const VSCODE_KEY = "vscode-lspconfig.serverConfigurations";
/** Our entries in shared lists are recognised by this name prefix, so re-running replaces them. */
const PREFIX = "silo-";

/** Merge silo's servers into `.vscode/settings.json` text (JSON with comments; "" for a new file). */
export function mergeVscodeSettings(text: string, tools: string[], silo: string): string {
  const current = (parseJsonc(text) as Record<string, unknown> | undefined) ?? {};
  const existing = Array.isArray(current[VSCODE_KEY]) ? (current[VSCODE_KEY] as { name?: unknown }[]) : [];
  const ours = tools.map((tool) => ({
    name: `${PREFIX}${tool}`,
    document_selector: EDITOR_TOOLS[tool]!.vscodeLanguages.map((language) => ({ scheme: "file", language })),
    command: [silo, "lsp", tool],
  }));
  const keep = existing.filter((s) => !(typeof s?.name === "string" && s.name.startsWith(PREFIX)));
  let out = setJsoncValue(
    text,
    [VSCODE_KEY],
    [...keep, ...ours],
    "silo: language servers in silo's sandbox (`silo ide vscode`). Needs the extension\n\"vscode-lspconfig\" (whtsht.vscode-lspconfig): VS Code has no built-in way to run an LSP command.",
  );
  for (const tool of tools)
    for (const off of EDITOR_TOOLS[tool]!.vscodeOff ?? []) out = setJsoncValue(out, [off.key], off.value, `silo: ${off.why}`);
  return out;
}

/** Merge silo's servers into `.zed/settings.json` text. */
export function mergeZedSettings(text: string, tools: string[], silo: string): string {
  let out = text;
  for (const tool of tools) {
    const z = EDITOR_TOOLS[tool]!.zed;
    out = setJsoncValue(out, ["lsp", z.server, "binary"], { path: silo, arguments: ["lsp", tool] }, `silo: ${z.server} runs in silo's sandbox`);
    const current = (parseJsonc(out) as { languages?: Record<string, { language_servers?: unknown }> }).languages ?? {};
    for (const lang of z.languages) {
      const mine = new Set([z.server, ...z.disable.map((d) => `!${d}`)]);
      const prior = Array.isArray(current[lang]?.language_servers) ? (current[lang]!.language_servers as string[]) : ["..."];
      const rest = prior.filter((s) => !mine.has(s) && s !== `!${z.server}` && !z.disable.includes(s));
      out = setJsoncValue(out, ["languages", lang, "language_servers"], [...mine, ...rest]);
    }
  }
  return out;
}

const BEGIN = "-- >>> silo ide >>>";
const END = "-- <<< silo ide <<<";

/** Put silo's block into `.nvim.lua` text, replacing a previous one; the rest of the file is kept. */
export function mergeNeovimConfig(text: string, tools: string[], silo: string): string {
  const lua = (xs: string[]) => `{ ${xs.map((x) => JSON.stringify(x)).join(", ")} }`;
  const lines = [
    BEGIN,
    "-- Generated by `silo ide neovim`; re-running it rewrites this block only.",
    "-- Language servers run inside silo's sandbox. Neovim 0.11+ runs this file when 'exrc' is set",
    "-- (vim.o.exrc = true in your init.lua) and after you `:trust` it.",
  ];
  for (const tool of tools) {
    const n = EDITOR_TOOLS[tool]!.nvim;
    lines.push(
      `vim.lsp.config(${JSON.stringify(n.name)}, {`,
      `  cmd = ${lua([silo, "lsp", tool])},`,
      `  filetypes = ${lua(n.filetypes)},`,
      `  root_markers = ${lua(n.rootMarkers)},`,
      "})",
      `vim.lsp.enable(${JSON.stringify(n.name)})`,
    );
  }
  lines.push(END);
  const block = lines.join("\n");
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start >= 0 && end > start) return text.slice(0, start) + block + text.slice(end + END.length);
  return text === "" ? `${block}\n` : `${text.replace(/\n*$/, "\n\n")}${block}\n`;
}

export const mergeEditorConfig: Record<Editor, (text: string, tools: string[], silo: string) => string> = {
  vscode: mergeVscodeSettings,
  zed: mergeZedSettings,
  neovim: mergeNeovimConfig,
};

/** Where each editor's project config lives, relative to the project root. */
export const EDITOR_FILES: Record<Editor, string> = {
  vscode: ".vscode/settings.json",
  zed: ".zed/settings.json",
  neovim: ".nvim.lua",
};
