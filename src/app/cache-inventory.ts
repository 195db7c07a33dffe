/**
 * What SILO_HOME holds and what of it is in use, gathered once for `silo cache` commands: rootfs entries
 * (unpacked and/or archived) with their last use and the reasons they must stay, the image index, build
 * layers, running sandboxes (read from the kernel's mount tables, see src/cache/inuse.ts).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { HomePaths } from "../core/paths.ts";
import { readInstalled } from "../config/installed.ts";
import type { InstalledTool } from "../config/schema.ts";
import type { ImageInfo, RootfsEntry } from "../cache/gc.ts";
import { mountedLayers } from "../cache/inuse.ts";
import { knownProjectLayers } from "../cache/layer-index.ts";
import { currentLayer, readMeta } from "../cache/layers.ts";
import { measure } from "../cache/usage.ts";

export interface Inventory {
  home: HomePaths;
  now: number;
  rootfs: RootfsEntry[];
  installed: Record<string, InstalledTool>;
  /** Layer and upper directories of running sandboxes. */
  mounted: Set<string>;
  /** Digests whose rootfs a running sandbox uses. */
  runningDigests: Set<string>;
  /** Tools with a running sandbox (their caches are not trimmed). */
  runningTools: Set<string>;
  /** Running sandboxes (src/runner/state.ts). */
  sandboxes: number;
  /** digest → why it must stay. */
  keep: Map<string, string[]>;
}

const HEX = /^[0-9a-f]{64}$/;

export async function takeInventory(home: HomePaths, opts: { sizes?: boolean } = {}): Promise<Inventory> {
  const now = Date.now();
  const installed = (await readInstalled(home)).tools;
  const mounted = mountedLayers();
  const keep = new Map<string, string[]>();
  const why = (digest: string, reason: string) => keep.set(digest, [...(keep.get(digest) ?? []), reason]);
  for (const [name, t] of Object.entries(installed)) why(t.digest, `installed: ${name}`);
  for (const tool of listDir(home.builds)) {
    const ref = currentLayer(join(home.builds, tool), "global");
    const meta = ref && readMeta(ref);
    if (meta) why(meta.digest, `global build layer of ${tool}`);
  }
  for (const p of knownProjectLayers(home)) why(p.digest, `build layer of ${p.tool} in ${p.project}`);
  const runningDigests = new Set<string>();
  for (const m of mounted) {
    if (!m.startsWith(home.rootfs + "/")) continue;
    const hex = m.slice(home.rootfs.length + 1);
    if (HEX.test(hex)) {
      runningDigests.add(`sha256:${hex}`);
      why(`sha256:${hex}`, "used by a running sandbox");
    }
  }
  const { listSandboxes } = await import("../runner/state.ts");
  const sandboxes = await listSandboxes(home.home).catch(() => []);
  const runningTools = new Set(sandboxes.map((s) => s.tool));
  return { home, now, rootfs: listRootfsEntries(home, keep, opts.sizes !== false), installed, mounted, runningDigests, runningTools, sandboxes: sandboxes.length, keep };
}

export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Entries are named by their marker (<hex>.json, written once an unpack is complete). */
function listRootfsEntries(home: HomePaths, keep: Map<string, string[]>, sizes: boolean): RootfsEntry[] {
  const names = new Set(listDir(home.rootfs));
  const out: RootfsEntry[] = [];
  for (const n of names) {
    const hex = n.endsWith(".json") ? n.slice(0, -5) : "";
    if (!HEX.test(hex)) continue;
    const digest = `sha256:${hex}`;
    const marker = join(home.rootfs, n);
    const dir = names.has(hex) ? join(home.rootfs, hex) : null;
    const archive = names.has(`${hex}.tar.zst`) ? join(home.rootfs, `${hex}.tar.zst`) : null;
    let lastUsed = 0;
    try {
      lastUsed = statSync(marker).mtimeMs;
    } catch {
      continue;
    }
    const seen = new Set<string>();
    const bytes = sizes ? [marker, dir, archive].reduce((s, p) => s + (p ? measure(p, seen).disk : 0), 0) : 0;
    let refs: string[] = [];
    try {
      refs = (JSON.parse(readFileSync(marker, "utf8")) as { refs?: string[] }).refs ?? [];
    } catch {}
    out.push({ digest, dir, archive, bytes, lastUsed, refs, keep: keep.get(digest) ?? [] });
  }
  return out.sort((a, b) => b.lastUsed - a.lastUsed);
}

/** The image index as gc sees it: each image with every blob it needs. */
export async function listImageInfo(home: HomePaths, keepDigest: (digest: string) => boolean): Promise<ImageInfo[]> {
  if (!existsSync(home.db)) return [];
  const { openDb, listImages, layersOf } = await import("../cache/db.ts");
  const db = openDb(home);
  const indexOf = db.query("SELECT DISTINCT index_digest AS d FROM refs WHERE digest = ?1 AND index_digest IS NOT NULL");
  return listImages(db).map((i) => ({
    digest: i.digest,
    blobs: [i.digest, i.configDigest, ...layersOf(db, i.digest), ...(indexOf.all(i.digest) as { d: string }[]).map((r) => r.d)],
    keep: keepDigest(i.digest),
  }));
}
