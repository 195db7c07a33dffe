/**
 * isatty(3) without its start-up price. `node:tty` costs ~4 ms of start-up in the compiled binary (it loads
 * Node's stream and net machinery), and bun:ffi ~5 MB of RSS; every shim call needs the answer. On Linux
 * one fstat answers nearly always: pipes and files are not character devices, /dev/null and friends are
 * memory devices (major 1), and terminals are pseudo-terminal slaves (majors 136-143), virtual consoles
 * and serial lines (4) or /dev/tty and /dev/console (5). Any other character device asks the C library.
 */
import { fstatSync } from "node:fs";

const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);
const MEM_MAJOR = 1;

export function isatty(fd: number): boolean {
  if (process.platform !== "linux") return exactIsatty(fd);
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return false; // not open
  }
  if (!st.isCharacterDevice()) return false;
  // Linux dev_t: the major number's low 12 bits are bits 8-19 (every major above fits there).
  const major = Math.floor(st.rdev / 256) & 0xfff;
  if (TTY_MAJORS.has(major)) return true;
  if (major === MEM_MAJOR) return false;
  return exactIsatty(fd);
}

function exactIsatty(fd: number): boolean {
  const tty = require("node:tty") as typeof import("node:tty");
  return tty.isatty(fd);
}
