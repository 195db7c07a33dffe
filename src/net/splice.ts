/**
 * Zero-copy offload for long transfers. Once a joined pair of sockets has moved SPLICE_AFTER bytes
 * through JavaScript (a download, not a handshake or an API call), its file descriptors are dup()ed and
 * handed to one worker thread that moves the rest with splice(2) (splice-worker.ts). Measured here: less
 * than half the CPU of the JavaScript pipe, which on a 2-core machine is the difference between ~0.6×
 * and ~0.9× of a direct download (scripts/bench/net.ts). Linux only; anywhere else, or if the worker
 * cannot start, or with SILO_NO_SPLICE=1, everything stays on the JavaScript pipe.
 */
import type { Socket } from "bun";
import { writeSync } from "node:fs";
import { log } from "../core/log.ts";
import { resetOnClose, sendCutMark } from "./cut.ts";
import type { End } from "./pipe.ts";
import { CMD_ADD, MARK_A, MARK_B, RING_SLOTS, SPLICE_WORKER_SOURCE, WATCH_A, WATCH_B } from "./splice-worker.ts";

/** Bytes a pair moves through JavaScript before it is worth a hand-off. */
export const SPLICE_AFTER = 1 << 20;

type State = "off" | "starting" | "ready" | "failed";
let state: State = process.platform === "linux" && !process.env.SILO_NO_SPLICE ? "off" : "failed";
let ring: Int32Array;
let wakeFd = -1;
let ffi: { dupCloexec(fd: number): number; close(fd: number): number } | null = null;
const pairs = new Map<number, [Socket<End>, Socket<End>]>();
let nextId = 1;

/** Counters for tests: pairs handed off, and data events that arrived after a hand-off (must stay 0). */
export const spliceStats = { offloaded: 0, finished: 0, lateData: 0 };

/** True when the worker runs; the first call starts it (in the background) and returns false. */
export function spliceReady(): boolean {
  if (state === "off") void start();
  return state === "ready";
}

const waiting: (() => void)[] = [];

/** Start the worker if it is not running, and resolve once it runs (true) or cannot (false). */
export function spliceStarted(): Promise<boolean> {
  if (spliceReady() || state === "failed") return Promise.resolve(state === "ready");
  return new Promise((resolve) => waiting.push(() => resolve(state === "ready")));
}

function settled() {
  for (const w of waiting.splice(0)) w();
}

async function start() {
  state = "starting";
  try {
    const { dlopen, FFIType: T } = await import("bun:ffi");
    const lib = dlopen("libc.so.6", {
      fcntl: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
      close: { args: [T.i32], returns: T.i32 },
    });
    const F_DUPFD_CLOEXEC = 1030; // close-on-exec: a dup must never leak into a spawned sandbox
    ffi = { dupCloexec: (fd) => lib.symbols.fcntl(fd, F_DUPFD_CLOEXEC, 0), close: (fd) => lib.symbols.close(fd) };
    const sab = new SharedArrayBuffer((2 + RING_SLOTS * 4) * 4);
    ring = new Int32Array(sab);
    const url = URL.createObjectURL(new Blob([SPLICE_WORKER_SOURCE], { type: "application/javascript" }));
    const worker = new Worker(url);
    worker.unref();
    worker.onmessage = (e: MessageEvent) => onWorkerMessage(e.data);
    worker.onerror = (e) => fail(`splice worker failed: ${e.message}`);
    worker.postMessage({ sab });
  } catch (e) {
    fail(`splice unavailable: ${(e as Error).message}`);
  }
}

function fail(why: string) {
  log.debug(why);
  state = "failed";
  settled();
  // Pairs already handed over cannot come back; cut them rather than leave them hanging.
  for (const [a, b] of pairs.values()) {
    for (const s of [a, b]) if (s.data.cutMark && !s.data.closed) sendCutMark(fdOf(s));
    endPair(a, b, false);
  }
  pairs.clear();
}

function onWorkerMessage(m: { type: string; wakeFd?: number; id?: number; ok?: boolean; message?: string }) {
  if (m.type === "ready") {
    wakeFd = m.wakeFd!;
    state = "ready";
    settled();
  } else if (m.type === "done") {
    const p = pairs.get(m.id!);
    pairs.delete(m.id!);
    spliceStats.finished++;
    if (p) endPair(p[0], p[1], m.ok === true);
  } else if (m.type === "error") {
    fail(`splice worker: ${m.message}`);
  }
}

function endPair(a: Socket<End>, b: Socket<End>, ok: boolean) {
  for (const s of [a, b]) {
    s.data.offloaded = false;
    s.data.closed = true; // the worker already passed on FIN; nothing more to forward
    if (ok) s.end();
    else s.terminate();
  }
}

export const fdOf = (s: Socket<End>) => (s as unknown as { fd?: number }).fd ?? -1;

const soon = new Set<Socket<End>>();

/**
 * Hand a joined pair to the worker once the event loop is out of every socket callback, never from inside
 * one. Bun decides what a socket is ready for before it calls `drain`, and reads it in the same turn even
 * when that callback paused it: a hand-over made in `drain` lost the bytes of that read (they came as a late
 * `data` event, and the pair was closed cleanly mid-transfer, a short download). Until the hand-over, bytes
 * keep flowing through JavaScript; if the pair no longer qualifies then, it stays there.
 */
export function offloadSoon(a: Socket<End>, b: Socket<End>) {
  if (soon.has(a) || soon.has(b) || a.data.offloaded) return;
  soon.add(a);
  soon.add(b);
  setImmediate(() => {
    soon.delete(a);
    soon.delete(b);
    if (a.data.peer === b && !a.data.offloaded) offload(a, b);
  });
}

/**
 * Hand a joined pair to the worker. Only when nothing is buffered on our side (no backlog, no early
 * bytes), so the kernel holds every byte not yet delivered. Returns false when it stays in JavaScript.
 */
export function offload(a: Socket<End>, b: Socket<End>): boolean {
  if (state !== "ready" || !ffi) return false;
  if (a.data.backlog || b.data.backlog || a.data.early.length || b.data.early.length || a.data.closed || b.data.closed) return false;
  if (a.data.finPending || b.data.finPending || a.data.gotFin || b.data.gotFin) return false;
  const head = Atomics.load(ring, 0);
  const tail = Atomics.load(ring, 1);
  if (((tail - head) | 0) >= RING_SLOTS) return false;
  const fa = fdOf(a);
  const fb = fdOf(b);
  if (fa < 0 || fb < 0) return false;
  // resume() then pause(): a socket already paused may still be polled for reading (a short write to it
  // re-arms that), and pause() alone does nothing to a paused socket. From here Bun must never read either.
  for (const s of [a, b]) {
    s.resume();
    s.pause();
  }
  const da = ffi.dupCloexec(fa);
  const db = da < 0 ? -1 : ffi.dupCloexec(fb);
  if (db < 0) {
    if (da >= 0) ffi.close(da);
    a.resume();
    b.resume();
    return false;
  }
  a.data.offloaded = true;
  b.data.offloaded = true;
  const id = nextId++;
  pairs.set(id, [a, b]);
  const s = 2 + (tail % RING_SLOTS) * 4;
  // Add the pair; the worker sends the cut mark (cut.ts) on the socket that reads it if the pair fails.
  ring[s] = CMD_ADD | (a.data.cutMark ? MARK_A : 0) | (b.data.cutMark ? MARK_B : 0) | (a.data.watchCut ? WATCH_A : 0) | (b.data.watchCut ? WATCH_B : 0);
  ring[s + 1] = id;
  ring[s + 2] = da;
  ring[s + 3] = db;
  Atomics.store(ring, 1, (tail + 1) | 0);
  try {
    writeSync(wakeFd, "w");
  } catch {
    // a full wake pipe already guarantees a wake-up
  }
  spliceStats.offloaded++;
  return true;
}

/**
 * A data event on an offloaded socket means Bun read bytes the worker should have moved (the hand-off raced
 * a read, or Bun read a paused socket that hung up): drop the pair, never corrupt it, and never end it
 * cleanly either. Its TCP sockets are reset and the worker sends the cut mark where a relay reads one.
 */
export function onLateData(s: Socket<End>) {
  spliceStats.lateData++;
  log.debug("splice: data arrived after hand-off; closing the connection");
  for (const [id, [a, b]] of pairs) {
    if (a !== s && b !== s) continue;
    pairs.delete(id);
    const t = Atomics.load(ring, 1);
    const slot = 2 + (t % RING_SLOTS) * 4;
    ring[slot] = 2;
    ring[slot + 1] = id;
    Atomics.store(ring, 1, (t + 1) | 0);
    try {
      writeSync(wakeFd, "w");
    } catch {
      // see above
    }
    resetOnClose(fdOf(a));
    resetOnClose(fdOf(b));
    endPair(a, b, false);
  }
}
