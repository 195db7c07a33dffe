// Pieces of the tunnel soak test (soak.test.ts): an upstream and a client that each send a keystream of a
// given length while hashing what they receive, both directions at once, with back-pressure and half-close.
import type { Socket } from "bun";
import { createCipheriv, createHash, type Hash } from "node:crypto";

const MiB = 1 << 20;
const ZEROS = Buffer.alloc(MiB);

/** A deterministic byte stream (AES-CTR keystream): cheap to make, impossible to mistake for another one. */
function keystream(seed: number) {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed >>> 0);
  const c = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return (n: number) => c.update(ZEROS.subarray(0, n));
}

/** One side of a transfer: sends `total` bytes of `seed`'s stream, then FIN; hashes what comes back. */
export interface Side {
  sent: number;
  sentHash: Hash;
  got: number;
  gotHash: Hash;
  gotEnd: boolean;
  error: string | null;
  pending: Buffer | null;
  next: (n: number) => Buffer;
  total: number;
  done: () => void;
  /** Upstream only: reset the connection once this many bytes are sent (an upstream failing mid-download). */
  resetAfter?: number;
}

export function newSide(seed: number, total: number, done: () => void, resetAfter?: number): Side {
  return {
    sent: 0, sentHash: createHash("sha256"), got: 0, gotHash: createHash("sha256"), gotEnd: false, error: null,
    pending: null, next: keystream(seed), total, done, resetAfter,
  };
}

/** Write until the socket's buffer is full; FIN once everything is out. */
export function pump(s: Socket<Side>) {
  const d = s.data;
  for (;;) {
    if (!d.pending) {
      const n = Math.min(256 * 1024, d.total - d.sent);
      if (n === 0) return void (d.gotEnd ? s.end() : s.shutdown());
      d.pending = d.next(n);
      d.sentHash.update(d.pending);
      d.sent += n;
    }
    const w = s.write(d.pending);
    if (w < d.pending.length) {
      d.pending = d.pending.subarray(Math.max(w, 0));
      return;
    }
    d.pending = null;
    if (d.resetAfter !== undefined && d.sent >= d.resetAfter) return void s.terminate();
  }
}

export function receive(s: Socket<Side>, b: Uint8Array) {
  s.data.got += b.length;
  s.data.gotHash.update(b);
}

/** Socket handlers for both sides (the client's first bytes, the CONNECT head, are dealt with by the caller). */
export const sideHandlers = {
  data: receive,
  drain: pump,
  end(s: Socket<Side>) {
    s.data.gotEnd = true;
    if (s.data.sent >= s.data.total && !s.data.pending) s.end();
  },
  error(s: Socket<Side>, e: Error) {
    s.data.error = (e as NodeJS.ErrnoException).code ?? e.message;
  },
  close(s: Socket<Side>, e?: Error) {
    if (e && !s.data.error) s.data.error = (e as NodeJS.ErrnoException).code ?? e.message;
    // Bun closes without an `end` event when the FIN comes after ours; a close without an error is that FIN.
    if (!s.data.error) s.data.gotEnd = true;
    s.data.done();
  },
};

/** The request a client sends first: "S", stream seed, bytes wanted down, bytes it sends up. */
export function request(seed: number, down: number, up: number, resetAfter = 0): Buffer {
  const b = Buffer.alloc(17);
  b.write("S");
  b.writeUInt32BE(seed, 1);
  b.writeUInt32BE(down, 5);
  b.writeUInt32BE(up, 9);
  b.writeUInt32BE(resetAfter, 13);
  return b;
}

export interface Served {
  up: Side;
  closed: Promise<void>;
}

/**
 * Upstream on 127.0.0.1: reads a request, then streams `down` bytes of stream seed*2 while hashing the `up`
 * bytes it receives. `served` gets each connection's side, by seed.
 */
export function startUpstream(served: Map<number, Served>) {
  type U = Side & { head: Buffer | null };
  return Bun.listen<U>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { head: Buffer.alloc(0) } as U;
      },
      data(s, d) {
        if (s.data.head === null) return receive(s as unknown as Socket<Side>, d);
        const head = Buffer.concat([s.data.head, d]);
        if (head.length < 17) return void (s.data.head = head);
        const seed = head.readUInt32BE(1);
        const down = head.readUInt32BE(5);
        const resetAfter = head.readUInt32BE(13);
        let done!: () => void;
        const closed = new Promise<void>((r) => (done = r));
        s.data = Object.assign(newSide(seed * 2, down, done, resetAfter || undefined), { head: null });
        served.set(seed, { up: s.data, closed });
        receive(s as unknown as Socket<Side>, head.subarray(17));
        pump(s as unknown as Socket<Side>);
      },
      drain: (s) => void (s.data.head === null && pump(s as unknown as Socket<Side>)),
      end: (s) => void (s.data.head === null ? sideHandlers.end(s as unknown as Socket<Side>) : s.end()),
      error: (s, e) => void (s.data.head === null && sideHandlers.error(s as unknown as Socket<Side>, e)),
      close: (s, e) => void (s.data.head === null && sideHandlers.close(s as unknown as Socket<Side>, e)),
    },
  });
}

export type Via = { unix: string } | { port: number };

/**
 * One transfer through `via` (CONNECT first when it is the proxy socket or a relay to it): sends `up` bytes,
 * receives `down`, both at once. Resolves with the client's side once the connection is closed.
 */
export async function transfer(via: Via, upstreamPort: number, seed: number, down: number, up: number, resetAfter = 0): Promise<Side> {
  type C = Side & { head: string | null };
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  const side = Object.assign(newSide(seed * 2 + 1, up, done), { head: "" as string | null });
  const target = `127.0.0.1:${upstreamPort}`;
  const socket = {
    open(s: Socket<C>) {
      s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    },
    data(s: Socket<C>, d: Buffer) {
      if (s.data.head === null) return receive(s as unknown as Socket<Side>, d);
      const text = s.data.head + d.toString("latin1");
      const i = text.indexOf("\r\n\r\n");
      if (i < 0) return void (s.data.head = text);
      if (!text.startsWith("HTTP/1.1 200")) {
        s.data.error = `proxy said: ${text.split("\r\n")[0]}`;
        return void s.end();
      }
      s.data.head = null;
      receive(s as unknown as Socket<Side>, Buffer.from(text.slice(i + 4), "latin1"));
      s.write(request(seed, down, up, resetAfter));
      pump(s as unknown as Socket<Side>);
    },
    drain: (s: Socket<C>) => void (s.data.head === null && pump(s as unknown as Socket<Side>)),
    end: (s: Socket<C>) => sideHandlers.end(s as unknown as Socket<Side>),
    error: (s: Socket<C>, e: Error) => sideHandlers.error(s as unknown as Socket<Side>, e),
    close: (s: Socket<C>, e?: Error) => sideHandlers.close(s as unknown as Socket<Side>, e),
  };
  const common = { data: side, allowHalfOpen: true, socket } as const;
  await ("unix" in via ? Bun.connect<C>({ ...common, unix: via.unix }) : Bun.connect<C>({ ...common, hostname: "127.0.0.1", port: via.port }));
  await closed;
  return side;
}
