/**
 * The few libc calls Node's fs lacks: flock (locks that die with their process), mknod (device nodes and
 * FIFOs in layers) and lsetxattr. Loaded through bun:ffi on first use, so `silo run` never pays for it.
 */
import type { Pointer } from "bun:ffi";

type Libc = {
  flock(fd: number, op: number): number;
  mknod(path: Uint8Array, mode: number, dev: bigint): number;
  lsetxattr(path: Uint8Array, name: Uint8Array, value: Uint8Array | Pointer | null, size: number, flags: number): number;
  errno(): number;
};

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const { dlopen, FFIType, read } = require("bun:ffi") as typeof import("bun:ffi");
    const mac = process.platform === "darwin";
    const lib = dlopen(mac ? "libSystem.B.dylib" : "libc.so.6", {
      flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
      mknod: { args: [FFIType.ptr, FFIType.u32, mac ? FFIType.u32 : FFIType.u64], returns: FFIType.i32 },
      ...(mac ? {} : { lsetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 } }),
      [mac ? "__error" : "__errno_location"]: { args: [], returns: FFIType.ptr },
    });
    const s = lib.symbols as Record<string, (...a: unknown[]) => unknown>;
    const errnoFn = s[mac ? "__error" : "__errno_location"]!;
    libc = {
      flock: (fd, op) => s.flock!(fd, op) as number,
      mknod: (p, mode, dev) => s.mknod!(p, mode, mac ? Number(dev) : dev) as number,
      lsetxattr: (p, n, v, size, flags) => (s.lsetxattr ? (s.lsetxattr(p, n, v, size, flags) as number) : -1),
      errno: () => read.i32(errnoFn() as Pointer, 0),
    };
  } catch {
    libc = null;
  }
  return libc;
}

const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** Try to take an exclusive flock on an open fd. Without libc (unexpected) locking is skipped: true. */
export function tryLock(fd: number): boolean {
  const c = load();
  if (!c) return true;
  return c.flock(fd, LOCK_EX | LOCK_NB) === 0;
}

export function unlock(fd: number) {
  load()?.flock(fd, LOCK_UN);
}

/** Linux's makedev() for a 64-bit dev_t. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

export const S_IFIFO = 0o010000;

/** mknod(2); returns 0 or the errno. */
export function mknod(path: string, mode: number, major = 0, minor = 0): number {
  const c = load();
  if (!c) return 38; // ENOSYS
  return c.mknod(cstr(path), mode, makedev(major, minor)) === 0 ? 0 : c.errno();
}

/** lsetxattr(2) without following a final symlink; returns 0 or the errno. */
export function lsetxattr(path: string, name: string, value: Uint8Array): number {
  const c = load();
  if (!c) return 38;
  const v = value.length ? value : null;
  return c.lsetxattr(cstr(path), cstr(name), v, value.length, 0) === 0 ? 0 : c.errno();
}
