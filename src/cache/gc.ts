/**
 * The planners behind `silo cache gc|compress|clean`: pure functions from what is on disk (and what is in
 * use) to a list of actions. The commands print a plan for --dry-run and execute the very same plan
 * otherwise, so what a dry run shows is what a real run does.
 */

import { formatSize } from "./usage.ts";

/** A rootfs entry: SILO_HOME/rootfs/<hex>/ and/or <hex>.tar.zst, with its marker <hex>.json. */
export interface RootfsEntry {
  digest: string;
  /** The unpacked directory, when present. */
  dir: string | null;
  /** The zstd archive, when present. */
  archive: string | null;
  /** Disk bytes of the directory, the archive and the marker together. */
  bytes: number;
  /** Milliseconds since the epoch (the marker's mtime, which every run touches). */
  lastUsed: number;
  refs: string[];
  /** Why it must stay (installed tool, build layer, running sandbox); empty when it may go. */
  keep: string[];
}

export type Action =
  | { kind: "remove-rootfs"; digest: string; bytes: number; reason: string }
  | { kind: "compress"; digest: string; bytes: number; reason: string }
  | { kind: "remove-image"; digest: string; bytes: number; reason: string }
  | { kind: "remove-blob"; digest: string; bytes: number; reason: string }
  | { kind: "remove-path"; path: string; bytes: number; reason: string };

export const DAY = 86_400_000;
export const MB = 1024 * 1024;

export interface RootfsLimits {
  /** Evict least recently used entries while the rootfs cache is larger than this. */
  maxBytes: number;
  /** Evict entries unused for longer than this. */
  maxAgeMs: number;
  now: number;
}

const days = (ms: number) => Math.floor(ms / DAY);

/**
 * Age first (entries unused for longer than maxAge), then LRU while the total is above maxBytes. Kept
 * entries count towards the total but are never chosen, so the cache may stay above the limit.
 */
export function planRootfsGc(entries: RootfsEntry[], limits: RootfsLimits): Action[] {
  const plan: Action[] = [];
  const gone = new Set<string>();
  for (const e of entries) {
    if (e.keep.length || limits.now - e.lastUsed <= limits.maxAgeMs) continue;
    plan.push({ kind: "remove-rootfs", digest: e.digest, bytes: e.bytes, reason: `unused for ${days(limits.now - e.lastUsed)} days (maxAgeDays ${days(limits.maxAgeMs)})` });
    gone.add(e.digest);
  }
  let total = entries.filter((e) => !gone.has(e.digest)).reduce((s, e) => s + e.bytes, 0);
  const lru = entries.filter((e) => !gone.has(e.digest) && e.keep.length === 0).sort((a, b) => a.lastUsed - b.lastUsed);
  for (const e of lru) {
    if (total <= limits.maxBytes) break;
    plan.push({ kind: "remove-rootfs", digest: e.digest, bytes: e.bytes, reason: `least recently used while the cache is above ${Math.round(limits.maxBytes / MB)} MB` });
    total -= e.bytes;
  }
  return plan;
}

export interface ImageInfo {
  digest: string;
  /** Every blob the image needs: manifest, config, layers (and the index it was picked from). */
  blobs: string[];
  /** Keep it (in use, or its rootfs stays); otherwise it is forgotten with the blobs only it needs. */
  keep: boolean;
}

/**
 * Images not kept are dropped from the index; blobs that no kept image needs are deleted. Blobs written in
 * the last `graceMs` are left alone: a pull in progress stores blobs before it records the image.
 */
export function planImages(images: ImageInfo[], blobs: { digest: string; size: number; mtimeMs: number }[], now: number, graceMs = 3_600_000): Action[] {
  const plan: Action[] = [];
  const needed = new Set<string>();
  for (const i of images) if (i.keep) for (const b of i.blobs) needed.add(b);
  const sizes = new Map(blobs.map((b) => [b.digest, b.size]));
  for (const i of images)
    if (!i.keep) plan.push({ kind: "remove-image", digest: i.digest, bytes: 0, reason: "its rootfs is gone and nothing uses it" });
  const known = new Set(images.flatMap((i) => i.blobs));
  for (const b of blobs) {
    if (needed.has(b.digest) || now - b.mtimeMs < graceMs) continue;
    plan.push({ kind: "remove-blob", digest: b.digest, bytes: sizes.get(b.digest) ?? 0, reason: known.has(b.digest) ? "only a removed image used it" : "no image uses it (orphan)" });
  }
  return plan;
}

/** Oldest-used files first until the tree is within `capBytes`. */
export function planTrim(files: { path: string; disk: number; used: number }[], capBytes: number, label: string): Action[] {
  let total = files.reduce((s, f) => s + f.disk, 0);
  const plan: Action[] = [];
  for (const f of [...files].sort((a, b) => a.used - b.used || (a.path < b.path ? -1 : 1))) {
    if (total <= capBytes) break;
    plan.push({ kind: "remove-path", path: f.path, bytes: f.disk, reason: `${label} is above its cap of ${Math.round(capBytes / MB)} MB` });
    total -= f.disk;
  }
  return plan;
}

/**
 * Entries to compress: unpacked, not in use by a running sandbox, and unused for `minAgeMs` (or all).
 * An entry that is both unpacked and archived only loses its directory (the archive is complete).
 */
export function planCompress(entries: RootfsEntry[], opts: { minAgeMs: number; all: boolean; now: number; running: Set<string> }): Action[] {
  const plan: Action[] = [];
  for (const e of entries) {
    if (!e.dir || opts.running.has(e.digest)) continue;
    if (!opts.all && opts.now - e.lastUsed < opts.minAgeMs) continue;
    plan.push({ kind: "compress", digest: e.digest, bytes: e.bytes, reason: e.archive ? "already archived: drop the directory" : opts.all ? "--all" : `unused for ${days(opts.now - e.lastUsed)} days` });
  }
  return plan;
}

export const planBytes = (plan: Action[]) => plan.reduce((s, a) => s + a.bytes, 0);

/** One line per action, for people. */
export function describeAction(a: Action): string {
  const what = "path" in a ? a.path : a.digest.slice(0, 19);
  const verb = { "remove-rootfs": "remove rootfs", compress: "compress rootfs", "remove-image": "forget image", "remove-blob": "remove blob", "remove-path": "remove" }[a.kind];
  return `${verb} ${what}${a.bytes ? ` (${formatSize(a.bytes)})` : ""}: ${a.reason}`;
}
