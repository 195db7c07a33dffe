/**
 * The few syscalls node:fs lacks and layers need: extended attributes (overlayfs marks opaque
 * directories with `user.overlay.opaque` or `trusted.overlay.opaque`), mknod for 0/0 whiteouts,
 * and syncfs. Bound through bun:ffi to the C library on first use (it works in the compiled binary).
 * Linux only: on other systems every call reports "unsupported" and callers fall back.
 */
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";

type Lib = ReturnType<typeof open>;
let lib: Lib | null | undefined;

function open() {
  const names = ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];
  let last: unknown;
  for (const name of names) {
    try {
      return dlopen(name, {
        llistxattr: { args: [FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
        lgetxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
        lsetxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
        removexattr: { args: [FFIType.cstring, FFIType.cstring], returns: FFIType.i32 },
        getxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
        mknod: { args: [FFIType.cstring, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
        syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
        __errno_location: { args: [], returns: FFIType.ptr },
      });
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

function libc(): Lib | null {
  if (lib === undefined) {
    try {
      lib = process.platform === "linux" ? open() : null;
    } catch {
      lib = null;
    }
  }
  return lib;
}

const cstr = (s: string) => Buffer.from(s + "\0");
const errno = (l: Lib) => read.i32(l.symbols.__errno_location() as Pointer, 0);
const ENODATA = 61;
const ERANGE = 34;
const ENOTSUP = 95;

export class XattrError extends Error {
  constructor(readonly op: string, readonly path: string, readonly errno: number) {
    super(`${op} ${path}: errno ${errno}`);
  }
}

/** Names of the extended attributes of `path` (not following a final symlink). */
export function listXattrs(path: string): string[] {
  const l = libc();
  if (!l) return [];
  const p = cstr(path);
  let size = 1024;
  for (;;) {
    const buf = Buffer.alloc(size);
    const n = Number(l.symbols.llistxattr(p, buf, BigInt(size)));
    if (n >= 0) return buf.subarray(0, n).toString("latin1").split("\0").filter(Boolean);
    const e = errno(l);
    if (e === ERANGE) size *= 4;
    else if (e === ENOTSUP) return [];
    else throw new XattrError("llistxattr", path, e);
  }
}

/** One attribute's value, or null when absent. */
export function getXattr(path: string, name: string): Buffer | null {
  const l = libc();
  if (!l) return null;
  const p = cstr(path);
  const k = cstr(name);
  let size = 256;
  for (;;) {
    const buf = Buffer.alloc(size);
    const n = Number(l.symbols.lgetxattr(p, k, buf, BigInt(size)));
    if (n >= 0) return buf.subarray(0, n);
    const e = errno(l);
    if (e === ERANGE) size *= 16;
    else if (e === ENODATA || e === ENOTSUP) return null;
    else throw new XattrError("lgetxattr", path, e);
  }
}

export function setXattr(path: string, name: string, value: Uint8Array) {
  const l = libc();
  if (!l) throw new XattrError("lsetxattr", path, ENOTSUP);
  const v = value.length ? value : Buffer.alloc(1);
  if (l.symbols.lsetxattr(cstr(path), cstr(name), v, BigInt(value.length), 0) !== 0) throw new XattrError("lsetxattr", path, errno(l));
}

/** Every attribute with its value. */
export function readXattrs(path: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of listXattrs(path)) {
    const v = getXattr(path, name);
    if (v) out[name] = v;
  }
  return out;
}

/** Copy attributes onto `path`; attributes this user may not set (trusted.*, security.*) are skipped. */
export function writeXattrs(path: string, attrs: Record<string, Uint8Array>, skip?: (name: string) => boolean): string[] {
  const failed: string[] = [];
  for (const [name, value] of Object.entries(attrs)) {
    if (skip?.(name)) continue;
    try {
      setXattr(path, name, value);
    } catch {
      failed.push(name);
    }
  }
  return failed;
}

/** Create a device node (an overlayfs whiteout is a character device 0/0). */
export function mknod(path: string, mode: number, dev: number) {
  const l = libc();
  if (!l) throw new XattrError("mknod", path, ENOTSUP);
  if (l.symbols.mknod(cstr(path), mode, BigInt(dev)) !== 0) throw new XattrError("mknod", path, errno(l));
}

/** Flush the filesystem holding `fd` to stable storage (before a build layer is committed). */
export function syncFs(fd: number) {
  const l = libc();
  if (!l) return;
  l.symbols.syncfs(fd);
}

/**
 * Remove attribute `name` from what `path` names, following it (for /proc/self/fd/N of an O_PATH descriptor:
 * the file itself). True when it was there; false when it was not, or the filesystem has no xattrs.
 */
export function removeXattr(path: string, name: string): boolean {
  const l = libc();
  if (!l) return false;
  // Asked first: removing security.* needs privilege even when the attribute is not there.
  if (Number(l.symbols.getxattr(cstr(path), cstr(name), null, 0n)) < 0) return false;
  if (l.symbols.removexattr(cstr(path), cstr(name)) === 0) return true;
  const e = errno(l);
  if (e === ENODATA || e === ENOTSUP) return false;
  throw new XattrError("removexattr", path, e);
}
