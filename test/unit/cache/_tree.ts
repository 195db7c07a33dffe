// Test helpers: describe a directory tree completely (what "byte-identical" means for a rootfs).
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { readXattrs } from "../../../src/core/xattr.ts";

export interface EntryInfo {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: number;
  xattrs?: Record<string, string>;
  /** Paths sharing this inode within the tree (hard links), sorted. */
  links?: string[];
}

export function describeTree(root: string, opts: { mtime?: boolean } = {}): Record<string, EntryInfo> {
  const out: Record<string, EntryInfo> = {};
  const inodes = new Map<string, string[]>();
  const walk = (rel: string) => {
    const p = rel ? join(root, rel) : root;
    const st = lstatSync(p);
    const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : st.isCharacterDevice() ? "char" : st.isBlockDevice() ? "block" : st.isFIFO() ? "fifo" : "other";
    const e: EntryInfo = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: opts.mtime === false ? 0 : Math.floor(st.mtimeMs / 1000) };
    if (type === "symlink") e.mode = 0;
    if (type === "file") {
      e.size = st.size;
      e.sha256 = new Bun.CryptoHasher("sha256").update(readFileSync(p)).digest("hex");
    }
    if (type === "symlink") e.link = readlinkSync(p);
    if (type === "char" || type === "block") e.rdev = st.rdev;
    const x = readXattrs(p);
    if (Object.keys(x).length) e.xattrs = Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v.toString("hex")]));
    if (type !== "dir" && st.nlink > 1) {
      const k = `${st.ino}`;
      inodes.set(k, [...(inodes.get(k) ?? []), rel]);
      (e as EntryInfo & { ino: string }).ino = k;
    }
    out[rel || "."] = e;
    if (type === "dir") for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk("");
  // Hard links within the tree; a link count that only comes from links outside it (test homes share
  // their rootfs with a template by hard links) is not part of the tree.
  for (const e of Object.values(out)) {
    const k = (e as EntryInfo & { ino?: string }).ino;
    if (k) {
      delete (e as EntryInfo & { ino?: string }).ino;
      if (inodes.get(k)!.length > 1) e.links = inodes.get(k)!.sort();
    }
  }
  return out;
}
