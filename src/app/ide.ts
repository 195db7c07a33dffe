/**
 * `silo ide vscode|zed|neovim [--tool name]`: write the project's editor config so the editor starts its
 * language servers through `silo lsp <tool>`. Merges into an existing file (comments and other settings
 * survive); re-running is idempotent. The text transforms live in src/lsp/editors.ts.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { log } from "../core/log.ts";
import { homePaths } from "../core/paths.ts";
import { EDITOR_FILES, EDITOR_TOOLS, mergeEditorConfig, type Editor } from "../lsp/editors.ts";

export interface IdeOptions {
  cwd: string;
  /** The tool whose server to wire; default: every tool detected in the project (package.json -> node, ...). */
  tool?: string;
  /** Compute the new content without writing it. */
  dryRun?: boolean;
}

export interface IdeResult {
  /** The file written (or that would be). */
  path: string;
  /** False when the file already had exactly this content, or with dryRun. */
  written: boolean;
  /** With dryRun: the content that would be written (print it). */
  content?: string;
  tools: string[];
}

export async function writeIdeConfig(editor: Editor, opts: IdeOptions): Promise<IdeResult> {
  if (!(editor in EDITOR_FILES))
    throw new SiloError("E_USAGE", `unknown editor \`${editor}\``, `choose one of: ${Object.keys(EDITOR_FILES).join(", ")}`);
  const root = await projectRoot(opts.cwd);
  const tools = opts.tool ? [checkTool(opts.tool)] : await detectTools(root);
  const path = join(root, EDITOR_FILES[editor]);
  const before = existsSync(path) ? readFileSync(path, "utf8") : "";
  let content: string;
  try {
    content = mergeEditorConfig[editor](before, tools, siloCommand());
  } catch (e) {
    throw new SiloError("E_CONFIG", `cannot merge into ${path}: ${(e as Error).message}`, "fix the file (or move it away) and run `silo ide` again");
  }
  const written = !opts.dryRun && content !== before;
  if (written) writeFileAtomic(path, content);
  return { path, written, content: opts.dryRun ? content : undefined, tools };
}

function checkTool(tool: string): string {
  if (EDITOR_TOOLS[tool]) return tool;
  throw new SiloError(
    "E_USAGE",
    `silo ide does not know how to wire ${tool}'s language server into editors`,
    `supported: ${Object.keys(EDITOR_TOOLS).join(", ")}; any tool with an [lsp] command still works as \`silo lsp ${tool}\``,
  );
}

/** A TypeScript project without package.json still wants the TypeScript server. */
const EXTRA_MARKERS: Record<string, string[]> = { node: ["tsconfig.json", "jsconfig.json"] };

/** Tools with editor support whose registry marker files (`detect`) exist at the project root. */
async function detectTools(root: string): Promise<string[]> {
  const { loadRegistry } = await import("../registry/index.ts");
  const reg = await loadRegistry(homePaths());
  const found: string[] = [];
  for (const tool of Object.keys(EDITOR_TOOLS)) {
    const markers = [...(reg.tools.get(tool)?.detect ?? []), ...(EXTRA_MARKERS[tool] ?? [])];
    if (markers.some((m) => existsSync(join(root, m)))) found.push(tool);
  }
  // deno.json means Deno even when a package.json sits next to it: one TypeScript server, not two.
  if (found.includes("deno") && found.includes("node")) found.splice(found.indexOf("node"), 1);
  if (found.length > 0) return found;
  const installed = await installedWithServer();
  if (installed.length === 0)
    throw new SiloError(
      "E_USAGE",
      `no tool with a language server detected in ${root}, and none installed`,
      `name one: silo ide <editor> --tool ${Object.keys(EDITOR_TOOLS).join("|")}`,
    );
  log.info(`no project markers in ${root}; using the installed tools with a language server: ${installed.join(", ")} (--tool picks one)`);
  return installed;
}

/**
 * The original silo's fallback for a project without markers: every installed tool that editors can be
 * wired to and that has a language server. Without a deno.json, Deno's TypeScript server gives way to node's.
 */
async function installedWithServer(): Promise<string[]> {
  const { readInstalled } = await import("../config/installed.ts");
  const { resolveLspCommand } = await import("./lsp.ts");
  const out: string[] = [];
  for (const [name, t] of Object.entries((await readInstalled(homePaths())).tools)) {
    if (!EDITOR_TOOLS[name]) continue;
    const has = await resolveLspCommand(t.definition).then(() => true, () => false);
    if (has) out.push(name);
  }
  if (out.includes("deno") && out.includes("node")) out.splice(out.indexOf("deno"), 1);
  return out.sort();
}

/** The project root `silo lsp` will mount: the directory of the nearest silo.toml, else cwd. */
async function projectRoot(cwd: string): Promise<string> {
  const { findProjectConfig } = await import("../config/load.ts");
  const file = findProjectConfig(cwd);
  return realpathSync(file ? dirname(file) : cwd);
}

/**
 * How the editor should start silo: plain `silo` when that is this binary on PATH (portable in a
 * committed settings file), else this binary's absolute path (editors started from a desktop launcher
 * often lack the shell's PATH).
 */
function siloCommand(): string {
  const self = process.execPath;
  if (basename(self) !== "silo") return "silo"; // running from source (`bun src/main.ts`)
  const onPath = Bun.which("silo");
  try {
    if (onPath && realpathSync(onPath) === realpathSync(self)) return "silo";
  } catch {
    // fall through to the absolute path
  }
  return self;
}
