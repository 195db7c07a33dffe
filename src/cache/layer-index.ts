/**
 * Project build layers live in the projects (<project>/.silo/<tool>/), where `silo cache` cannot find
 * them by itself. Each build records its layer here (SILO_HOME/state/project-layers.json) so that gc
 * keeps the images they were built on and `silo cache report` can count them. Entries whose layer is
 * gone are dropped when read.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.ts";
import type { HomePaths } from "../core/paths.ts";
import { currentLayer, layerIdentity, readMeta } from "./layers.ts";

export interface ProjectLayerRecord {
  /** The scope directory, <project>/.silo/<tool>. */
  base: string;
  tool: string;
  project: string;
  digest: string;
  /** The generation built or trusted, and its root's identity then (layers.ts `isRecordedLayer`). */
  gen?: string;
  id?: string;
}

const indexPath = (home: HomePaths) => join(home.state, "project-layers.json");

function read(home: HomePaths): ProjectLayerRecord[] {
  try {
    return JSON.parse(readFileSync(indexPath(home), "utf8")) as ProjectLayerRecord[];
  } catch {
    return [];
  }
}

export function recordProjectLayer(home: HomePaths, r: ProjectLayerRecord) {
  const all = read(home).filter((x) => x.base !== r.base);
  all.push(r);
  writeFileAtomic(indexPath(home), JSON.stringify(all, null, 2) + "\n");
}

export function forgetProjectLayer(home: HomePaths, base: string) {
  const all = read(home);
  const kept = all.filter((x) => x.base !== base);
  if (kept.length !== all.length) writeFileAtomic(indexPath(home), JSON.stringify(kept, null, 2) + "\n");
}

/**
 * `silo trust`: record the project's current layers (<root>/.silo/<tool>) as they are now, so runs stack
 * them. Returns the tools whose layer was recorded.
 */
export function trustProjectLayers(home: HomePaths, root: string): string[] {
  const dir = join(root, ".silo");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const trusted: string[] = [];
  for (const tool of names.sort()) {
    const base = join(dir, tool);
    const ref = currentLayer(base, "project");
    const id = ref && layerIdentity(ref.root);
    if (!ref || !id) continue;
    recordProjectLayer(home, { base, tool, project: root, digest: readMeta(ref)?.digest ?? "", gen: ref.gen, id });
    trusted.push(tool);
  }
  return trusted;
}

/** Project layers that still exist, with the digest of their current generation. */
export function knownProjectLayers(home: HomePaths): ProjectLayerRecord[] {
  const all = read(home);
  const live: ProjectLayerRecord[] = [];
  for (const r of all) {
    const ref = currentLayer(r.base, "project");
    if (!ref) continue;
    live.push({ ...r, digest: readMeta(ref)?.digest ?? r.digest });
  }
  if (live.length !== all.length) writeFileAtomic(indexPath(home), JSON.stringify(live, null, 2) + "\n");
  return live;
}
