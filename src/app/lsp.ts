/**
 * `silo lsp <tool>`: the tool's language server in the tool's sandbox, proxied over stdio with host
 * paths <-> /workspace rewritten (src/lsp). stdout carries JSON-RPC only: every diagnostic goes to stderr.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { homePaths, joinUnder, type HomePaths } from "../core/paths.ts";
import type { LspOverride, SiloConfig, ToolDef } from "../config/schema.ts";
import { removeTree } from "../core/fs.ts";
import type { NetworkSpec } from "../runner/spec.ts";
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
  /** `[overrides.<tool>.lsp] env`: the server's environment on top of the tool's (not the install's). */
  env?: Record<string, string>;
}

/** Start the server, proxy until the editor or the server ends; resolves with the server's exit code. */
export async function startLsp(opts: StartLspOptions): Promise<number> {
  const home = homePaths();
  const { loadRunContext, toolNotInstalled } = await import("./context.ts");
  const ctx = await loadRunContext(home, opts.cwd, opts.tool);
  if (!ctx.tool) throw toolNotInstalled(opts.tool);
  const lsp = await resolveLspCommand(ctx.tool.def, ctx.tool.lsp);

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
  Object.assign(prepared.spec.env, lsp.env);
  try {
    if (lsp.install && !commandInLayers(prepared.spec.layers, prepared.spec.env.PATH ?? "", lsp.command[0]!)) {
      prepared.spec.layers.push(await ensureLspLayer(home, opts, lsp, prepared.spec.layers));
    }
    const proc = await prepared.driver.spawn(prepared.spec, "pipe", prepared.hooks);
    if (!proc.stdin || !proc.stdout) {
      proc.kill("SIGKILL");
      throw new SiloError("E_DRIVER", `driver ${prepared.driver.name} did not give piped stdio for the language server`);
    }
    const { createRewriter } = await import("../lsp/rewrite.ts");
    const { createGuard, createServerFilter } = await import("../lsp/guard.ts");
    const { proxyLsp } = await import("../lsp/proxy.ts");
    const { PROTECTED_PATHS } = await import("./protect.ts");
    const aliases = logicalRoots(prepared.hostRoot, opts.cwd);
    const rewriter = createRewriter({ hostRoot: prepared.hostRoot, hostAliases: aliases });
    // What the server sends the editor names nothing outside the project, and its edits leave protected paths alone.
    const guard = createGuard({ roots: [prepared.hostRoot, ...aliases], protectedPaths: PROTECTED_PATHS, protectedNames: await lspProtectedNames() });
    log.debug(`lsp: ${lsp.command.join(" ")} for ${prepared.hostRoot} (driver ${prepared.driver.name})`);

    // Editors stop servers with SIGTERM; pass signals on and let the proxy return the server's code.
    const forward = (sig: NodeJS.Signals) => proc.kill(sig);
    const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
    for (const s of signals) process.on(s, forward);
    try {
      return await proxyLsp({
        client: { input: opts.stdin ?? Bun.stdin.stream(), output: opts.stdout ?? Bun.stdout.writer() },
        server: { stdin: proc.stdin, stdout: proc.stdout, exited: proc.exited.then((r) => r.code), kill: (s) => proc.kill(s) },
        rewrite: { toGuest: rewriter.toGuest, toHost: createServerFilter(rewriter, guard) },
        clientPid: () => rewriter.clientProcessId,
      });
    } finally {
      for (const s of signals) process.off(s, forward);
    }
  } finally {
    await prepared.cleanup();
  }
}

/**
 * Names an edit from the language server may not touch at any depth: what host tools run or trust in
 * whatever directory they start in (git-apply.ts NESTED_PROTECTED: `.envrc`, `.vscode`, ...), coc.nvim's
 * workspace `.vim/coc-settings.json` (its `languageserver` entries are commands), cargo's `.cargo/config`.
 */
export async function lspProtectedNames(): Promise<string[]> {
  const { NESTED_PROTECTED } = await import("./git-apply.ts");
  return [...NESTED_PROTECTED, ".vim/coc-settings.json", ".cargo/config", ".cargo/config.toml"];
}

/**
 * Install-on-first-use: run the tool's `[lsp] install` command once in a build sandbox (install-time
 * network allowlist) whose root-filesystem writes are captured as a layer, stacked on top for every later
 * start. Keyed by the image (its rootfs, `below[0]`) and the command: a new image means a new install, but a
 * project's `silo build` layer changing does not. Kept apart from `silo build`'s generations, in
 * SILO_HOME/builds/.lsp/<tool>/<key> (no tool is named `.lsp`); it appears only once complete (built under
 * a temporary name, then renamed).
 *
 * The layer is shared by every project that uses the image (THREATS.md invariant 6), so the install sees
 * nothing of the project that asked for it: the image alone (no project or global build layer), an empty
 * /workspace, no package caches (every project's sandbox writes them), and the environment of the image,
 * the tool's definition and the global silo.toml (not the project's `env`, not a plugin's `.venv` PATH).
 */
export async function ensureLspLayer(home: HomePaths, opts: StartLspOptions, lsp: LspCommand, below: string[]): Promise<string> {
  // "isolated-1": layers installed before the install was isolated may hold what a project planted.
  const key = Bun.hash(JSON.stringify(["isolated-1", below[0], lsp.install])).toString(16);
  const dir = joinUnder(home.builds, ".lsp", opts.tool, key);
  if (existsSync(dir)) return dir;
  log.info(`installing ${opts.tool}'s language server (once): ${lsp.install!.join(" ")}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  // An empty /workspace of its own (mode 0700, outside SILO_HOME, which a sandbox may never see).
  const work = mkdtempSync(join(tmpdir(), "silo-lsp-install-"));
  const { prepareRun } = await import("./run.ts");
  const build = await prepareRun({ tool: opts.tool, args: [], argv: lsp.install, cwd: opts.cwd, driver: opts.driver, purpose: "build", tty: false });
  let code: number;
  try {
    const image = below[0]!;
    const { loadRunContext } = await import("./context.ts");
    const def = (await loadRunContext(home, opts.cwd, opts.tool)).tool!.def;
    Object.assign(build.spec, {
      layers: [image],
      workspace: work,
      cwd: "/workspace",
      mounts: [],
      readonlyPaths: [],
      maskedPaths: [],
      env: await installEnv(home, def, image, build.spec.network),
      network: { ...build.spec.network, sshAgent: undefined },
    });
    build.spec.captureUpper = tmp;
    build.spec.keepSetuid = true; // an install into SILO_HOME, with an empty /workspace of its own
    const proc = await build.driver.spawn(build.spec, "pipe", build.hooks);
    proc.stdin?.end();
    // stdout belongs to the editor: the installer's chatter goes to stderr.
    const copy = proc.stdout ? copyToStderr(proc.stdout) : Promise.resolve();
    code = (await proc.exited).code;
    await copy;
  } finally {
    await build.cleanup();
    removeTree(work);
  }
  if (code !== 0 || !commandInLayers([below[0]!, tmp], build.spec.env.PATH ?? "", lsp.command[0]!)) {
    rmSync(tmp, { recursive: true, force: true });
    throw new SiloError(
      "E_LSP",
      code !== 0
        ? `installing ${opts.tool}'s language server failed (exit ${code})`
        : `${lsp.install!.join(" ")} did not install \`${lsp.command[0]}\``,
      `the install command comes from the tool's [lsp] install (or [overrides.${opts.tool}.lsp]); try it with \`silo shell ${opts.tool}\``,
    );
  }
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true }); // another editor installed it at the same time
    if (!existsSync(dir)) throw e;
  }
  return dir;
}

/** The install's environment: the image's, the tool definition's and the global silo.toml's, plus the proxy. */
async function installEnv(home: HomePaths, def: ToolDef, image: string, network: NetworkSpec): Promise<Record<string, string>> {
  const { readMarker } = await import("../image/local.ts");
  const { loadTomlData } = await import("../config/load.ts");
  const { proxyEnv } = await import("../net/plan.ts");
  const env: Record<string, string> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const kv of readMarker(home, `sha256:${basename(image)}`)?.config.env ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  env.HOME = "/root";
  env.USER = "root";
  const g = (await loadTomlData(home.globalConfig)) as SiloConfig;
  return { ...env, ...def.env, ...g.env, ...g.overrides?.[def.name]?.env, ...proxyEnv(network) };
}

async function copyToStderr(stream: ReadableStream<Uint8Array>) {
  for await (const chunk of stream) process.stderr.write(chunk);
}

/**
 * Does the sandbox's root filesystem (these layers, top one first) have `cmd`: a path, or a name on PATH?
 * Looks at directory entries without following links (an absolute link points into the image, not the host).
 */
export function commandInLayers(layers: string[], pathEnv: string, cmd: string): boolean {
  const candidates = cmd.includes("/") ? [cmd] : pathEnv.split(":").filter(Boolean).map((d) => join(d, cmd));
  for (const layer of [...layers].reverse())
    for (const c of candidates) {
      try {
        lstatSync(join(layer, c));
        return true;
      } catch {
        // not in this layer
      }
    }
  return false;
}

/**
 * The tool's `[lsp]`: `[overrides.<tool>.lsp]` of trusted config (its `command` comes with its own
 * `install` or none: the registry's install would not install another server), else the definition's,
 * else its plugin's default. The override's `env` applies to any of them.
 */
export async function resolveLspCommand(def: ToolDef, override?: LspOverride): Promise<LspCommand> {
  if (override?.command?.length) return { command: override.command, install: override.install, env: override.env };
  const base = await definedLspCommand(def);
  return { ...base, install: override?.install ?? base.install, env: override?.env };
}

async function definedLspCommand(def: ToolDef): Promise<LspCommand> {
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
      `name one in silo.toml (\`[overrides.${def.name}.lsp] command = [...]\`), or give the tool definition an \`[lsp] command\``,
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
