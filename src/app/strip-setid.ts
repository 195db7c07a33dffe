/**
 * After a build sandbox (RunSpec.keepSetuid: dpkg must be able to set setuid bits in the layer, so its
 * seccomp filter lets chmod through), take the setuid and setgid bits off what it left in the project:
 * a host user must never be able to run a file the sandbox made as its owner (THREATS.md invariant 2).
 * A `silo run` needs none of this: its filter refuses those modes at the system call.
 *
 * Only regular files changed since the build started (ctime: a chmod or a creation sets it), so a setuid
 * file the user made on the host stays as it was. A directory that neither group nor others may enter
 * is not entered (nothing in it is reachable by another user: a build layer's private generation, a
 * SILO_HOME inside the project). No symlink is followed: each directory is opened beneath the one before
 * it (core/beneath.ts), and a file is changed through an O_PATH descriptor of the entry itself.
 */
import { chmodSync, closeSync, constants as C, fstatSync, lstatSync, openSync, readdirSync } from "node:fs";
import { at, closeQuietly, openDir } from "../core/beneath.ts";

const DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const O_PATH = 0o10000000;
const SETID = 0o6000;

/** Strip S_ISUID/S_ISGID from regular files under `root` changed at or after `sinceMs`; returns their paths. */
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
      } else if (st.isFile() && st.mode & SETID && st.ctimeMs >= sinceMs) {
        const fd = openSync(at(dirFd, name), O_PATH | C.O_NOFOLLOW);
        try {
          const now = fstatSync(fd);
          if (!now.isFile()) continue;
          chmodSync(at(fd), now.mode & 0o1777);
          stripped.push(path);
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
