/**
 * `silo cache report` (on-disk and apparent size per bucket of SILO_HOME, counted as `du` counts) and
 * `silo cache list` (one line per rootfs entry).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { homePaths, type HomePaths } from "../core/paths.ts";
import { knownProjectLayers } from "../cache/layer-index.ts";
import { addUsage, emptyUsage, measure, type Usage } from "../cache/usage.ts";
import { listDir, listImageInfo, takeInventory } from "./cache-inventory.ts";

export interface Bucket extends Usage {
  name: string;
  /** What was measured (each path as `du -s` would). */
  paths: string[];
  note?: string;
  /** Orphan blobs of the image store (a part of its bucket). */
  orphans?: Usage & { blobs: number };
  /** Running sandboxes (live-sandboxes bucket). */
  running?: number;
}

export interface CacheReport {
  home: string;
  total: Usage;
  buckets: Bucket[];
}

export async function cacheReport(home: HomePaths = homePaths()): Promise<CacheReport> {
  const buckets: Bucket[] = [];
  const bucket = (name: string, paths: string[], extra: Partial<Bucket> = {}) => {
    const seen = new Set<string>();
    let u = emptyUsage();
    const present = paths.filter((p) => existsSync(p));
    for (const p of present) u = addUsage(u, measure(p, seen));
    buckets.push({ name, paths: present, ...u, ...extra });
  };
  const inv = await takeInventory(home, { sizes: false });
  const raw = inv.rootfs.filter((e) => e.dir).length;
  const zst = inv.rootfs.filter((e) => e.archive).length;
  bucket("rootfs", [home.rootfs], { note: `${inv.rootfs.length} entries (${raw} unpacked, ${zst} zstd)` });

  const { listBlobs } = await import("../cache/blobs.ts");
  const images = await listImageInfo(home, () => true);
  // Close the index before measuring: an open SQLite database in WAL mode has -wal/-shm files beside it
  // that vanish at exit, and the report must match a `du` run afterwards.
  (await import("../cache/db.ts")).closeDb(home);
  const needed = new Set(images.flatMap((i) => i.blobs));
  const orphanBlobs = listBlobs(home).filter((b) => !needed.has(b.digest));
  const { blobPath } = await import("../cache/blobs.ts");
  const seen = new Set<string>();
  const orphans = orphanBlobs.reduce((u, b) => addUsage(u, measure(blobPath(home, b.digest), seen)), emptyUsage());
  bucket("images", [home.images], { note: `${images.length} images`, orphans: { ...orphans, blobs: orphanBlobs.length } });

  for (const tool of listDir(home.cache)) bucket(`cache: ${tool}`, [join(home.cache, tool)], { note: listDir(join(home.cache, tool)).join(", ") });
  bucket("builds (global)", [home.builds], { note: `${listDir(home.builds).length} tools` });
  const projects = knownProjectLayers(home);
  bucket("builds (projects)", projects.map((p) => p.base), { note: `${projects.length} layers` });
  bucket("live sandboxes", [home.run], { running: inv.sandboxes, note: `${inv.sandboxes} running` });
  bucket("state", [home.state, home.registryCache, home.trust, home.bin, home.installed, home.globalConfig]);

  const covered = new Set([home.rootfs, home.images, home.cache, home.builds, home.run, home.state, home.registryCache, home.trust, home.bin, home.installed, home.globalConfig]);
  const others = listDir(home.home).map((n) => join(home.home, n)).filter((p) => !covered.has(p));
  if (others.length) bucket("other", others);
  const total = existsSync(home.home) ? measure(home.home) : emptyUsage();
  return { home: home.home, total, buckets };
}

export interface ListedEntry {
  digest: string;
  refs: string[];
  format: "raw" | "zstd" | "both" | "missing";
  /** Disk bytes (directory, archive and marker). */
  size: number;
  lastUsed: string;
  inUse: string[];
}

export async function cacheList(home: HomePaths = homePaths()): Promise<ListedEntry[]> {
  const inv = await takeInventory(home);
  return inv.rootfs.map((e) => ({
    digest: e.digest,
    refs: e.refs,
    format: e.dir && e.archive ? "both" : e.dir ? "raw" : e.archive ? "zstd" : "missing",
    size: e.bytes,
    lastUsed: new Date(e.lastUsed).toISOString(),
    inUse: e.keep,
  }));
}
