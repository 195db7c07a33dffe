/**
 * isatty(3) straight from the C library. `node:tty` costs ~4 ms of start-up in the compiled binary (it
 * loads Node's stream and net machinery), and every shim call needs to know whether it has a terminal.
 * Where the C library cannot be loaded, node:tty after all.
 */
import { dlopen, FFIType } from "bun:ffi";

const LIBS =
  process.platform === "darwin"
    ? ["libSystem.B.dylib"]
    : ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];

let impl: ((fd: number) => boolean) | null = null;

function load(): (fd: number) => boolean {
  for (const name of LIBS) {
    try {
      const { symbols } = dlopen(name, { isatty: { args: [FFIType.i32], returns: FFIType.i32 } });
      return (fd) => symbols.isatty(fd) === 1;
    } catch {
      // next
    }
  }
  const tty = require("node:tty") as typeof import("node:tty");
  return (fd) => tty.isatty(fd);
}

export function isatty(fd: number): boolean {
  impl ??= load();
  return impl(fd);
}
