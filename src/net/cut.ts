/**
 * The cut mark: how the egress proxy tells a relay that a tunnel broke (its upstream reset, or failed
 * mid-transfer), so that the client gets a TCP reset, never the clean end of a short download. The mark is
 * one byte of out-of-band data (MSG_OOB) on the proxy's Unix socket to the relay, sent just before that
 * socket is closed. An ordinary read never returns it (the stream's bytes are untouched, so a relay that
 * does not look for it sees the old clean end); the relays look with poll(2) (POLLPRI) before each read
 * (native/silo-stage.c, and splice-worker.ts for the shell stage's relay process). Never sent twice: a
 * second one would turn the first into an ordinary byte of the stream.
 *
 * bun:ffi is bound on first use: a run without a tunnel never loads it.
 */
import { log } from "../core/log.ts";

const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_LINGER = 13;
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCP_CLOSE = 7;
const MSG_OOB = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** Raised before the mark is sent: a full send buffer would refuse the one byte (EAGAIN) otherwise. */
const MARK_SNDBUF = 4 << 20;

type Libc = {
  send(fd: number, buf: Uint8Array, n: number, flags: number): number;
  setsockopt(fd: number, level: number, name: number, val: Uint8Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: Uint8Array, len: Uint8Array): number;
};
let libc: Libc | null | undefined;

function bind(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const { dlopen, FFIType: T } = require("bun:ffi") as typeof import("bun:ffi");
    const l = dlopen("libc.so.6", {
      send: { args: [T.i32, T.ptr, T.u64, T.i32], returns: T.i64 },
      setsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.u32], returns: T.i32 },
      getsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.ptr], returns: T.i32 },
    });
    libc = {
      send: (fd, buf, n, flags) => Number(l.symbols.send(fd, buf, n, flags)),
      setsockopt: (fd, level, name, val, len) => l.symbols.setsockopt(fd, level, name, val, len),
      getsockopt: (fd, level, name, val, len) => l.symbols.getsockopt(fd, level, name, val, len),
    };
  } catch (e) {
    log.debug(`cut mark unavailable: ${(e as Error).message}`);
    libc = null;
  }
  return libc;
}

const MARK = Uint8Array.of(0x21);

/** Send the cut mark on the Unix socket `fd` (the caller closes it next). False when it could not be sent. */
export function sendCutMark(fd: number): boolean {
  const c = fd >= 0 ? bind() : null;
  if (!c) return false;
  const size = new Uint8Array(new Int32Array([MARK_SNDBUF]).buffer);
  c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, size, 4);
  const ok = c.send(fd, MARK, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL) === 1;
  if (!ok) log.debug("cut mark: could not be sent; the client sees the tunnel end");
  return ok;
}

/**
 * True when the TCP socket `fd` was reset rather than ended: Bun reports an end (not an error) for a reset
 * socket whose error a failed write took first, and only the kernel's state tells them apart: a FIN leaves
 * CLOSE_WAIT, a reset CLOSE. Meaningful only while this side has not sent its own FIN (after it, the far
 * side's FIN leaves CLOSE as well).
 */
export function wasReset(fd: number): boolean {
  const c = fd >= 0 ? bind() : null;
  if (!c) return false;
  const info = new Uint8Array(256);
  const len = new Uint8Array(new Int32Array([info.length]).buffer);
  return c.getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, len) === 0 && info[0] === TCP_CLOSE;
}

/** Make the last close of the TCP socket `fd` a reset (SO_LINGER on, timeout 0). Harmless on a Unix socket. */
export function resetOnClose(fd: number): void {
  const c = fd >= 0 ? bind() : null;
  c?.setsockopt(fd, SOL_SOCKET, SO_LINGER, new Uint8Array(new Int32Array([1, 0]).buffer), 8);
}
