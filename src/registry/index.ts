import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { checkSchema } from "../config/_schema-dsl.ts";
import { REQUIRED_TOOL_KEYS, toolDefSchema, type CacheMount, type ToolDef } from "../config/schema.ts";

export interface Registry {
  tools: Map<string, ToolDef>;
  /** `embedded`, or the giget source the cached overlay came from. */
  source: string;
  /** Entries of the overlay that were rejected, with file and reason. */
  rejected: { file: string; reason: string }[];
}

/** Check one registry entry. Returns the problems (empty when valid). */
export function validateToolDef(data: unknown, file: string): string[] {
  const issues = checkSchema(data, toolDefSchema).map((i) => i.message);
  const d = (data ?? {}) as Record<string, unknown>;
  for (const k of REQUIRED_TOOL_KEYS) if (d[k] === undefined) issues.push(`missing required key \`${k}\``);
  const v = d.versions as ToolDef["versions"] | undefined;
  if (v?.available && v.default && !v.available.includes(v.default))
    issues.push(`versions.default \`${v.default}\` is not in versions.available`);
  if (Array.isArray(d.cache)) issues.push(...checkCacheLayout(d.cache as CacheMount[]));
  const expected = file.replace(/^.*\//, "").replace(/\.toml$/, "");
  if (typeof d.name === "string" && file.endsWith(".toml") && d.name !== expected)
    issues.push(`name \`${d.name}\` does not match the file name \`${expected}.toml\``);
  return issues;
}

/**
 * Names and paths are unique. A `login` file is a direct child of a `project` cache (its first copy is read
 * from there on the host, and a directory in between could be the sandbox's link to a host directory). A
 * mount inside a `shared` one is a direct child too: silo keeps its mount point a real directory.
 */
function checkCacheLayout(list: CacheMount[]): string[] {
  const issues: string[] = [];
  const seen = new Set<string>();
  for (const c of list) {
    if (typeof c?.name !== "string" || typeof c.path !== "string") continue; // the schema reported it
    if (seen.has(c.name)) issues.push(`cache \`${c.name}\` is declared twice`);
    if (seen.has(`path:${c.path}`)) issues.push(`cache path \`${c.path}\` is declared twice`);
    seen.add(c.name).add(`path:${c.path}`);
    const parent = (o: CacheMount) => c.path.startsWith(`${o.path}/`);
    const inside = (o: CacheMount) => c.path === `${o.path}/${c.path.split("/").at(-1)}`;
    if (c.scope === "login" && !list.some((o) => (o.scope ?? "project") === "project" && inside(o)))
      issues.push(`cache \`${c.name}\`: a login file must be directly inside a cache of scope "project" (where the login writes it first)`);
    if (list.some((o) => o.scope === "shared" && parent(o) && !inside(o)))
      issues.push(`cache \`${c.name}\`: a mount inside a shared cache must be directly inside it`);
  }
  return issues;
}

/** The embedded registry, overlaid by the cached update (`silo registry update`) when there is one. */
export async function loadRegistry(home: HomePaths): Promise<Registry> {
  const { embedded } = await import("./_embedded.ts");
  const tools = new Map<string, ToolDef>();
  for (const [name, data] of Object.entries(embedded)) tools.set(name, data as unknown as ToolDef);
  const reg: Registry = { tools, source: "embedded", rejected: [] };
  const dir = join(home.registryCache, "current");
  if (!existsSync(dir)) return reg;
  const { parse } = await import("smol-toml");
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".toml")).sort()) {
    const file = join(dir, f);
    try {
      const data = parse(readFileSync(file, "utf8"));
      const problems = validateToolDef(data, file);
      if (problems.length) reg.rejected.push({ file, reason: problems.join("; ") });
      else tools.set((data as unknown as ToolDef).name, data as unknown as ToolDef);
    } catch (e) {
      reg.rejected.push({ file, reason: String((e as Error).message).split("\n")[0]! });
    }
  }
  const meta = join(home.registryCache, "source.json");
  if (existsSync(meta)) reg.source = (JSON.parse(readFileSync(meta, "utf8")) as { source: string }).source;
  return reg;
}

export function requireTool(reg: Registry, name: string): ToolDef {
  const def = reg.tools.get(name);
  if (def) return def;
  const { closest } = require("../config/_schema-dsl.ts") as typeof import("../config/_schema-dsl.ts");
  const near = closest(name, [...reg.tools.keys()]);
  throw new SiloError(
    "E_TOOL_UNKNOWN",
    `unknown tool \`${name}\`${near ? ` (did you mean \`${near}\`?)` : ""}`,
    "`silo list --available` shows the registry; `silo install NAME --image IMAGE` installs a custom tool",
  );
}

/** Resolve a version request (`3.11-slim`, a label like `latest`, or nothing) against a definition. */
export function resolveVersion(def: ToolDef, requested?: string): string {
  if (!requested) return def.versions.default;
  const label = def.versions.labels?.[requested];
  if (label) return label;
  if (!def.versions.available.includes(requested))
    log.warn(`${def.name}@${requested} is not a listed version (${def.versions.available.join(", ")}); trying the image tag as given`);
  return requested;
}
