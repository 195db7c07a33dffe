/**
 * Ready rootfs directories: SILO_HOME/rootfs/<hex of manifest digest>/ with <hex>.json beside it. The
 * marker is written only after the directory was renamed into place, so "marker and directory both
 * present" means complete. Only node:fs here: `silo run` imports this on its hot path.
 */
import { readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { removeTree, writeFileAtomic } from "../core/fs.ts";
import { homePaths, type HomePaths } from "../core/paths.ts";
import type { ImageConfig } from "./manifest.ts";

export type { ImageConfig };

export interface RootfsMarker {
  digest: string;
  config: ImageConfig;
  configDigest: string;
  platform: string;
  /** Canonical refs this rootfs was pulled as. */
  refs: string[];
  layers: string[];
  sizes: { download: number; unpacked: number };
  createdAt: string;
}

const hexOf = (digest: string) => {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  return m ? m[1]! : null;
};

export function rootfsDir(home: HomePaths, digest: string): string {
  const hex = hexOf(digest);
  if (!hex) throw new Error(`not a sha256 digest: ${digest}`);
  return join(home.rootfs, hex);
}
export const markerPath = (home: HomePaths, digest: string) => `${rootfsDir(home, digest)}.json`;

export function readMarker(home: HomePaths, digest: string): RootfsMarker | null {
  if (!hexOf(digest)) return null;
  try {
    return JSON.parse(readFileSync(markerPath(home, digest), "utf8")) as RootfsMarker;
  } catch {
    return null;
  }
}

export function writeMarker(home: HomePaths, m: RootfsMarker) {
  writeFileAtomic(markerPath(home, m.digest), `${JSON.stringify(m, null, 2)}\n`);
}

/**
 * Fast path for `silo run`: no network, no database. The rootfs and its image config when complete,
 * else null. Touches the marker's mtime, which is the rootfs's "last used" for `silo cache`.
 */
export function localImage(digest: string, home: HomePaths = homePaths()): { rootfs: string; config: ImageConfig } | null {
  const marker = readMarker(home, digest);
  if (!marker) return null;
  const rootfs = rootfsDir(home, digest);
  try {
    if (!statSync(rootfs).isDirectory()) return null;
  } catch {
    return null;
  }
  try {
    const now = new Date();
    utimesSync(markerPath(home, digest), now, now);
  } catch {}
  return { rootfs, config: marker.config };
}

/** When a rootfs was last handed to a sandbox (its marker's mtime), or null when it is not complete. */
export function rootfsLastUsed(home: HomePaths, digest: string): Date | null {
  try {
    return statSync(markerPath(home, digest)).mtime;
  } catch {
    return null;
  }
}

/** Complete rootfs directories: digest, path, marker. */
export function listRootfs(home: HomePaths = homePaths()): { digest: string; path: string; marker: RootfsMarker; lastUsed: Date }[] {
  let names: string[];
  try {
    names = readdirSync(home.rootfs);
  } catch {
    return [];
  }
  const out = [];
  for (const n of names) {
    const m = /^([a-f0-9]{64})\.json$/.exec(n);
    if (!m) continue;
    const digest = `sha256:${m[1]}`;
    const marker = readMarker(home, digest);
    const lastUsed = rootfsLastUsed(home, digest);
    if (marker && lastUsed) out.push({ digest, path: rootfsDir(home, digest), marker, lastUsed });
  }
  return out;
}


/**
 * Remove a rootfs: marker first (from then on localImage() says null), then the tree, which is moved
 * aside first so a concurrent pull never sees it half deleted.
 */
export function removeRootfs(digest: string, home: HomePaths = homePaths()) {
  rmSync(markerPath(home, digest), { force: true });
  const dir = rootfsDir(home, digest);
  const trash = `${join(home.rootfs, ".trash-")}${hexOf(digest)}-${process.pid}-${Date.now()}`;
  try {
    renameSync(dir, trash);
  } catch {
    return;
  }
  removeTree(trash);
}
