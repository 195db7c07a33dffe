/**
 * After a build sandbox (RunSpec.keepSetuid: dpkg must be able to set setuid bits and file capabilities in
 * the layer, so its seccomp filter lets chmod through and it keeps CAP_SETFCAP), take the setuid and setgid
 * bits and the `security.capability` attribute off what it left in the project: a host user must never be
 * able to run a file the sandbox made with its owner's rights or with capabilities (THREATS.md invariants 2
 * and 4; run as root, the sandbox's root is host root and a capability it sets is valid on the host).
 * A `silo run` needs none of this: its filter refuses those modes, and it has no CAP_SETFCAP.
 *
 * Only regular files changed since the build started (ctime: a chmod or a creation sets it), so a setuid
 * file the user made on the host stays as it was. A directory that neither group nor others may enter
 * is not entered (nothing in it is reachable by another user: a build layer's private generation, a
 * SILO_HOME inside the project). No symlink is followed: each directory is opened beneath the one before
 * it (core/beneath.ts), and a file is changed through an O_PATH descriptor of the entry itself.
 */
import { chmodSync, chownSync, closeSync, constants as C, existsSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isAlive, writeFileAtomic } from "../core/fs.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { at, closeQuietly, openDir } from "../core/beneath.ts";
import { removeXattr } from "../core/xattr.ts";

const DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const O_PATH = 0o10000000;
const SETID = 0o6000;

/** Strip S_ISUID/S_ISGID and file capabilities from regular files under `root` changed at or after `sinceMs`; returns their paths. */
export function stripSetidBits(root: string, sinceMs: number): string[] {
  const stripped: string[] = [];
  const walk = (dirFd: number, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(at(dirFd));
    } catch {
      return;
    }
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      let st;
      try {
        st = lstatSync(at(dirFd, name));
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if ((st.mode & 0o011) === 0) continue;
        let fd: number;
        try {
          fd = openSync(at(dirFd, name), DIR);
        } catch {
          continue;
        }
        try {
          walk(fd, path);
        } finally {
          closeQuietly(fd);
        }
      } else if (st.isFile() && st.ctimeMs >= sinceMs) {
        // Setting a capability changes the ctime too: every changed file is looked at (one syscall each).
        const fd = openSync(at(dirFd, name), O_PATH | C.O_NOFOLLOW);
        try {
          const now = fstatSync(fd);
          if (!now.isFile()) continue;
          let changed = dropCapability(at(fd), now.uid, now.gid);
          if (now.mode & SETID) {
            chmodSync(at(fd), now.mode & 0o1777);
            changed = true;
          }
          if (changed) stripped.push(path);
        } finally {
          closeSync(fd);
        }
      }
    }
  };
  const base = openDir(root);
  try {
    walk(base, "");
  } finally {
    closeSync(base);
  }
  return stripped;
}

/**
 * Remove a file capability. Without CAP_SETFCAP (an unprivileged user: the capability's root is then that
 * user, valid only in namespaces they own) removexattr is refused; a chown to the same owner clears it too.
 */
function dropCapability(path: string, uid: number, gid: number): boolean {
  try {
    return removeXattr(path, "security.capability");
  } catch (e) {
    if ((e as { errno?: number }).errno !== 1) throw e;
    chownSync(path, uid, gid);
    return true;
  }
}

/**
 * A build's sweep is owed from before its sandbox starts until the sweep has run: if silo is killed in
 * between (kill -9, the OOM killer), the mark stays in SILO_HOME/state/sweep and the next silo run or build
 * (any project) does the sweep first. One stat on the run path when nothing is owed.
 */
export function oweSweep(home: HomePaths, root: string, sinceMs: number): string {
  const file = join(home.state, "sweep", `${new Bun.CryptoHasher("sha256").update(root).digest("hex").slice(0, 32)}-${process.pid}.json`);
  writeFileAtomic(file, JSON.stringify({ root, sinceMs }));
  return file;
}

export function paySweep(file: string): void {
  rmSync(file, { force: true });
  removeIfEmpty(join(file, ".."));
}

/** The run path checks for the directory: it goes when nothing is owed. */
function removeIfEmpty(dir: string) {
  try {
    rmdirSync(dir);
  } catch {
    // another build owes a sweep
  }
}

/** Finish the sweeps a killed build owed. */
export function settleOwedSweeps(home: HomePaths): void {
  const dir = join(home.state, "sweep");
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const pid = Number(/-(\d+)\.json$/.exec(name)?.[1]);
    if (pid && pid !== process.pid && isAlive(pid)) continue; // that build is still under way
    const file = join(dir, name);
    try {
      const { root, sinceMs } = JSON.parse(readFileSync(file, "utf8")) as { root: string; sinceMs: number };
      if (existsSync(root)) {
        const stripped = stripSetidBits(root, sinceMs);
        if (stripped.length) log.warn(`a build that was killed left setuid/setgid files or file capabilities in ${root}; removed from: ${stripped.slice(0, 5).join(", ")}`);
      }
    } catch (e) {
      log.warn(`cannot finish a killed build's setuid sweep (${file}): ${(e as Error).message}`);
      continue;
    }
    rmSync(file, { force: true });
  }
  removeIfEmpty(dir);
}
