/**
 * Where configuration lives, with nothing heavy imported: the resolved-config cache (app/context.ts) needs
 * these answers on every run, and the TOML parser, schema and trust logic only when it misses.
 *
 * The walk-up is git's `safe.directory` rule (THREATS.md invariant 3): a silo.toml counts only when its
 * directory and the file itself belong to the invoking user or root and no other user can write the file.
 * The walk stops at the first directory that belongs to someone else, so a parent another user controls
 * (`/tmp/x/silo.toml`) neither configures the run nor widens /workspace to itself. Shared checkouts are
 * listed in the global silo.toml: `safeDirectories = ["/srv/shared/repo"]`.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, type Stats } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { homePaths, type HomePaths } from "../core/paths.ts";

export const sha256 = (s: string | Uint8Array) => new Bun.CryptoHasher("sha256").update(s).digest("hex");

/** Owners whose files and directories configure a run without being listed: the invoking user and root. */
export interface Owners {
  uids: number[];
}
const defaultOwners = (): Owners => ({ uids: [process.geteuid?.() ?? 0, 0] });

/**
 * The nearest silo.toml at or above `cwd` that is safe to read, or null. An unsafe one (or a directory that
 * belongs to another user) ends the walk, with one warning naming the file and how to allow it.
 */
export function findProjectConfig(cwd: string, home: HomePaths = homePaths(), owners: Owners = defaultOwners()): string | null {
  let dir = resolve(cwd);
  for (;;) {
    const file = join(dir, "silo.toml");
    const dirStat = statOrNull(dir);
    if (dirStat && !owners.uids.includes(dirStat.uid) && !isSafeDirectory(home, dir)) {
      if (existsSync(file)) warnUnsafe(home, file, dir, `its directory belongs to uid ${dirStat.uid}`);
      return null;
    }
    const st = statOrNull(file);
    if (st) {
      const why = unsafeFile(st, owners);
      if (why && !isSafeDirectory(home, dir)) {
        warnUnsafe(home, file, dir, why);
        return null;
      }
      return file;
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** One read of a project silo.toml: the bytes that are hashed for trust are the bytes that are parsed. */
export interface ProjectBytes {
  file: string;
  bytes: Uint8Array;
  /** sha256 of `bytes`, hex: what a trust record holds. */
  hash: string;
}

/**
 * Read `file` once, through one descriptor: fstat on that descriptor re-checks owner, mode and type, so a
 * file swapped after the walk-up looked at it is judged by what is actually read. Non-blocking open: a FIFO
 * named silo.toml would otherwise hang every shim. Null (with a warning) when the file turns out unsafe.
 */
export function readProjectConfig(file: string, home: HomePaths = homePaths(), owners: Owners = defaultOwners()): ProjectBytes | null {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null; // gone since the walk-up: no project file
    throw new SiloError("E_CONFIG", `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    const why = unsafeFile(st, owners);
    if (why && !isSafeDirectory(home, dirname(file))) {
      warnUnsafe(home, file, dirname(file), why);
      return null;
    }
    const bytes = readAll(fd, st.size);
    return { file, bytes, hash: sha256(bytes) };
  } finally {
    closeSync(fd);
  }
}

/** The project file for `cwd`, read once (null data: there is none, or it was unsafe to read). */
export function readProject(cwd: string, home: HomePaths = homePaths()): ProjectBytes | null {
  const file = findProjectConfig(cwd, home);
  return file ? readProjectConfig(file, home) : null;
}

/** The hash a trust record holds for `configFile`, or null when it has none (or an unreadable one). */
export function readTrustedHash(home: HomePaths, configFile: string): string | null {
  try {
    const { hash } = JSON.parse(readFileSync(trustRecordPath(home, configFile), "utf8")) as { hash?: unknown };
    return typeof hash === "string" ? hash : null;
  } catch {
    return null;
  }
}

/** Where the trust record of one silo.toml lives: keyed by its path, holding the hash of the trusted content. */
export function trustRecordPath(home: HomePaths, configFile: string): string {
  return join(home.trust, `${sha256(configFile).slice(0, 32)}.json`);
}

// --- internal ---------------------------------------------------------------------------------------

function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

function unsafeFile(st: Stats, owners: Owners): string | null {
  if (!st.isFile()) return "it is not a regular file";
  if (!owners.uids.includes(st.uid)) return `it belongs to uid ${st.uid}`;
  if (st.mode & 0o022) return `other users can write it (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`;
  return null;
}

/** Read to EOF (the size is a hint: the file may grow between fstat and read). */
function readAll(fd: number, hint: number): Uint8Array {
  let buf = Buffer.allocUnsafe(Math.max(hint, 4096));
  let len = 0;
  for (;;) {
    if (len === buf.length) buf = Buffer.concat([buf, Buffer.allocUnsafe(buf.length)]);
    const n = readSync(fd, buf, len, buf.length - len, null);
    if (n === 0) return buf.subarray(0, len);
    len += n;
  }
}

const safeLists = new Map<string, string[]>();
/** `safeDirectories` of the global silo.toml, read only when an ownership check fails (off the hot path). */
function isSafeDirectory(home: HomePaths, dir: string): boolean {
  let list = safeLists.get(home.globalConfig);
  if (!list) {
    list = [];
    try {
      if (existsSync(home.globalConfig)) {
        const { parse } = require("smol-toml") as typeof import("smol-toml");
        const v = (parse(readFileSync(home.globalConfig, "utf8")) as { safeDirectories?: unknown }).safeDirectories;
        if (Array.isArray(v)) list = v.filter((d): d is string => typeof d === "string").map((d) => resolve(d));
      }
    } catch {
      /* a broken global file is reported by the loader; here it only means nothing is listed */
    }
    safeLists.set(home.globalConfig, list);
  }
  return list.includes(resolve(dir));
}

const warned = new Set<string>();
function warnUnsafe(home: HomePaths, file: string, dir: string, why: string) {
  if (warned.has(file)) return;
  warned.add(file);
  log.warn(`ignoring ${file}: ${why}. If you trust that directory, add safeDirectories = [${JSON.stringify(dir)}] to ${home.globalConfig}`);
}

/** Tests: forget the cached safe list and warnings (they are per process otherwise). */
export function resetLocateState(): void {
  safeLists.clear();
  warned.clear();
}
