import { EXIT, SiloError } from "../core/errors.ts";
import { findOtherOnPath } from "../core/fs.ts";
import { log } from "../core/log.ts";
import { homePaths } from "../core/paths.ts";
import { exitCodeFor } from "../runner/spec.ts";
import { loadRunContext } from "./context.ts";
import { runTool } from "./run.ts";
import { readShimIndex } from "./shims.ts";

/**
 * A shim was invoked (argv[0] is `npm`, ...). Run the owning tool in its sandbox, or, when the tool is not
 * installed or this project's trusted silo.toml does not claim it, fall through to the next `npm` on PATH
 * (pyenv-style). Running a host binary instead of the sandbox is widening: an untrusted file's `tools` list
 * never causes it (THREATS.md invariant 1), its shims all run sandboxed.
 */
export async function dispatchShim(name: string, args: string[]): Promise<number> {
  const home = homePaths();
  const entry = readShimIndex(home)[name];
  const cwd = process.cwd();
  if (entry) {
    const ctx = await loadRunContext(home, cwd, entry.tool);
    const p = ctx.project;
    const claimed = p.claimed === null || p.claimed.includes(entry.tool);
    if (ctx.installed && p.claimedUntrusted && !p.claimedUntrusted.includes(entry.tool))
      log.warn(`${p.file} is not trusted, so its \`tools\` list (without ${entry.tool}) cannot send \`${name}\` to a host command; running it in ${entry.tool}'s sandbox. Run \`silo trust\` to apply the list.`);
    if (ctx.installed && claimed) return runTool({ tool: entry.tool, shim: name, args, cwd });
    log.debug(`shim ${name}: ${ctx.installed ? `${p.file} does not list ${entry.tool}` : `${entry.tool} is not installed`}; falling through`);
  }
  return fallThrough(name, args);
}

/**
 * Run the next `name` on PATH that is not silo itself, with stdio inherited. Every PATH entry whose `name`
 * is this very binary (same device and inode: a shim symlink, a hard link, a copy of the shim dir under
 * another path) is skipped, so a shim never execs itself, whatever PATH holds: with nothing else it
 * fails with 127 instead of looping.
 */
export async function fallThrough(name: string, args: string[]): Promise<number> {
  const next = findOtherOnPath(name);
  if (!next)
    throw new SiloError("E_TOOL_NOT_INSTALLED", `${name}: command not found`, `no silo tool provides it here, and PATH has no other \`${name}\` than silo's own shim`, EXIT.NOT_FOUND);
  log.debug(`shim ${name}: running ${next}`);
  const proc = Bun.spawn([next, ...args], { stdio: ["inherit", "inherit", "inherit"], argv0: name });
  const forward = (s: NodeJS.Signals) => () => proc.kill(s);
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, forward(s));
  await proc.exited;
  return exitCodeFor(proc.exitCode, proc.signalCode as string | null);
}

