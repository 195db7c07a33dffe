/**
 * Disk usage the way `du` counts it, so `silo cache report` agrees with it: allocated blocks
 * (st_blocks × 512, `du -s -B1`) and apparent size (st_size, `du -s -b`), each inode once however many
 * hard links it has, directories and symlinks included, nothing followed.
 */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface Usage {
  /** Bytes allocated on disk. */
  disk: number;
  /** Sum of file sizes. */
  apparent: number;
  /** Entries (files, directories, links). */
  entries: number;
}

export const emptyUsage = (): Usage => ({ disk: 0, apparent: 0, entries: 0 });

export function addUsage(a: Usage, b: Usage): Usage {
  return { disk: a.disk + b.disk, apparent: a.apparent + b.apparent, entries: a.entries + b.entries };
}

/**
 * Usage of `path` (a file or a tree). `seen` carries hard-linked inodes across calls: pass one set to
 * measure several paths as one `du` invocation would (a hard link counted once over all of them).
 */
export function measure(path: string, seen: Set<string> = new Set()): Usage {
  const u = emptyUsage();
  const visit = (p: string) => {
    let st;
    try {
      st = lstatSync(p, { bigint: false });
    } catch {
      return; // vanished while we looked
    }
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    u.disk += st.blocks * 512;
    u.apparent += st.size;
    u.entries++;
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = readdirSync(p);
      } catch {
        return;
      }
      for (const n of names) visit(join(p, n));
    }
  };
  visit(path);
  return u;
}

/** Regular files under `dir` with size, allocation and last use (the later of atime and mtime). */
export function listFiles(dir: string): { path: string; disk: number; size: number; used: number }[] {
  const out: { path: string; disk: number; size: number; used: number }[] = [];
  const visit = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = readdirSync(p);
      } catch {}
      for (const n of names) visit(join(p, n));
    } else out.push({ path: p, disk: st.blocks * 512, size: st.size, used: Math.max(st.atimeMs, st.mtimeMs) });
  };
  visit(dir);
  return out;
}

/** `1.2 GB`, `340 kB`: decimal units, as `du -h --si` and the pull progress print them. */
export function formatSize(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatAge(ms: number): string {
  const d = ms / 86_400_000;
  if (d >= 2) return `${Math.floor(d)} days ago`;
  const h = ms / 3_600_000;
  if (h >= 2) return `${Math.floor(h)} hours ago`;
  const m = ms / 60_000;
  return m >= 2 ? `${Math.floor(m)} minutes ago` : "just now";
}
