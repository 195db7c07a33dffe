import { totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import type { HomePaths } from "../core/paths.ts";
import { log } from "../core/log.ts";
import { loadTomlData, parseTomlBytes, validateOrThrow } from "./load.ts";
import { readProject, type ProjectBytes } from "./locate.ts";
import { flatten, mergeConfig } from "./merge.ts";
import { parseSizeMB, siloConfigSchema, type CacheMount, type LspOverride, type PortForward, type Resources, type SiloConfig, type ToolDef } from "./schema.ts";
import { stripWidening, trustStateOf, type TrustState } from "./trust.ts";

export { parseSizeMB };

export interface ProjectConfig {
  /** Directory holding the project's silo.toml, else the working directory. */
  root: string;
  /** The project silo.toml, or null when there is none. */
  file: string | null;
  /** sha256 of the bytes that were parsed (what a trust record must hold), or null without a file. */
  hash: string | null;
  trust: TrustState | "none";
  /** Widening settings of an untrusted file that were ignored (paths as written). */
  ignored: string[];
  /** Tools the project file names under `tools` (table keys or list), trusted or not; null when it names none. */
  claims: string[] | null;
  global: SiloConfig;
  /** The project file after untrusted widening settings were removed. */
  project: SiloConfig;
  /** global ← project. */
  merged: SiloConfig;
}

/**
 * Load, validate and trust-filter the global and the project silo.toml for `cwd`. `read` is the project
 * file as the caller already read it (one read: its hash decided trust, its bytes are parsed here);
 * without it the file is found and read now.
 */
export async function loadProject(cwd: string, home: HomePaths, read: ProjectBytes | null | undefined = undefined): Promise<ProjectConfig> {
  const found = read === undefined ? readProject(cwd, home) : read;
  const global = (await loadTomlData(home.globalConfig)) as SiloConfig;
  validateOrThrow(home.globalConfig, global, siloConfigSchema);
  if (Array.isArray(global.tools)) delete global.tools; // a list claims nothing for all projects; no versions in it
  let project: SiloConfig = {};
  let trust: ProjectConfig["trust"] = "none";
  let ignored: string[] = [];
  let claims: string[] | null = null;
  if (found) {
    const { data, text } = await parseTomlBytes(found.file, found.bytes);
    validateOrThrow(found.file, data, siloConfigSchema, text);
    const raw = data as SiloConfig;
    // `tools = ["python", "node"]` claims tools without pinning versions; the table form does both.
    const tools = raw.tools as unknown;
    if (Array.isArray(tools)) {
      claims = [...new Set(tools as string[])];
      delete raw.tools;
    } else if (tools) claims = Object.keys(tools);
    trust = trustStateOf(home, found.file, found.hash);
    if (trust === "trusted") project = raw;
    else ({ config: project, ignored } = stripWidening(raw));
  }
  const file = found?.file ?? null;
  return {
    root: file ? dirname(file) : resolve(cwd),
    file,
    hash: found?.hash ?? null,
    trust,
    ignored,
    claims,
    global,
    project,
    merged: mergeConfig(project, global),
  };
}

/** One warning for an untrusted project file whose widening settings were dropped. */
export function warnUntrusted(p: ProjectConfig): void {
  if (!p.file || p.ignored.length === 0) return;
  const what = p.trust === "changed" ? "changed since you trusted it" : "not trusted";
  log.warn(`${p.file} is ${what}; ignoring ${p.ignored.join(", ")}. Review it, then run \`silo trust\` to apply them.`);
}

/** Everything about one tool after registry → global → project merging. */
export interface ResolvedTool {
  name: string;
  def: ToolDef;
  version: string;
  /** Full image reference, `image:version` unless overridden. */
  image: string;
  env: Record<string, string>;
  passEnv: string[];
  passFiles: string[];
  passSshAgent: boolean;
  network: { hostAccess: boolean; hostPorts: number[]; allow: string[]; deny: string[]; installAllow: string[] };
  /** `[network] caCertificates` as written (global, and a trusted project's): app/ca-bundle.ts. */
  caCertificates: string[];
  ports: PortForward[];
  resources: ResolvedResources;
  mount: { exclude: string[]; writable: string[]; protect: string[]; extra: { host: string; guest: string; readonly: boolean }[] };
  cache: CacheMount[];
  /** Shim name → command inside the container. */
  shims: Record<string, string[]>;
  /** `[overrides.<tool>.lsp]` of trusted config (command, install) and any config (env). */
  lsp?: LspOverride;
}

export function resolveTool(p: ProjectConfig, def: ToolDef, pinned?: string): ResolvedTool {
  const c = p.merged;
  const o = c.overrides?.[def.name] ?? {};
  const net = mergeConfig(o.network ?? {}, c.network ?? {}, def.network ?? {});
  const version = o.version ?? c.tools?.[def.name] ?? pinned ?? def.versions.default;
  return {
    name: def.name,
    def,
    version,
    image: o.image ?? `${def.image}:${version}`,
    env: { ...def.env, ...c.env, ...o.env },
    passEnv: [...new Set([...(c.passEnv ?? []), ...(o.passEnv ?? [])])],
    passFiles: [...new Set([...(c.passFiles ?? []), ...(o.passFiles ?? [])])],
    passSshAgent: o.passSshAgent ?? c.passSshAgent ?? false,
    network: {
      hostAccess: net.hostAccess ?? false,
      hostPorts: net.hostPorts ?? [],
      allow: net.proxy?.allow ?? [],
      deny: net.proxy?.deny ?? [],
      installAllow: net.proxy?.installAllow ?? [],
    },
    caCertificates: c.network?.caCertificates ?? [],
    ports: o.ports ?? [],
    resources: resolveResources(p, def),
    mount: {
      exclude: c.mount?.exclude ?? [],
      writable: c.mount?.writable ?? [],
      protect: c.mount?.protect ?? [],
      extra: (c.mount?.extra ?? []).map((m) => ({ ...m, readonly: m.readonly ?? false })),
    },
    cache: def.cache ?? [],
    shims: parseShims(def.shims),
    lsp: o.lsp,
  };
}

/** A sandbox's limits, sizes in MiB; all but `cpus` always have a value (DEFAULT_LIMITS). */
export interface ResolvedResources {
  cpus?: number;
  memoryMB: number;
  tmpMB: number;
  rootfsMB: number;
  pids: number;
}

/**
 * Defaults that never slow an ordinary build: 8192 processes and threads (a `make -j64` or a cargo build
 * with its rustc threads stays far below), a /tmp (and /dev/shm) of a quarter of the host's memory each
 * (the kernel's own tmpfs default is half), a writable layer (rootfs, RAM too) of a quarter, room for a
 * `pip install` of torch; memory three quarters of the host's (where a driver can enforce it: a linking
 * cargo build or a large JS build is not cut short, the host keeps a quarter); all cpus (the scheduler
 * shares them, a busy sandbox cannot take the host down).
 */
export const DEFAULT_LIMITS = { pids: 8192, tmpFraction: 0.25, rootfsFraction: 0.25, memoryFraction: 0.75 } as const;

type Layer = Resources | undefined;
const KEYS = ["cpus", "memory", "tmp", "rootfs", "pids"] as const;
// A size below 1 MiB would read as "no cap" (0) further down: the schema refuses one; never less than 1 here.
const numeric = (k: (typeof KEYS)[number], v: number | string | undefined): number | undefined =>
  v === undefined ? undefined : typeof v === "number" ? v : Math.max(1, parseSizeMB(v));

/**
 * The limits for one tool. Precedence as elsewhere: the tool's `[overrides.<tool>]`, then the top-level
 * `[resources]`, then the registry's, then the defaults. A project file that is not trusted may only lower
 * a limit (THREATS.md invariant 8: raising one is widening): each of its values counts only where it is
 * below what the global file, the registry and the defaults give; a raise goes to `p.ignored` (warned).
 */
export function resolveResources(p: Pick<ProjectConfig, "global" | "project" | "trust"> & { ignored?: string[] }, def: Pick<ToolDef, "name" | "resources">): ResolvedResources {
  const proj: Layer[] = [p.project.overrides?.[def.name]?.resources, p.project.resources];
  const glob: Layer[] = [p.global.overrides?.[def.name]?.resources, p.global.resources];
  const trusted = p.trust === "trusted" || p.trust === "none";
  // Trusted: the precedence of resolveTool's mergeConfig(override, resources, registry) over both files.
  const order: Layer[] = trusted ? [proj[0], glob[0], proj[1], glob[1], def.resources] : [...glob, def.resources];
  const base: Partial<Record<(typeof KEYS)[number], number>> = {};
  for (const k of KEYS) base[k] = numeric(k, order.find((l) => l?.[k] !== undefined)?.[k]);
  const hostMB = totalmem() / (1024 * 1024);
  base.pids ??= DEFAULT_LIMITS.pids;
  base.tmp ??= Math.max(64, Math.floor(hostMB * DEFAULT_LIMITS.tmpFraction));
  base.rootfs ??= Math.max(1024, Math.floor(hostMB * DEFAULT_LIMITS.rootfsFraction));
  base.memory ??= Math.max(512, Math.floor(hostMB * DEFAULT_LIMITS.memoryFraction));
  if (!trusted)
    for (const k of KEYS) {
      const v = numeric(k, proj.find((l) => l?.[k] !== undefined)?.[k]);
      if (v === undefined) continue;
      // A raise is dropped, and said so with the file's other ignored settings (app/context.ts warnIgnored).
      const what = `resources.${k} (only a lower value applies untrusted)`;
      if (base[k] !== undefined && v > base[k]! && p.ignored && !p.ignored.includes(what)) p.ignored.push(what);
      base[k] = base[k] === undefined ? v : Math.min(v, base[k]!);
    }
  return { cpus: base.cpus, memoryMB: base.memory, tmpMB: base.tmp, rootfsMB: base.rootfs, pids: base.pids };
}

/** `["python", "ipython:python -m IPython"]` → { python: ["python"], ipython: ["python", "-m", "IPython"] }. */
export function parseShims(list: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of list) {
    const i = s.indexOf(":");
    const name = i < 0 ? s : s.slice(0, i);
    out[name] = i < 0 ? [s] : s.slice(i + 1).trim().split(/\s+/);
  }
  return out;
}


/** `config show`: each merged leaf with the layer it came from (arrays list every contributing layer). */
export function provenance(p: ProjectConfig, registry?: { def: ToolDef }): { key: string; value: unknown; from: string }[] {
  const layers: [string, Record<string, unknown>][] = [];
  if (registry) layers.push([`registry:${registry.def.name}`, flatten({ overrides: { [registry.def.name]: { network: registry.def.network, env: registry.def.env, resources: registry.def.resources } } })]);
  layers.push([p.global ? "global silo.toml" : "", flatten(p.global)]);
  if (p.file) layers.push([p.file, flatten(p.project)]);
  const merged = flatten(mergeConfig(p.project, p.global, registry ? { overrides: { [registry.def.name]: { network: registry.def.network, env: registry.def.env, resources: registry.def.resources } } } : {}));
  return Object.entries(merged).map(([key, value]) => {
    const from = layers.filter(([, l]) => key in l).map(([n]) => n);
    return { key, value, from: from.length ? (Array.isArray(value) ? from.join(" + ") : from[from.length - 1]!) : "default" };
  });
}
