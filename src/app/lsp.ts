/**
 * `silo lsp <tool>`: the tool's language server in the tool's sandbox, proxied over stdio with host
 * paths <-> /workspace rewritten (src/lsp). stdout carries JSON-RPC only: every diagnostic goes to stderr.
 */
import { realpathSync } from "node:fs";
import { dirname, relative } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { homePaths } from "../core/paths.ts";
import type { ToolDef } from "../config/schema.ts";
import type { WritableLike } from "../lsp/proxy.ts";

export interface StartLspOptions {
  tool: string;
  cwd: string;
  driver?: string;
  /** The editor's side; default: this process's stdin and stdout. */
  stdin?: ReadableStream<Uint8Array>;
  stdout?: WritableLike;
}

export interface LspCommand {
  command: string[];
  install?: string[];
}

/** Start the server, proxy until the editor or the server ends; resolves with the server's exit code. */
export async function startLsp(opts: StartLspOptions): Promise<number> {
  const home = homePaths();
  const { loadRunContext, toolNotInstalled } = await import("./context.ts");
  const ctx = await loadRunContext(home, opts.cwd, opts.tool);
  if (!ctx.tool) throw toolNotInstalled(opts.tool);
  const lsp = await resolveLspCommand(ctx.tool.def);

  const { prepareRun } = await import("./run.ts");
  const prepared = await prepareRun({
    tool: opts.tool,
    args: [],
    argv: lsp.command,
    cwd: opts.cwd,
    driver: opts.driver,
    purpose: "lsp",
    tty: false,
  });
  try {
    const proc = await prepared.driver.spawn(prepared.spec, "pipe");
    if (!proc.stdin || !proc.stdout) {
      proc.kill("SIGKILL");
      throw new SiloError("E_DRIVER", `driver ${prepared.driver.name} did not give piped stdio for the language server`);
    }
    const { createRewriter } = await import("../lsp/rewrite.ts");
    const { proxyLsp } = await import("../lsp/proxy.ts");
    const rewriter = createRewriter({ hostRoot: prepared.hostRoot, hostAliases: logicalRoots(prepared.hostRoot, opts.cwd) });
    log.debug(`lsp: ${lsp.command.join(" ")} for ${prepared.hostRoot} (driver ${prepared.driver.name})`);

    // Editors stop servers with SIGTERM; pass signals on and let the proxy return the server's code.
    const forward = (sig: NodeJS.Signals) => proc.kill(sig);
    const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
    for (const s of signals) process.on(s, forward);
    try {
      return await proxyLsp({
        client: { input: opts.stdin ?? Bun.stdin.stream(), output: opts.stdout ?? Bun.stdout.writer() },
        server: { stdin: proc.stdin, stdout: proc.stdout, exited: proc.exited.then((r) => r.code), kill: (s) => proc.kill(s) },
        rewrite: rewriter,
        clientPid: () => rewriter.clientProcessId,
      });
    } finally {
      for (const s of signals) process.off(s, forward);
    }
  } finally {
    await prepared.cleanup();
  }
}

/** The tool's `[lsp]` from its definition, else its plugin's default. */
export async function resolveLspCommand(def: ToolDef): Promise<LspCommand> {
  let lsp: LspCommand | undefined = def.lsp?.command?.length ? def.lsp : undefined;
  if (!lsp) {
    const { loadPlugin } = await import("../plugin/loaders.ts");
    const fromPlugin = (await loadPlugin(def.plugin))?.lsp;
    if (fromPlugin?.command.length) lsp = fromPlugin;
  }
  if (!lsp)
    throw new SiloError(
      "E_LSP",
      `${def.name} has no language server`,
      `give the tool definition an \`[lsp] command = [...]\` (a custom registry entry or \`silo install ${def.name} --image ...\`)`,
    );
  return lsp;
}

/**
 * Other spellings of the project root the editor may send: the logical path through a symlink
 * (`$PWD`, e.g. /home -> /data/home), which the realpath'd root does not match.
 */
function logicalRoots(hostRoot: string, cwd: string): string[] {
  const pwd = process.env.PWD;
  if (!pwd || pwd === cwd) return [];
  try {
    if (realpathSync(pwd) !== realpathSync(cwd)) return [];
  } catch {
    return [];
  }
  const depth = relative(hostRoot, realpathSync(cwd)).split("/").filter(Boolean).length;
  let root = pwd;
  for (let i = 0; i < depth; i++) root = dirname(root);
  return root === hostRoot ? [] : [root];
}
