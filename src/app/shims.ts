import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.ts";
import type { HomePaths } from "../core/paths.ts";
import type { InstalledConfig } from "../config/schema.ts";
import { parseShims } from "../config/resolve.ts";
import { selfCommand } from "./run.ts";

/** SILO_HOME/bin/.shims.json: shim name → owning tool, read by the argv[0] dispatch on every shim call. */
export type ShimMap = Record<string, { tool: string; command: string[] }>;
export const SHIM_INDEX = ".shims.json";

export function shimsOf(cfg: InstalledConfig): { map: ShimMap; conflicts: string[] } {
  const map: ShimMap = {};
  const conflicts: string[] = [];
  for (const [tool, t] of Object.entries(cfg.tools)) {
    const all = parseShims([...t.definition.shims, ...(t.extraShims ?? [])]);
    for (const [name, command] of Object.entries(all)) {
      const owner = map[name];
      if (owner && owner.tool !== tool) conflicts.push(`shim \`${name}\` is claimed by ${owner.tool} and ${tool}; \`${name}\` runs ${owner.tool} (remove it from one with \`silo shim remove\`)`);
      else map[name] = { tool, command };
    }
  }
  return { map, conflicts };
}

/** Make SILO_HOME/bin match the installed tools: add missing shims, remove stale ones, rewrite the index. */
export async function syncShims(home: HomePaths, cfg: InstalledConfig): Promise<{ map: ShimMap; conflicts: string[]; added: string[]; removed: string[] }> {
  const { map, conflicts } = shimsOf(cfg);
  mkdirSync(home.bin, { recursive: true });
  const self = selfCommand();
  const added: string[] = [];
  const removed: string[] = [];
  for (const f of readdirSync(home.bin)) {
    if (f === SHIM_INDEX || map[f]) continue;
    if (isOurShim(join(home.bin, f), self)) {
      rmSync(join(home.bin, f), { force: true });
      removed.push(f);
    }
  }
  for (const name of Object.keys(map)) {
    const path = join(home.bin, name);
    if (existsSync(path) && isOurShim(path, self)) continue;
    rmSync(path, { force: true });
    writeShim(path, name, self);
    added.push(name);
  }
  writeFileAtomic(join(home.bin, SHIM_INDEX), JSON.stringify(map));
  return { map, conflicts, added, removed };
}

/** A compiled silo is symlinked (argv[0] dispatch); in development a tiny script calls bun. */
function writeShim(path: string, name: string, self: string[]) {
  if (self.length === 1) symlinkSync(self[0]!, path);
  else writeFileSync(path, `#!/bin/sh\n# silo shim\nexec ${self.map(q).join(" ")} __shim ${q(name)} "$@"\n`, { mode: 0o755 });
}

function isOurShim(path: string, self: string[]): boolean {
  try {
    if (lstatSync(path).isSymbolicLink()) return readlinkSync(path) === self[0] || readlinkSync(path).endsWith("/silo");
    return readFileSync(path, "utf8").includes("# silo shim");
  } catch {
    return false;
  }
}

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export function readShimIndex(home: HomePaths): ShimMap {
  try {
    return JSON.parse(readFileSync(join(home.bin, SHIM_INDEX), "utf8")) as ShimMap;
  } catch {
    return {};
  }
}
