/**
 * The plugin API: a plugin is a typed object of data and small hooks, run on the host with no access
 * beyond what its context gives it. Plugins live in plugins/<name>/index.ts, import only this file,
 * and are reached through the static map in loaders.ts. Community tools are registry data, never code.
 */
export interface PluginContext {
  /** Project root on the host (mounted at /workspace). */
  projectRoot: string;
  /** Working directory inside the sandbox. */
  guestCwd: string;
  /** The command line as it will run (argv[0] is the command inside the sandbox). */
  argv: string[];
  /** The environment so far (image Env, tool env, passEnv). */
  env: Readonly<Record<string, string>>;
  /** The tool's shims as `name` → container command. */
  shims: Readonly<Record<string, string[]>>;
  /** Is there a file or directory at this project-relative path on the host (not following links out)? */
  exists(relPath: string): boolean;
}

export interface SiloPlugin {
  name: string;
  /** Marker files that make `silo init` propose this tool. */
  detect?: string[];
  /** Default shims when a registry entry names none (`name` or `name:container command`). */
  shims?: string[];
  /**
   * Default cache mounts when a registry entry names none. `scope`: "project" (the default: one per
   * project), "shared" (only a store the tool verifies on read; say why), "login" (one read-only file).
   */
  cache?: { name: string; path: string; scope?: "project" | "shared" | "login" }[];
  /** Default language server. */
  lsp?: { command: string[]; install?: string[] };
  /** Extra environment for the command (e.g. virtualenv activation). */
  env?(ctx: PluginContext): Record<string, string>;
  /** Rewrite the command line (e.g. run a sibling shim directly). */
  argv?(ctx: PluginContext): string[];
}

/** Identity helper, like citty's defineCommand: gives types to a plugin object. */
export const definePlugin = (p: SiloPlugin): SiloPlugin => p;

/**
 * `silo run node npm test` means `npm test`, not `node npm test`: when the first argument is one of the
 * tool's own shims (other than the main command), run that shim's command with the rest.
 */
export function promoteSibling(ctx: PluginContext, main: string): string[] {
  const [first, ...rest] = ctx.argv.slice(1);
  if (ctx.argv[0] === main && first && first !== main && ctx.shims[first]) return [...ctx.shims[first]!, ...rest];
  return ctx.argv;
}
