import { realpathSync } from "node:fs";
import { delimiter, join } from "node:path";
import { EXIT, SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { homePaths } from "../core/paths.ts";
import { exitCodeFor } from "../runner/spec.ts";
import { loadRunContext } from "./context.ts";
import { isExecutable } from "./doctor.ts";
import { runTool } from "./run.ts";
import { readShimIndex } from "./shims.ts";

/**
 * A shim was invoked (argv[0] is `npm`, ...). Run the owning tool in its sandbox, or, when the tool is not
 * installed or this project's silo.toml does not list it, fall through to the next `npm` on PATH (pyenv-style).
 */
export async function dispatchShim(name: string, args: string[]): Promise<number> {
  const home = homePaths();
  const entry = readShimIndex(home)[name];
  const cwd = process.cwd();
  if (entry) {
    const ctx = await loadRunContext(home, cwd, entry.tool);
    const claimed = ctx.project.claimed === null || ctx.project.claimed.includes(entry.tool);
    if (ctx.installed && claimed) return runTool({ tool: entry.tool, shim: name, args, cwd });
    log.debug(`shim ${name}: ${ctx.installed ? `${ctx.project.file} does not list ${entry.tool}` : `${entry.tool} is not installed`}; falling through`);
  }
  return fallThrough(name, args, home.bin);
}

/** Run the next `name` on PATH that is not silo's own shim, with stdio inherited. */
export async function fallThrough(name: string, args: string[], shimDir: string): Promise<number> {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const self = real(shimDir);
  const next = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d && real(d) !== self)
    .map((d) => join(d, name))
    .find(isExecutable);
  if (!next)
    throw new SiloError("E_TOOL_NOT_INSTALLED", `${name}: command not found`, `no silo tool provides it here, and there is none on PATH`, EXIT.NOT_FOUND);
  log.debug(`shim ${name}: running ${next}`);
  const proc = Bun.spawn([next, ...args], { stdio: ["inherit", "inherit", "inherit"], argv0: name });
  const forward = (s: NodeJS.Signals) => () => proc.kill(s);
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, forward(s));
  await proc.exited;
  return exitCodeFor(proc.exitCode, proc.signalCode as string | null);
}
