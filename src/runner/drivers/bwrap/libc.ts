/**
 * The few system calls the relay process (`silo __stage`) makes itself, through bun:ffi: a parent-death
 * signal, and bringing up loopback in the stage's fresh network namespace (`unshare --net` leaves `lo`
 * down, and iproute2 may not be installed).
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const LIBS = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];
const SYMBOLS = {
  prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
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

