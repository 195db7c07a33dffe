import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { homePaths, type HomePaths } from "../core/paths.ts";
import { loadTomlData } from "../config/load.ts";
import { readInstalled, writeInstalled } from "../config/installed.ts";
import type { InstalledTool, SiloConfig, ToolDef } from "../config/schema.ts";
import { loadRegistry, requireTool, resolveVersion } from "../registry/index.ts";
import { syncShims } from "./shims.ts";

export interface InstallOptions {
  /** `python`, `python@3.11-slim`, or a custom name with `image`. */
  spec: string;
  /** A custom image: installs a tool that is not in the registry (or replaces the entry's image). */
  image?: string;
  shims?: string[];
  cpus?: number;
  memory?: string;
  quiet?: boolean;
  /** Ask for the version on a TTY when none is given. */
  prompt?: boolean;
  platform?: string;
}

export function parseToolSpec(spec: string): { name: string; version?: string } {
  const at = spec.indexOf("@");
  return at < 0 ? { name: spec } : { name: spec.slice(0, at), version: spec.slice(at + 1) || undefined };
}

/** Pull the tool's image, pin its digest in config.toml, and (re)create shims. */
export async function installTool(opts: InstallOptions, home: HomePaths = homePaths()): Promise<InstalledTool> {
  const { name, version: requested } = parseToolSpec(opts.spec);
  // The name becomes SILO_HOME/cache/<name>, builds/<name>: a custom tool's name is checked as a registry entry's.
  const { toolNameIssue } = await import("../config/schema.ts");
  const bad = toolNameIssue(name);
  if (bad) throw new SiloError("E_USAGE", bad, "tool names use a-z, 0-9, `.`, `_` and `-`, and start with a letter or digit");
  const registry = await loadRegistry(home);
  let def: ToolDef;
  if (opts.image) {
    const base = registry.tools.get(name);
    const tagAt = opts.image.lastIndexOf(":");
    const hasTag = tagAt > opts.image.lastIndexOf("/");
    const tag = hasTag ? opts.image.slice(tagAt + 1) : "latest";
    def = {
      ...(base ?? { name, description: `custom tool from ${opts.image}`, shims: [name] }),
      name,
      image: hasTag ? opts.image.slice(0, tagAt) : opts.image,
      versions: { default: requested ?? tag, available: [requested ?? tag] },
    } as ToolDef;
  } else def = requireTool(registry, name);
  if (opts.shims?.length) def = { ...def, shims: opts.shims };
  if (opts.cpus || opts.memory) def = { ...def, resources: { ...def.resources, cpus: opts.cpus ?? def.resources?.cpus, memory: opts.memory ?? def.resources?.memory } };

  let version = requested ? resolveVersion(def, requested) : undefined;
  if (!version && opts.prompt && process.stdin.isTTY && process.stderr.isTTY && def.versions.available.length > 1) {
    const { consola } = await import("consola");
    const picked = await consola.prompt(`${name}: which version?`, {
      type: "select",
      options: def.versions.available.map((v) => ({ value: v, label: v === def.versions.default ? `${v} (default)` : v })),
      initial: def.versions.default,
      cancel: "reject",
    });
    version = String(picked);
  }
  version ??= def.versions.default;
  const ref = `${def.image}:${version}`;

  const globalCfg = (await loadTomlData(home.globalConfig)) as SiloConfig;
  const { pullImage } = await import("../image/pull.ts");
  const pulled = await pullImage(ref, {
    home,
    mirrors: globalCfg.images?.mirrors,
    insecure: globalCfg.images?.insecure,
    quiet: opts.quiet,
    platform: opts.platform,
  });

  const installed = await readInstalled(home);
  const entry: InstalledTool = {
    version,
    image: ref,
    digest: pulled.digest,
    installedAt: new Date().toISOString(),
    definition: def,
    ...(installed.tools[name]?.extraShims ? { extraShims: installed.tools[name]!.extraShims } : {}),
  };
  installed.tools[name] = entry;
  await writeInstalled(home, installed);
  const report = await syncShims(home, installed);
  for (const c of report.conflicts) log.warn(c);
  if (def.postInstall?.length) await (await import("./build.ts")).bakePostInstall(name, def.postInstall, pulled.digest, home);
  for (const dep of def.requires ?? [])
    if (!installed.tools[dep]) await installTool({ spec: dep, quiet: opts.quiet }, home);
  return entry;
}

export async function uninstallTool(name: string, home: HomePaths = homePaths(), opts: { keepImage?: boolean } = {}): Promise<void> {
  const installed = await readInstalled(home);
  const entry = installed.tools[name];
  if (!entry)
    throw new SiloError("E_TOOL_NOT_INSTALLED", `tool \`${name}\` is not installed`, "`silo list` shows what is installed");
  delete installed.tools[name];
  await writeInstalled(home, installed);
  await syncShims(home, installed);
  await (await import("./cache.ts")).reclaimTool(name, entry.digest, home, opts);
}
