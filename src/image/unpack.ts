/**
 * Safe layer unpacking into a rootfs directory, the way umoci and containerd do it:
 * - every path is cleaned lexically against "/" (absolute paths and `..` cannot climb out), and its parent
 *   directory is resolved component by component *inside* the root, following symlinks as the guest would
 *   see them (umoci's SecureJoin), so a symlink planted by an earlier entry can never carry a write out;
 * - the final component is never followed: files are created with O_EXCL, an existing symlink is replaced;
 * - OCI whiteouts (`.wh.<name>`) delete from lower layers, opaque markers (`.wh..wh..opq`) empty a directory
 *   of everything but this layer's entries;
 * - ownership is kept when running as root; rootless, files belong to the user (the sandbox maps it to root);
 * - character and block devices are skipped, even as root (the sandbox has its own /dev); FIFOs are made;
 * - setuid/setgid bits are kept: inside the sandbox they grant nothing (a user namespace, no_new_privs), a VM
 *   driver's disk image needs them, and on the host the tree is out of other users' reach (SILO_HOME is 0700);
 * - xattrs are set where the kernel allows (user.* rootless).
 * Directory modes and mtimes are applied at the end (deepest first): a 0555 directory must not stop its
 * own contents from being written, and writing into a directory would change its mtime again.
 */
import { closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeSync, chmodSync, chownSync, utimesSync, constants } from "node:fs";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { lsetxattr, mknod, S_IFIFO } from "./native.ts";
import type { EntrySink, TarEntry } from "../core/tar.ts";

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const CREATE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const WH = ".wh.";
const OPAQUE = ".wh..wh..opq";

interface DirMeta {
  mode: number;
  mtime: number;
}

/** `a/../../b/./c/` → `b/c`; `/etc/passwd` → `etc/passwd`; the root is "". */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out.join("/");
}

const errCode = (e: unknown) => (e as { code?: string }).code;

export interface UnpackStats {
  files: number;
  bytes: number;
  skippedDevices: number;
  skippedXattrs: number;
}

export class Unpacker {
  readonly stats: UnpackStats = { files: 0, bytes: 0, skippedDevices: 0, skippedXattrs: 0 };
  private readonly root: string;
  private readonly asRoot: boolean;
  private readonly umask: number;
  private readonly uid: number;
  private readonly gid: number;
  private chownFailed = false;
  /** Resolved parent directories by cleaned relative path; dropped whenever something is removed or replaced. */
  private dirCache = new Map<string, string>();
  private dirs = new Map<string, DirMeta>();
  /** Paths this layer has written, which an opaque marker in the same layer must keep. */
  private layerPaths = new Set<string>();

  constructor(root: string, opts: { asRoot?: boolean } = {}) {
    this.root = root.replace(/\/+$/, "");
    this.asRoot = opts.asRoot ?? process.getuid?.() === 0;
    this.umask = process.umask();
    this.uid = process.getuid?.() ?? -1;
    this.gid = process.getgid?.() ?? -1;
  }

  /** Start a new layer (opaque markers only spare the current layer's own entries). */
  beginLayer() {
    this.layerPaths.clear();
  }

  /** The TarReader callback: apply one entry, returning a sink for a regular file's data. */
  readonly onEntry = (e: TarEntry): EntrySink | null => {
    const rel = cleanPath(e.path);
    const slash = rel.lastIndexOf("/");
    const dirRel = slash < 0 ? "" : rel.slice(0, slash);
    const name = slash < 0 ? rel : rel.slice(slash + 1);
    try {
      if (name.startsWith(WH)) {
        if (name === OPAQUE) this.opaque(dirRel);
        else this.whiteout(dirRel, name.slice(WH.length));
        return null;
      }
      if (rel === "") {
        if (e.type === "dir") this.dirs.set("", { mode: e.mode, mtime: e.mtime });
        return null;
      }
      this.layerPaths.add(rel);
      const abs = `${this.resolveDir(dirRel, true)}/${name}`;
      switch (e.type) {
        case "file":
          return this.file(abs, e);
        case "dir":
          this.dir(abs, rel, e);
          return null;
        case "symlink":
          this.replaceWith(abs, () => symlinkSync(e.linkpath, abs));
          if (this.needsChown(e)) this.chown(() => lchownSync(abs, e.uid, e.gid));
          this.xattrs(abs, e);
          lutimesSync(abs, e.mtime, e.mtime);
          return null;
        case "hardlink":
          this.hardlink(abs, e);
          return null;
        default:
          this.device(abs, e);
          return null;
      }
    } catch (err) {
      if (err instanceof SiloError) throw err;
      throw new SiloError("E_IMAGE", `cannot unpack ${rel || "/"}: ${(err as Error).message}`, "check free space and permissions in SILO_HOME");
    }
  };

  /** Apply directory modes and mtimes, deepest first. Call once after the last layer. */
  finish() {
    const order = [...this.dirs.keys()].sort((a, b) => b.split("/").length - a.split("/").length);
    for (const rel of order) {
      const meta = this.dirs.get(rel)!;
      const slash = rel.lastIndexOf("/");
      const parent = rel === "" ? null : this.resolveDir(slash < 0 ? "" : rel.slice(0, slash), false);
      if (parent === undefined) continue; // removed by a later whiteout
      const abs = parent === null ? this.root : `${parent}/${rel.slice(slash + 1)}`;
      let st;
      try {
        st = lstatSync(abs);
      } catch {
        continue;
      }
      if (!st.isDirectory()) continue; // replaced by a later layer: never chmod through a symlink
      chmodSync(abs, meta.mode);
      utimesSync(abs, meta.mtime, meta.mtime);
    }
  }

  // --- entries ---

  /** Only root keeps ownership, and only when it differs from what creating the file gave it already. */
  private needsChown(e: TarEntry) {
    return this.asRoot && !this.chownFailed && (e.uid !== this.uid || e.gid !== this.gid);
  }

  /** uid 0 inside a user namespace may not own the image's ids (EINVAL/EPERM): then unpack as rootless does. */
  private chown(f: () => void) {
    try {
      f();
    } catch (err) {
      const c = errCode(err);
      if (c !== "EINVAL" && c !== "EPERM") throw err;
      this.chownFailed = true;
      log.debug(`unpack: cannot keep file owners here (${c}); files stay owned by uid ${this.uid}`);
    }
  }

  private file(abs: string, e: TarEntry): EntrySink {
    const mode = e.mode & 0o7777;
    let fd: number;
    try {
      fd = openSync(abs, CREATE, mode);
    } catch (err) {
      if (errCode(err) !== "EEXIST") throw err;
      this.removeExisting(abs);
      fd = openSync(abs, CREATE, mode);
    }
    this.stats.files++;
    const stats = this.stats;
    return {
      write(chunk) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        stats.bytes += chunk.length;
      },
      end: () => {
        try {
          if (this.needsChown(e)) this.chown(() => fchownSync(fd, e.uid, e.gid));
          // chown clears setuid/setgid, and the umask may have trimmed the mode at open.
          if (mode & 0o7000 || mode & this.umask) fchmodSync(fd, mode);
          futimesSync(fd, e.mtime, e.mtime);
        } finally {
          closeSync(fd);
        }
        if (e.xattrs) this.xattrs(abs, e);
      },
    };
  }

  private dir(abs: string, rel: string, e: TarEntry) {
    // Owner rwx while unpacking (rootless must keep writing into it); the real mode comes in finish().
    const mode = 0o700 | (e.mode & 0o777);
    try {
      mkdirSync(abs, { mode });
    } catch (err) {
      if (errCode(err) !== "EEXIST") throw err;
      if (!lstatSync(abs).isDirectory()) {
        this.removeExisting(abs);
        mkdirSync(abs, { mode });
      }
    }
    if (this.needsChown(e)) this.chown(() => chownSync(abs, e.uid, e.gid));
    this.xattrs(abs, e);
    this.dirs.set(rel, { mode: e.mode & 0o7777, mtime: e.mtime });
  }

  private hardlink(abs: string, e: TarEntry) {
    const targetRel = cleanPath(e.linkpath);
    const slash = targetRel.lastIndexOf("/");
    const parent = targetRel === "" ? undefined : this.resolveDir(slash < 0 ? "" : targetRel.slice(0, slash), false);
    const target = parent === undefined ? undefined : `${parent}/${targetRel.slice(slash + 1)}`;
    let ok = false;
    try {
      ok = !!target && !lstatSync(target).isDirectory();
    } catch {}
    if (!ok) throw new SiloError("E_IMAGE", `a layer hard-links ${cleanPath(e.path)} to ${e.linkpath}, which is not a file in the image`, "the image is malformed");
    if (target === abs) return;
    this.replaceWith(abs, () => linkSync(target!, abs));
  }

  /**
   * Character and block devices are never made, as root or not: the sandbox gets its own /dev, and a
   * node from an image (`sda` 8:0, `mem` 1:1) would be a door into the host's disks for whoever reaches
   * it on the host. FIFOs are made: anyone may create one, and it opens onto nothing but itself.
   */
  private device(abs: string, e: TarEntry) {
    if (e.type === "char" || e.type === "block") {
      this.stats.skippedDevices++;
      log.debug(`unpack: skipped the ${e.type} device ${cleanPath(e.path)} (${e.devmajor}:${e.devminor}); the sandbox has its own /dev`);
      // What a lower layer had at this path is replaced in the image: it must not show through.
      if (lstatSync(abs, { throwIfNoEntry: false })) this.removeExisting(abs);
      return;
    }
    const make = () => {
      const errno = mknod(abs, S_IFIFO | (e.mode & 0o7777), 0, 0);
      if (errno === 17) throw Object.assign(new Error("exists"), { code: "EEXIST" });
      if (errno) {
        this.stats.skippedDevices++;
        log.debug(`unpack: mknod ${abs} failed (errno ${errno}); skipped`);
      }
    };
    this.replaceWith(abs, make);
    try {
      if (this.needsChown(e)) this.chown(() => lchownSync(abs, e.uid, e.gid));
      chmodSync(abs, e.mode & 0o7777); // mknod's mode went through the umask
      lutimesSync(abs, e.mtime, e.mtime);
    } catch {}
  }

  private xattrs(abs: string, e: TarEntry) {
    if (!e.xattrs) return;
    for (const [name, value] of e.xattrs) {
      // Unprivileged processes may only set user.*; others would fail with EPERM anyway.
      if (!this.asRoot && !name.startsWith("user.")) {
        this.stats.skippedXattrs++;
        continue;
      }
      const errno = lsetxattr(abs, name, value);
      if (errno) {
        this.stats.skippedXattrs++;
        log.debug(`unpack: xattr ${name} on ${abs}: errno ${errno}`);
      }
    }
  }

  // --- removal and replacement ---

  /** Create via `make`; if something is in the way, remove it (never following it) and try once more. */
  private replaceWith(abs: string, make: () => void) {
    try {
      make();
    } catch (err) {
      if (errCode(err) !== "EEXIST") throw err;
      this.removeExisting(abs);
      make();
    }
  }

  private removeExisting(abs: string) {
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      rmSync(abs, { recursive: true, force: true });
      this.dirCache.clear();
    } else {
      unlinkSync(abs);
      if (st.isSymbolicLink()) this.dirCache.clear();
    }
  }

  private whiteout(dirRel: string, name: string) {
    if (!name || name === "." || name === ".." || name.includes("/")) return;
    // A whiteout hides lower layers only, never an entry of its own layer.
    if (this.layerPaths.has(dirRel ? `${dirRel}/${name}` : name)) return;
    const parent = this.resolveDir(dirRel, false);
    if (parent === undefined) return;
    rmSync(`${parent}/${name}`, { recursive: true, force: true });
    this.dirCache.clear();
  }

  private opaque(dirRel: string) {
    const dir = this.resolveDir(dirRel, false);
    if (dir === undefined) return;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const rel = dirRel ? `${dirRel}/${n}` : n;
      if (!this.layerPaths.has(rel)) rmSync(`${dir}/${n}`, { recursive: true, force: true });
    }
    this.dirCache.clear();
  }

  /**
   * The real directory for a cleaned relative path, resolved inside the root: symlinks are followed as
   * the guest would follow them, with the root as "/" and `..` stopping at it. `create` makes missing
   * directories (and replaces a non-directory in the way); without it a missing one gives undefined.
   */
  private resolveDir(rel: string, create: boolean): string | undefined {
    if (rel === "") return this.root;
    const hit = this.dirCache.get(rel);
    if (hit !== undefined) return hit;
    const todo = rel.split("/").reverse();
    const done: string[] = [];
    let links = 0;
    while (todo.length) {
      const c = todo.pop()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        done.pop();
        continue;
      }
      const p = `${this.root}/${done.length ? `${done.join("/")}/` : ""}${c}`;
      let st;
      try {
        st = lstatSync(p);
      } catch (err) {
        if (errCode(err) !== "ENOENT" || !create) return undefined;
        mkdirSync(p, { mode: 0o755 });
        done.push(c);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++links > 255) throw new SiloError("E_IMAGE", `too many symbolic links under ${rel} in a layer`, "the image is malformed");
        const target = readlinkSync(p);
        if (target.startsWith("/")) done.length = 0;
        todo.push(...target.split("/").reverse());
        continue;
      }
      if (!st.isDirectory()) {
        if (!create) return undefined;
        unlinkSync(p);
        mkdirSync(p, { mode: 0o755 });
      }
      done.push(c);
    }
    const abs = done.length ? `${this.root}/${done.join("/")}` : this.root;
    if (create) this.dirCache.set(rel, abs);
    return abs;
  }
}
