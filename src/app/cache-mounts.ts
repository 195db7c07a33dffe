/**
 * Where a tool's cache mounts live on the host (THREATS.md invariant 6: one project cannot reach another).
 * A cache is written by a project's sandbox, so another project may see it only when the tool verifies
 * what it reads there against a digest it got elsewhere. The scopes are described on CacheMount
 * (config/schema.ts); this file turns them into mounts.
 */
import { lstatSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import type { CacheMount } from "../config/schema.ts";
import { joinUnder, type HomePaths } from "../core/paths.ts";
import { readRegularFile } from "../core/beneath.ts";
import type { Mount } from "../runner/spec.ts";

/** A login file larger than this is not a credential: it is not shared. */
const MAX_LOGIN_BYTES = 64 * 1024;

/** Whose caches a run mounts under SILO_HOME/cache/<tool>/projects/: a project's key, or global builds'. */
export type CacheOwner = string;

/**
 * `silo build --global` (and a tool's postInstall steps) build the layer every project stacks: their caches
 * are their own, never the caches of the project the user typed the command in (its sandbox wrote those).
 * Not 32 hex digits, so no project's key.
 */
export const GLOBAL_BUILD_CACHES: CacheOwner = "global-build";

/**
 * The per-project key: a hash of the project root's real path and of which directory is there now, its
 * inode number and birth time. The sandbox sees only /workspace, never that path, and cannot name another
 * project's directory by writing anything. The identity keeps a project that replaces an earlier one at the
 * same path (`rm -rf p && git clone … p`, a CI runner's fresh checkout) from inheriting what the earlier
 * one's sandbox wrote: ext4 hands a freed inode number out again at once, the birth time (nanoseconds)
 * differs. No device number: btrfs, NFS and tmpfs number their devices at mount, so caches would not
 * survive a reboot, and the path already names the filesystem. A filesystem without birth times (statx
 * reports 0) keys on the path and the inode number alone.
 */
export function projectCacheKey(realRoot: string): CacheOwner {
  const st = statSync(realRoot, { bigint: true });
  return new Bun.CryptoHasher("sha256").update(`${realRoot}\0${st.ino}\0${st.birthtimeNs}`).digest("hex").slice(0, 32);
}

/** The host directory (or, for `login`, file) behind one cache mount of `tool` for `owner` (projectCacheKey). */
export function cacheHostPath(home: HomePaths, tool: string, c: CacheMount, owner: CacheOwner): string {
  // joinUnder: names are registry data (validated there), never `..` out of SILO_HOME.
  const scope = c.scope ?? "project";
  if (scope === "project") return joinUnder(home.cache, tool, "projects", owner, c.name);
  if (scope === "login") return joinUnder(home.cache, tool, c.name, basename(c.path));
  return joinUnder(home.cache, tool, c.name);
}

/**
 * The mounts of a tool's caches, parents before the mounts nested in them (a `login` file inside its
 * per-project directory). A `login` file is bound read-only once the user shared one
 * (shareLogin); until then each project keeps its own login in its own cache.
 */
export function cacheMounts(home: HomePaths, tool: string, caches: readonly CacheMount[], owner: CacheOwner): Mount[] {
  const mounts: Mount[] = [];
  const depth = (p: string) => p.split("/").length;
  for (const c of [...caches].sort((a, b) => depth(a.path) - depth(b.path))) {
    const host = cacheHostPath(home, tool, c, owner);
    const sharedParent = caches.find((o) => o.scope === "shared" && c.path.startsWith(`${o.path}/`));
    if (sharedParent) keepMountPoint(join(cacheHostPath(home, tool, sharedParent, owner), basename(c.path)));
    if (c.scope !== "login") {
      mkdirSync(host, { recursive: true, mode: 0o700 });
      mounts.push({ host, guest: c.path, readonly: false, kind: "dir" });
    } else if (readRegularFile(host, MAX_LOGIN_BYTES)?.length) mounts.push({ host, guest: c.path, readonly: true, kind: "file" });
  }
  return mounts;
}

/**
 * Every project's sandbox can write a shared cache: had one left a symbolic link (or a file) where a
 * nested mount goes, bwrap would bind this project's cache wherever it points, or fail. Make it a directory.
 */
function keepMountPoint(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    return;
  }
  if (st.isDirectory()) return;
  rmSync(path, { force: true });
  mkdirSync(path, { mode: 0o700 });
}

/**
 * `silo cache share-login TOOL`, run by the user in the project where they logged in: the login file that
 * project's sandbox wrote becomes the login every project sees (read-only). Never automatic: a hostile
 * project run before the user's first login could otherwise plant another account's token for every
 * project (its conversations, its code, on the attacker's account). Returns the shared file's path, or null
 * when this project has no login file (a regular file, not a link, at most 64 KiB).
 */
export function shareLogin(home: HomePaths, tool: string, caches: readonly CacheMount[], realRoot: string): string | null {
  const c = caches.find((o) => o.scope === "login");
  if (!c) return null;
  const parent = caches.find((o) => (o.scope ?? "project") === "project" && c.path.startsWith(`${o.path}/`));
  if (!parent) return null;
  const local = join(cacheHostPath(home, tool, parent, projectCacheKey(realRoot)), relative(parent.path, c.path));
  const data = readRegularFile(local, MAX_LOGIN_BYTES);
  if (data === null || data.length === 0) return null;
  const host = cacheHostPath(home, tool, c, "");
  mkdirSync(join(host, ".."), { recursive: true, mode: 0o700 });
  const tmp = `${host}.${process.pid}-${crypto.randomUUID()}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600, flag: "wx" });
  renameSync(tmp, host);
  return host;
}

