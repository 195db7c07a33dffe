/**
 * Joining two of Bun's native sockets into one byte stream, with back-pressure and half-close. Every
 * relay and the proxy's tunnels use this: Bun's own sockets move bytes noticeably faster than node:net
 * streams (scripts/bench/net.ts), and the tunnel is the hot path of every download.
 */
import type { Socket, SocketHandler, SocketListener } from "bun";
import { rmSync } from "node:fs";
import { sendCutMark, wasReset } from "./cut.ts";
import { fdOf, offload, offloadSoon, onLateData, SPLICE_AFTER, spliceReady, spliceStarted } from "./splice.ts";

/** Per-socket state. Before a socket has a peer, its bytes go to `onData` (a header reader) or `early`. */
export interface End {
  peer: Socket<End> | null;
  /** Bytes this socket's kernel buffer could not take yet; its peer stops reading until they are out. */
  backlog: Uint8Array | null;
  /** Received before the pair was joined; written to the peer at join. */
  early: Uint8Array[];
  onData: ((s: Socket<End>, d: Buffer) => void) | null;
  /** The far side sent FIN; forward it once the backlog is out. */
  finPending: boolean;
  gotFin: boolean;
  closed: boolean;
  onClose: (() => void) | null;
  /** Bytes this socket received and passed on; past SPLICE_AFTER the pair moves to the splice worker. */
  moved: number;
  /** The splice worker owns this pair's bytes now; these handlers keep their hands off. */
  offloaded: boolean;
  /**
   * This socket's far end is a relay that reads the cut mark (cut.ts): the proxy's side of a CONNECT
   * tunnel. When its peer (the upstream) is reset or fails, it is cut with the mark instead of ended.
   */
  cutMark: boolean;
  /**
   * This socket is a relay's connection to the proxy, whose cut mark resets the peer (the client). Bun's own
   * reads drop the mark, so the pair goes to the splice worker as soon as it is joined (the worker polls for
   * the mark); a pair that cannot go there (no worker) ends a cut tunnel cleanly, as before the mark.
   */
  watchCut: boolean;
}

export function newEnd(init: Partial<End> = {}): End {
  return {
    peer: null, backlog: null, early: [], onData: null, finPending: false, gotFin: false, closed: false, onClose: null,
    moved: 0, offloaded: false, cutMark: false, watchCut: false, ...init,
  };
}

/** Write to `to`; if its buffer is full, keep the rest and stop reading from `from` until `to` drains. */
function send(to: Socket<End>, d: Uint8Array, from: Socket<End> | null) {
  if (to.data.closed) return;
  if (to.data.backlog) {
    to.data.backlog = concat(to.data.backlog, d);
    from?.pause();
    return;
  }
  const n = to.write(d);
  if (n < d.length) {
    to.data.backlog = d.slice(Math.max(n, 0)); // a copy: Bun may reuse the buffer it handed us
    from?.pause();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function flush(s: Socket<End>) {
  const b = s.data.backlog;
  if (b) {
    const n = s.write(b);
    if (n < b.length) {
      s.data.backlog = b.subarray(Math.max(n, 0));
      return;
    }
    s.data.backlog = null;
  }
  s.data.peer?.resume();
  if (s.data.finPending) {
    s.data.finPending = false;
    s.shutdown();
  }
  if (s.data.peer && s.data.moved + s.data.peer.data.moved >= SPLICE_AFTER && spliceReady()) offloadSoon(s, s.data.peer);
}

/** Pass the FIN from `from` on to its peer (after any backlog), and close both once both sides are done. */
function forwardFin(from: Socket<End>) {
  from.data.gotFin = true;
  const to = from.data.peer;
  // Not joined yet: a head/header reader gives up; otherwise `join` forwards the FIN later.
  if (!to) return void (from.data.onData && from.end());
  if (to.data.backlog) to.data.finPending = true;
  else to.shutdown();
  if (to.data.gotFin) {
    from.end();
    to.end();
  }
}

/**
 * The tunnel broke on `s`'s peer's side: whatever `s` still had to write is dropped, the cut mark goes on
 * its socket, and it is closed, so the relay resets its client.
 */
function cut(s: Socket<End>) {
  s.data.backlog = null;
  s.data.finPending = false;
  s.data.onClose = null;
  sendCutMark(fdOf(s));
  s.terminate();
}

/** The handlers every piped socket uses (listeners and outgoing connections alike). */
export const pipeHandlers: SocketHandler<End> = {
  data(s, d) {
    const peer = s.data.peer;
    if (s.data.offloaded) return onLateData(s);
    if (peer) {
      send(peer, d, s);
      s.data.moved += d.length;
      if (s.data.moved >= SPLICE_AFTER && !peer.data.backlog && spliceReady()) offloadSoon(s, peer);
    } else if (s.data.onData) s.data.onData(s, d);
    else s.data.early.push(d.slice());
  },
  drain(s) {
    if (!s.data.offloaded) flush(s);
  },
  end(s) {
    if (s.data.offloaded) return;
    const peer = s.data.peer;
    // A reset whose error a failed write took shows as an end: a cut. Only while our side still sends (once
    // it has sent its FIN, the upstream's FIN leaves the socket closed too, and the two look alike).
    if (peer?.data.cutMark && !peer.data.closed && !peer.data.gotFin && wasReset(fdOf(s))) {
      s.data.peer = null;
      cut(peer);
      return void s.terminate();
    }
    forwardFin(s);
  },
  close(s, err) {
    const wasOffloaded = s.data.offloaded;
    s.data.closed = true;
    if (wasOffloaded) return; // the splice worker holds its own descriptors and finishes the pair
    const peer = s.data.peer;
    if (peer && !peer.data.closed) {
      if (err && peer.data.cutMark) cut(peer);
      // Let the peer finish writing what it already has, then close it.
      else if (peer.data.backlog) peer.data.finPending = true;
      else peer.end();
    }
    s.data.onClose?.();
  },
  error() {
    // `close` follows every error; nothing else to do here.
  },
  timeout(s) {
    s.end();
  },
};

/** Join two sockets: whatever either received early goes to the other first, then bytes flow both ways. */
export function join(a: Socket<End>, b: Socket<End>, firstToB?: Uint8Array) {
  a.data.peer = b;
  b.data.peer = a;
  a.data.onData = null;
  b.data.onData = null;
  if (firstToB && firstToB.length) send(b, firstToB, a);
  for (const d of a.data.early.splice(0)) send(b, d, a);
  for (const d of b.data.early.splice(0)) send(a, d, b);
  a.timeout(0); // head/header phases set idle timeouts; a joined stream may idle as long as it likes
  b.timeout(0);
  if ((a.data.watchCut || b.data.watchCut) && spliceReady() && offload(a, b)) return;
  a.resume();
  b.resume();
  if (a.data.closed) b.end();
  if (b.data.closed) a.end();
  if (a.data.gotFin) forwardFin(a);
  if (b.data.gotFin) forwardFin(b);
}

export type Target = { unix: string } | { hostname: string; port: number };

/** Open a connection whose socket uses the pipe handlers. Rejects when the connection fails. */
export function connectEnd(target: Target): Promise<Socket<End>> {
  const common = { socket: pipeHandlers, data: newEnd(), allowHalfOpen: true } as const;
  return "unix" in target
    ? Bun.connect<End>({ ...common, unix: target.unix })
    : Bun.connect<End>({ ...common, hostname: target.hostname, port: target.port });
}

/**
 * Connect to the first target that answers, then join it to `from`; `from` is closed if none does.
 * Resolves true when joined.
 */
export async function relayTo(from: Socket<End>, targets: Target[], head?: Uint8Array, watchCut = false): Promise<boolean> {
  from.pause();
  // The worker that watches for the cut mark must run before the pair is joined (see End.watchCut).
  if (watchCut) await spliceStarted();
  for (const t of targets) {
    try {
      const to = await connectEnd(t);
      to.data.watchCut = watchCut;
      if (from.data.closed) {
        to.end();
        return false;
      }
      join(from, to, head);
      return true;
    } catch {
      // try the next target
    }
  }
  from.end();
  return false;
}

/** Read a 2-byte big-endian port number that prefixes a relayed connection (host bridge, port forwards). */
export function readPortHeader(onPort: (s: Socket<End>, port: number, rest: Uint8Array) => void) {
  let got: Uint8Array = new Uint8Array(0);
  return (s: Socket<End>, d: Buffer) => {
    got = concat(got, d);
    if (got.length < 2) return;
    s.pause();
    s.data.onData = null; // anything further collects in `early` until joined
    onPort(s, (got[0]! << 8) | got[1]!, got.subarray(2));
  };
}

export const portHeader = (port: number) => Uint8Array.from([port >> 8, port & 0xff]);

/** A loopback port on this side, IPv4 first (dev servers often listen on localhost only, which may be ::1). */
export const loopbackTargets = (port: number): Target[] => [{ hostname: "127.0.0.1", port }, { hostname: "::1", port }];

/**
 * Listen on the Unix socket `path` (a stale file is replaced): each connection starts with a 2-byte port
 * header (portHeader), and `onPort` decides what to do with it. The hostAccess bridge and the relay
 * process's port forwards both speak this.
 */
export function listenWithPortHeader(
  path: string,
  onPort: (s: Socket<End>, port: number, rest: Uint8Array) => void,
  timeoutSeconds?: number,
): SocketListener<End> {
  rmSync(path, { force: true });
  return Bun.listen<End>({
    unix: path,
    allowHalfOpen: true,
    socket: {
      ...pipeHandlers,
      open(s) {
        s.data = newEnd({ onData: readPortHeader(onPort) });
        if (timeoutSeconds) s.timeout(timeoutSeconds);
      },
    },
  });
}
