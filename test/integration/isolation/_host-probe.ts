// Host-side probes for the isolation tests, made with Bun's FFI so they need nothing but bun:
//   bun _host-probe.ts tiocsti   → pushes "#" into the terminal on stdin; prints INJECTED or REFUSED <errno>
//   bun _host-probe.ts keyctl    → prints the errno of keyctl(KEYCTL_GET_KEYRING_ID, 0, 0), or "ok"
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
}).symbols;
const errno = () => read.i32(libc.__errno_location()!, 0);

const what = process.argv[2];
if (what === "tiocsti") {
  const ch = new Uint8Array([0x23]);
  const r = libc.ioctl(0, 0x5412, ptr(ch));
  console.log(r === 0 ? "INJECTED" : `REFUSED ${errno()}`);
} else if (what === "keyctl") {
  const nr = process.arch === "arm64" ? 219 : 250;
  const r = Number(libc.syscall(nr, 0, 0, 0));
  console.log(r < 0 ? String(errno()) : "ok");
}
