// Host side of seccomp.test.ts: the same system calls as the sandbox probe, made with Bun's FFI (nothing
// but bun needed). argv[2]: a tmpfs directory for name_to_handle_at. Prints {name: "ok" | errno} as JSON.
// Only this throwaway process is affected (its own persona, its own descriptors).
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
}).symbols;
const arm = process.arch === "arm64";
const NR = { personality: arm ? 92 : 135, pidfd_open: 434, pidfd_getfd: 438, name_to_handle_at: arm ? 264 : 303, memfd_secret: 447 };
const call = (nr: number, ...a: number[]) => {
  const r = Number(libc.syscall(nr, a[0] ?? 0, a[1] ?? 0, a[2] ?? 0, a[3] ?? 0, a[4] ?? 0));
  return r < 0 ? read.i32(libc.__errno_location()!, 0) : "ok";
};
const handle = new Uint8Array(136);
new DataView(handle.buffer).setUint32(0, 128, true); // handle_bytes
const mountId = new Int32Array(1);
const path = new TextEncoder().encode(`${process.argv[2]}\0`);
const pidfd = Number(libc.syscall(NR.pidfd_open, process.pid, 0, 0, 0, 0, 0));
console.log(
  JSON.stringify({
    personality_query: call(NR.personality, 0xffffffff),
    personality_no_aslr: call(NR.personality, 0x40000),
    personality_read_implies_exec: call(NR.personality, 0x400000),
    pidfd_getfd: pidfd < 0 ? "no pidfd" : call(NR.pidfd_getfd, pidfd, 1, 0),
    name_to_handle_at: call(NR.name_to_handle_at, -100, ptr(path), ptr(handle), ptr(mountId), 0),
    memfd_secret: call(NR.memfd_secret, 0),
  }),
);
