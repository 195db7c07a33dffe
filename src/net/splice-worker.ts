/**
 * Source of the splice worker (a plain-JS string, started from a Blob URL so that `bun build --compile`
 * needs no extra entry point and the bundler leaves its `require("bun:ffi")` alone).
 *
 * The worker moves bytes between pairs of already-approved sockets with splice(2): socket → pipe →
 * socket inside the kernel, no copy through JavaScript. It blocks in poll(2) on every pair plus a wake
 * pipe, so new work arrives through a SharedArrayBuffer ring (not postMessage, which would need the
 * worker's event loop); it reports finished pairs with postMessage.
 *
 * Ring layout (Int32Array): [0] head (worker reads), [1] tail (main writes), then RING_SLOTS slots of
 * 4 ints: cmd (1 add pair, 2 close pair, 3 stop), id, fdA, fdB. The fds are dup()s owned by the worker.
 * An add may carry MARK_A or MARK_B: that socket's far end is a relay that reads the cut mark (cut.ts),
 * which the worker sends on it when the pair fails (an upstream reset, an error), before closing it (the
 * proxy's side). Or WATCH_A or WATCH_B: that socket is a relay's connection to the proxy, whose cut mark
 * resets the other socket (SO_LINGER 0, then the main thread's close); it is read only right after a poll
 * that shows bytes (or its end) and no mark: a read that starts at the mark drops it and reads on to the end.
 */
export const RING_SLOTS = 256;
export const CMD_ADD = 1;
export const MARK_A = 16;
export const MARK_B = 32;
export const WATCH_A = 64;
export const WATCH_B = 128;

export const SPLICE_WORKER_SOURCE = String.raw`
const { dlopen, FFIType: T, ptr, read } = require("bun:ffi");
let c;
try {
  c = dlopen("libc.so.6", {
    splice: { args: [T.i32, T.ptr, T.i32, T.ptr, T.u64, T.u32], returns: T.i64 },
    pipe2: { args: [T.ptr, T.i32], returns: T.i32 },
    poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
    read: { args: [T.i32, T.ptr, T.u64], returns: T.i64 },
    close: { args: [T.i32], returns: T.i32 },
    shutdown: { args: [T.i32, T.i32], returns: T.i32 },
    fcntl: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
    send: { args: [T.i32, T.ptr, T.u64, T.i32], returns: T.i64 },
    setsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.u32], returns: T.i32 },
    getsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.ptr], returns: T.i32 },
    __errno_location: { args: [], returns: T.ptr },
  }).symbols;
} catch (e) {
  postMessage({ type: "error", message: String(e) });
}
const O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000, F_SETPIPE_SZ = 1031;
const SPLICE_F_MOVE = 1, SPLICE_F_NONBLOCK = 2, EAGAIN = 11, EINTR = 4;
const POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16, SHUT_WR = 1;
const CAP = 1 << 20;
const MSG_OOB = 1, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000, SOL_SOCKET = 1, SO_SNDBUF = 7, SO_LINGER = 13;
const POLLPRI = 2;
const lingerZero = new Int32Array([1, 0]);
const one = new Int32Array(2);
const oneEv = new Int16Array(one.buffer);
const pollNow = (fd) => {
  one[0] = fd; oneEv[2] = POLLIN | POLLPRI; oneEv[3] = 0;
  return c.poll(ptr(one), 1, 0) > 0 ? oneEv[3] : 0;
};
const IPPROTO_TCP = 6, TCP_INFO = 11, TCP_CLOSE = 7;
const tcpInfo = new Uint8Array(256), tcpInfoLen = new Int32Array(1);
// An end read from a TCP socket that is closed (not CLOSE_WAIT) while we have not sent our FIN was a reset
// whose error someone else took (the main thread's poll sees the same socket): cut.ts, wasReset.
const wasReset = (fd) => {
  tcpInfoLen[0] = tcpInfo.length;
  return c.getsockopt(fd, IPPROTO_TCP, TCP_INFO, ptr(tcpInfo), ptr(tcpInfoLen)) === 0 && tcpInfo[0] === TCP_CLOSE;
};
const errno = () => read.i32(c.__errno_location(), 0);
const markByte = new Uint8Array([0x21]);
const markSndbuf = new Int32Array([4 << 20]);
// The cut mark (cut.ts): one out-of-band byte, with room made for it in a full send buffer.
const sendMark = (fd) => {
  c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, ptr(markSndbuf), 4);
  c.send(fd, ptr(markByte), 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL);
};

function makePipe() {
  const fds = new Int32Array(2);
  if (c.pipe2(ptr(fds), O_NONBLOCK | O_CLOEXEC) !== 0) return null;
  c.fcntl(fds[1], F_SETPIPE_SZ, CAP); // best effort: a smaller pipe only means more syscalls
  return fds;
}

function main(sab) {
  const ring = new Int32Array(sab);
  const wake = makePipe();
  postMessage({ type: "ready", wakeFd: wake[1] });
  const pairs = new Map();
  const scratch = new Uint8Array(512);

  const closePair = (p, ok) => {
    if (!ok && p.mark >= 0) sendMark(p.mark);
    for (const d of p.dirs) { if (d.pipe) { c.close(d.pipe[0]); c.close(d.pipe[1]); } }
    c.close(p.a); c.close(p.b);
    pairs.delete(p.id);
    postMessage({ type: "done", id: p.id, ok });
  };
  const addPair = (id, a, b, flags) => {
    const p1 = makePipe(), p2 = makePipe();
    const dir = (src, dst, pipe) => ({ src, dst, pipe, n: 0, eof: false, done: false });
    const mark = flags & ${MARK_A} ? a : flags & ${MARK_B} ? b : -1;
    const watch = flags & ${WATCH_A} ? a : flags & ${WATCH_B} ? b : -1;
    const p = { id, a, b, mark, watch, cut: false, dirs: [dir(a, b, p1), dir(b, a, p2)] };
    pairs.set(id, p);
    if (!p1 || !p2) closePair(p, false);
  };
  const takeCommands = () => {
    for (;;) {
      const r = c.read(wake[0], ptr(scratch), scratch.length);
      if (Number(r) <= 0) break;
    }
    let head = Atomics.load(ring, 0);
    const tail = Atomics.load(ring, 1);
    while (head !== tail) {
      const s = 2 + (head % ${RING_SLOTS}) * 4;
      const cmd = ring[s], id = ring[s + 1];
      if ((cmd & 15) === ${CMD_ADD}) addPair(id, ring[s + 2], ring[s + 3], cmd);
      else if (cmd === 2) { const p = pairs.get(id); if (p) closePair(p, false); }
      else if (cmd === 3) return false;
      head = (head + 1) | 0;
      Atomics.store(ring, 0, head);
    }
    return true;
  };
  // Move what can be moved for one pair; returns false if the pair failed.
  const pump = (p, revA, revB) => {
    const rev = (fd) => (fd === p.a ? revA : revB);
    for (const d of p.dirs) {
      if (d.done) continue;
      if (!d.eof && d.n < CAP && (rev(d.src) & (POLLIN | POLLHUP | POLLERR))) {
        for (;;) {
          const n = Number(c.splice(d.src, null, d.pipe[1], null, CAP - d.n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
          if (n > 0) {
            d.n += n;
            if (d.n >= CAP) break;
            if (d.src === p.watch) {
              // Read on only while the socket has bytes (or its end) and no mark: see WATCH_A.
              const r = pollNow(d.src);
              if (r & POLLPRI) { p.cut = true; return true; }
              if (!(r & POLLIN)) break;
            }
            continue;
          }
          if (n === 0) {
            if (d.dst === p.mark && !p.dirs.find((o) => o.dst === d.src).done && wasReset(d.src)) return false;
            d.eof = true;
            break;
          }
          const e = errno();
          if (e === EINTR) continue;
          if (e !== EAGAIN) return false;
          break;
        }
      }
      while (d.n > 0) {
        const m = Number(c.splice(d.pipe[0], null, d.dst, null, d.n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
        if (m > 0) { d.n -= m; continue; }
        const e = errno();
        if (e === EINTR) continue;
        if (e !== EAGAIN) return false;
        break;
      }
      if (d.eof && d.n === 0) { c.shutdown(d.dst, SHUT_WR); d.done = true; }
    }
    // A socket that failed, or hung up while we still have to write to it: nothing more can flow.
    for (const fd of [p.a, p.b]) {
      if (rev(fd) & POLLERR) return false;
      const incoming = p.dirs.find((d) => d.src === fd);
      const outgoing = p.dirs.find((d) => d.dst === fd);
      if ((rev(fd) & POLLHUP) && incoming.eof && !outgoing.done) return false;
    }
    return true;
  };

  let pfd = new Int32Array(2 * 16);
  for (;;) {
    const list = [...pairs.values()];
    const count = 1 + list.length * 2;
    if (pfd.length < count * 2) pfd = new Int32Array(count * 4);
    const ev = new Int16Array(pfd.buffer);
    // No interest: a negative fd makes poll skip the entry (a hung-up socket would otherwise wake it forever).
    const set = (i, fd, events) => { pfd[i * 2] = events ? fd : -1; ev[i * 4 + 2] = events; ev[i * 4 + 3] = 0; };
    set(0, wake[0], POLLIN);
    list.forEach((p, k) => {
      const [ab, ba] = p.dirs;
      const pri = (d) => (d.src === p.watch && !d.eof ? POLLPRI : 0);
      set(1 + k * 2, p.a, (!ab.done && !ab.eof && ab.n < CAP ? POLLIN : 0) | (ba.n > 0 ? POLLOUT : 0) | pri(ab));
      set(2 + k * 2, p.b, (!ba.done && !ba.eof && ba.n < CAP ? POLLIN : 0) | (ab.n > 0 ? POLLOUT : 0) | pri(ba));
    });
    const r = c.poll(ptr(pfd), count, -1);
    if (r < 0 && errno() !== EINTR) break;
    list.forEach((p, k) => {
      if (!pairs.has(p.id)) return;
      const revA = ev[(1 + k * 2) * 4 + 3], revB = ev[(2 + k * 2) * 4 + 3];
      const ok = p.watch >= 0 && ((p.watch === p.a ? revA : revB) & POLLPRI) ? (p.cut = true) : pump(p, revA, revB);
      if (p.cut) {
        // The proxy cut the tunnel: the client gets a reset when the main thread closes its socket.
        c.setsockopt(p.watch === p.a ? p.b : p.a, SOL_SOCKET, SO_LINGER, ptr(lingerZero), 8);
        return closePair(p, false);
      }
      if (!ok) closePair(p, false);
      else if (p.dirs.every((d) => d.done)) closePair(p, true);
    });
    if (ev[3] & POLLIN && !takeCommands()) break;
  }
  for (const p of [...pairs.values()]) closePair(p, false);
  c.close(wake[0]); c.close(wake[1]);
  postMessage({ type: "stopped" });
}

self.onmessage = (e) => { if (c) main(e.data.sab); };
`;
