/**
 * The few system calls silo makes itself, through bun:ffi. The relay process (`silo __stage`): a
 * parent-death signal, and bringing up loopback in the stage's fresh network namespace (`unshare --net`
 * leaves `lo` down, and iproute2 may not be installed). The driver: a socket pair to the native stage and
 * receiving the listening sockets it sends back (SCM_RIGHTS, which Bun does not expose).
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const LIBS = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];
const SYMBOLS = {
  prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  socketpair: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  recvmsg: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i64 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let lib: Lib | null = null;

function libc(): Lib {
  if (lib) return lib;
  let last: unknown;
  for (const name of LIBS) {
    try {
      lib = dlopen(name, SYMBOLS).symbols;
      return lib;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`cannot load the C library for system calls: ${String(last)}`);
}


function errno(): number {
  const p = libc().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

function check(r: number, what: string) {
  if (r < 0) {
    const e = errno();
    throw Object.assign(new Error(`${what} failed (errno ${e})`), { errno: e });
  }
}

const PR_SET_PDEATHSIG = 1;
/** Die with `sig` when the parent (the silo that started this stage) dies. */
export function setParentDeathSignal(sig: number) {
  check(libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)");
}

const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 1;
/** `ip link set lo up`, without iproute2. */
export function bringLoopbackUp() {
  const l = libc();
  const fd = l.socket(2 /* AF_INET */, 2 /* SOCK_DGRAM */, 0);
  check(fd, "socket");
  try {
    const ifr = new Uint8Array(40); // struct ifreq: char name[16]; short flags; ...
    ifr.set(new TextEncoder().encode("lo"));
    check(l.ioctl(fd, SIOCGIFFLAGS, ptr(ifr)), "SIOCGIFFLAGS lo");
    const view = new DataView(ifr.buffer);
    view.setUint16(16, view.getUint16(16, true) | IFF_UP, true);
    check(l.ioctl(fd, SIOCSIFFLAGS, ptr(ifr)), "SIOCSIFFLAGS lo");
  } finally {
    l.close(fd);
  }
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SCM_RIGHTS = 1;
const EINTR = 4;
const MSG_CMSG_CLOEXEC = 0x40000000;

/** A connected pair of Unix stream sockets, close-on-exec (the child's end is dup'ed in by spawn). */
export function socketPair(): [number, number] {
  const sv = new Int32Array(2);
  check(libc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ptr(sv)), "socketpair");
  return [sv[0]!, sv[1]!];
}

export function closeFd(fd: number) {
  libc().close(fd);
}

/**
 * Receive `count` descriptors sent with SCM_RIGHTS on `fd` (one message), waiting at most `timeoutMs`.
 * null when the peer closed its end first (it failed before sending). 64-bit Linux layouts: msghdr 56
 * bytes, iovec 16, cmsghdr 16 + data.
 */
export function receiveFds(fd: number, count: number, timeoutMs: number): number[] | null {
  const l = libc();
  const tv = new BigInt64Array([BigInt(Math.floor(timeoutMs / 1000)), BigInt((timeoutMs % 1000) * 1000)]);
  check(l.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(tv), 16), "setsockopt(SO_RCVTIMEO)");
  const data = new Uint8Array(1);
  const iov = new BigUint64Array([BigInt(ptr(data)), 1n]);
  const controlLen = 16 + Math.ceil((count * 4) / 8) * 8;
  const control = new Uint8Array(controlLen);
  const msg = new BigUint64Array(7);
  msg[2] = BigInt(ptr(iov));
  msg[3] = 1n;
  msg[4] = BigInt(ptr(control));
  msg[5] = BigInt(controlLen);
  let n: number;
  for (;;) {
    n = Number(l.recvmsg(fd, ptr(msg), MSG_CMSG_CLOEXEC));
    if (n >= 0 || errno() !== EINTR) break;
  }
  check(n, "recvmsg");
  if (n === 0) return null;
  const view = new DataView(control.buffer);
  const len = Number(view.getBigUint64(0, true));
  if (view.getInt32(8, true) !== SOL_SOCKET || view.getInt32(12, true) !== SCM_RIGHTS || len < 16) throw new Error("recvmsg: no descriptors in the message");
  const fds: number[] = [];
  for (let off = 16; off + 4 <= len; off += 4) fds.push(view.getInt32(off, true));
  if (fds.length !== count) {
    for (const f of fds) l.close(f);
    throw new Error(`recvmsg: expected ${count} descriptors, got ${fds.length}`);
  }
  return fds;
}
