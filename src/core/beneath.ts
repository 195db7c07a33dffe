/**
 * File operations beneath a trusted directory that never follow a symbolic link the project holds.
 *
 * Node has no openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so the walk is done one component at a time:
 * each directory is opened with O_NOFOLLOW|O_DIRECTORY relative to the one before it, through its
 * /proc/self/fd/N entry (the kernel resolves that magic link to the open directory itself, whatever the
 * path now names), and the last operation (lstat, rename, unlink, mkdir) names only the final component
 * under that descriptor, which none of them follows. A component that is a symlink, or not a directory,
 * fails the walk (ENOTDIR/ELOOP); `..`, `.`, empty and absolute paths are refused before any syscall.
 */
import {
  chmodSync,
  closeSync,
  constants as C,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";

// Node and Bun open every descriptor close-on-exec.
const DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** O_PATH (Linux): a descriptor for a directory the owner cannot read, to chmod it through /proc. */
const O_PATH = 0o10000000;

/** The path that names `name` inside the directory open as `fd`. */
export const at = (fd: number, name = "") => (name ? `/proc/self/fd/${fd}/${name}` : `/proc/self/fd/${fd}`);

/** Split a relative path into its components, refusing anything that could leave its base. */
export function splitRelative(rel: string): string[] {
  const parts = rel.split("/").filter((p) => p !== "");
  if (rel.startsWith("/") || parts.length === 0 || parts.some((p) => p === "." || p === ".."))
    throw new Error(`not a plain relative path: ${JSON.stringify(rel)}`);
  return parts;
}

/** Open a trusted directory (symlinks in its own path are the caller's to trust). */
export function openDir(path: string): number {
  return openSync(path, C.O_RDONLY | C.O_DIRECTORY);
}

/**
 * The directory that holds the last component of `rel` under the directory open as `baseFd`, opened
 * without following a symlink at any component; with `create`, missing directories are made (`mode`).
 * Returns its descriptor and the last component's name. The caller closes the descriptor.
 */
export function openParent(baseFd: number, rel: string, create = false, mode = 0o700): { fd: number; name: string } {
  const parts = splitRelative(rel);
  const name = parts.pop()!;
  let fd = openSync(at(baseFd, "."), DIR); // a fresh descriptor of the base (O_NOFOLLOW refuses the /proc link itself)
  try {
    for (const p of parts) {
      if (create) {
        try {
          mkdirSync(at(fd, p), mode);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
      }
      const next = openSync(at(fd, p), DIR);
      closeSync(fd);
      fd = next;
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return { fd, name };
}

/** `fn` on the directory holding `rel`'s last component (see openParent); null if that fails or `fn` throws. */
function inParent<T>(baseFd: number, rel: string, fn: (fd: number, name: string) => T): T | null {
  let parent;
  try {
    parent = openParent(baseFd, rel);
  } catch {
    return null;
  }
  try {
    return fn(parent.fd, parent.name);
  } catch {
    return null;
  } finally {
    closeSync(parent.fd);
  }
}

/** lstat of `rel` under `baseFd` without following a symlink anywhere; null if it (or a parent) is not there. */
export const lstatBeneath = (baseFd: number, rel: string): Stats | null => inParent(baseFd, rel, (fd, name) => lstatSync(at(fd, name)));

/** A symlink's target, read without following a symlink on the way (null: not a symlink, or not there). */
export const readLinkBeneath = (baseFd: number, rel: string): string | null => inParent(baseFd, rel, (fd, name) => readlinkSync(at(fd, name)));

/**
 * The bytes of the regular file at `path` when it is at most `max` bytes; null otherwise. Never through a
 * symlink as the last component, never blocking on a FIFO: a project chooses what its files are.
 */
export function readRegularFile(path: string, max: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > max) return null;
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** A regular file's bytes, read without following a symlink (null: not a regular file, or not there). */
export function readFileBeneath(baseFd: number, rel: string, max = 1 << 20): Buffer | null {
  let parent;
  try {
    parent = openParent(baseFd, rel);
  } catch {
    return null;
  }
  let fd: number;
  try {
    fd = openSync(at(parent.fd, parent.name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return null;
  } finally {
    closeSync(parent.fd);
  }
  try {
    if (!fstatSync(fd).isFile()) return null;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(65536, max + 1 - total));
      const n = readSync(fd, buf);
      if (n <= 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > max) break;
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/** The kind of a file for people: file, directory, symlink, fifo, socket, device. */
export function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isDirectory()) return "directory";
  if (st.isFile()) return "file";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  return "device";
}

/**
 * Move `name` from one open directory to another (it must not exist there). The entry itself moves, a
 * symlink as a symlink; across filesystems it is copied (no symlink followed, setuid/setgid bits dropped)
 * and the original removed beneath its directory.
 */
export function moveEntry(fromFd: number, fromName: string, toFd: number, toName: string): void {
  // rename(2) replaces an existing target: the destination is made fresh by the callers, checked here too.
  if (exists(at(toFd, toName))) throw Object.assign(new Error(`${toName} already exists`), { code: "EEXIST" });
  try {
    renameSync(at(fromFd, fromName), at(toFd, toName));
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EXDEV") {
      copyEntry(fromFd, fromName, toFd, toName);
      removeEntry(fromFd, fromName);
      return;
    }
    // A directory moved to another parent must be writable by its owner (its `..` changes): a sandbox
    // may leave it 0500. Make it the owner's again, through a descriptor that did not follow a link.
    if ((code !== "EACCES" && code !== "EPERM") || !makeOwnersDir(fromFd, fromName)) throw e;
  }
  renameSync(at(fromFd, fromName), at(toFd, toName));
}

/** Remove `name` (a whole tree) beneath an open directory, never following a symlink. */
export function removeEntry(dirFd: number, name: string): void {
  const st = lstatSync(at(dirFd, name));
  if (!st.isDirectory()) return unlinkSync(at(dirFd, name));
  makeOwnersDir(dirFd, name);
  const fd = openSync(at(dirFd, name), DIR);
  try {
    for (const e of readdirSync(at(fd))) removeEntry(fd, e);
  } finally {
    closeSync(fd);
  }
  rmdirSync(at(dirFd, name));
}

function copyEntry(fromFd: number, fromName: string, toFd: number, toName: string): void {
  const st = lstatSync(at(fromFd, fromName));
  if (st.isSymbolicLink()) return symlinkSync(readlinkSync(at(fromFd, fromName)), at(toFd, toName));
  if (st.isDirectory()) {
    makeOwnersDir(fromFd, fromName);
    mkdirSync(at(toFd, toName), 0o700);
    const src = openSync(at(fromFd, fromName), DIR);
    const dst = openSync(at(toFd, toName), DIR);
    try {
      for (const e of readdirSync(at(src))) copyEntry(src, e, dst, e);
    } finally {
      closeSync(src);
      closeSync(dst);
    }
    return;
  }
  // A FIFO, socket or device carries no content to keep: its name and kind are in the record.
  if (!st.isFile()) return;
  const src = openSync(at(fromFd, fromName), C.O_RDONLY | C.O_NOFOLLOW);
  const dst = openSync(at(toFd, toName), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, st.mode & 0o777);
  try {
    const buf = Buffer.alloc(65536);
    for (let n; (n = readSync(src, buf)) > 0; ) for (let off = 0; off < n; ) off += writeSync(dst, buf, off, n - off);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Make a directory (not a symlink to one) rwx for its owner; false if it is not a directory or not ours. */
function makeOwnersDir(dirFd: number, name: string): boolean {
  let fd: number;
  try {
    fd = openSync(at(dirFd, name), O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    chmodSync(at(fd), (fstatSync(fd).mode & 0o7777) | 0o700);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Close a descriptor, ignoring errors (the clean-up path of a failed operation). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
