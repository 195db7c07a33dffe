// Pieces of the cut-tunnel tests (cut.test.ts): an upstream that sends part of a body and then resets the
// connection (SO_LINGER 0, then close: an RST, as a crashing or killed server's kernel sends), an upstream
// whose response simply ends, and a client that reports how its connection ended.
import { dlopen, FFIType } from "bun:ffi";
import type { Socket } from "bun";

const libc = dlopen("libc.so.6", { setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 } });
const SOL_SOCKET = 1;
const SO_LINGER = 13;

/** Close `s` with a reset: linger on, timeout 0. */
export function resetSocket(s: Socket<unknown>) {
  const fd = (s as unknown as { fd: number }).fd;
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_LINGER, new Uint8Array(new Int32Array([1, 0]).buffer), 8) !== 0)
    throw new Error("setsockopt(SO_LINGER) failed");
  s.terminate();
}

/**
 * Upstream on 127.0.0.1: once a request line (anything ending in \r\n\r\n) is in, it sends `bytes` bytes, then
 * resets (`reset`) or ends with a FIN. No length is announced: the end of the stream is the end of the body.
 */
export function startBodyServer(bytes: number, reset: boolean) {
  type S = { got: string; sent: number; started: boolean };
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const pump = (s: Socket<S>) => {
    while (s.data.sent < bytes) {
      const n = s.write(chunk.subarray(0, Math.min(chunk.length, bytes - s.data.sent)));
      s.data.sent += Math.max(n, 0);
      if (n <= 0) return;
    }
    // Everything is in the kernel's buffer; a reset now discards what the client has not read yet.
    if (reset) resetSocket(s);
    else s.end();
  };
  return Bun.listen<S>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { got: "", sent: 0, started: false };
      },
      data(s, d) {
        if (s.data.started) return;
        s.data.got += d.toString("latin1");
        if (!s.data.got.includes("\r\n\r\n")) return;
        s.data.started = true;
        s.write(`HTTP/1.0 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n`);
        pump(s);
      },
      drain(s) {
        if (s.data.started) pump(s);
      },
    },
  });
}

/** How a client's read ended: a clean end (`eof`) after `bytes`, or an error (`reset`, or its code). */
export type Ending = { end: string; bytes: number; tail?: string };

/** What the client asks for: a CONNECT tunnel to `target` with a GET inside, or a plain-HTTP GET through a proxy. */
export type Ask = { connect: string } | { get: string };

const request = (ask: Ask) =>
  "connect" in ask
    ? `CONNECT ${ask.connect} HTTP/1.1\r\nHost: ${ask.connect}\r\n\r\n`
    : `GET ${ask.get} HTTP/1.1\r\nHost: ${new URL(ask.get).host}\r\nConnection: close\r\n\r\n`;

/** A client on the host: connects to `via`, asks, and reads to the end. */
export async function readToEnd(via: { unix: string } | { port: number }, ask: Ask): Promise<Ending> {
  type C = { head: string | null; bytes: number; error: string | null; tail: string };
  const ended = Promise.withResolvers<Ending>();
  const socket = {
    open(s: Socket<C>) {
      s.write(request(ask));
    },
    data(s: Socket<C>, d: Buffer) {
      s.data.bytes += d.length;
      s.data.tail = (s.data.tail + d.subarray(-8).toString("latin1")).slice(-8);
      if (s.data.head === null || !("connect" in ask)) return;
      s.data.head += d.toString("latin1");
      const i = s.data.head.indexOf("\r\n\r\n");
      if (i < 0) return;
      if (!s.data.head.startsWith("HTTP/1.1 200")) s.data.error = `proxy said ${s.data.head.split("\r\n")[0]}`;
      s.data.bytes = s.data.head.length - i - 4;
      s.data.head = null;
      s.write("GET / HTTP/1.0\r\n\r\n");
    },
    error(s: Socket<C>, e: Error) {
      s.data.error ??= (e as NodeJS.ErrnoException).code ?? e.message;
    },
    close(s: Socket<C>, e?: Error) {
      if (e) s.data.error ??= (e as NodeJS.ErrnoException).code ?? e.message;
      const err = s.data.error;
      ended.resolve({ end: err === null ? "eof" : err === "ECONNRESET" ? "reset" : err, bytes: s.data.bytes, tail: s.data.tail });
    },
  };
  const common = { data: { head: "", bytes: 0, error: null, tail: "" } as C, socket } as const;
  await ("unix" in via ? Bun.connect<C>({ ...common, unix: via.unix }) : Bun.connect<C>({ ...common, hostname: "127.0.0.1", port: via.port }));
  return ended.promise;
}

/** The same client in Python, for inside a sandbox: prints `eof <bytes>` or `reset <bytes>`. */
export const clientScript = (port: number, ask: Ask) => `
import socket
s = socket.create_connection(("127.0.0.1", ${port}), timeout=60)
n = 0
try:
    s.sendall(${JSON.stringify(request(ask))}.encode())
    buf = b""
    if ${"connect" in ask ? "True" : "False"}:
        while b"\\r\\n\\r\\n" not in buf:
            d = s.recv(4096)
            if not d: raise SystemExit("proxy closed: " + repr(buf))
            buf += d
        head, buf = buf.split(b"\\r\\n\\r\\n", 1)
        if not head.startswith(b"HTTP/1.1 200"): raise SystemExit("proxy said: " + repr(head))
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    n = len(buf)
    while True:
        d = s.recv(1 << 16)
        if not d:
            print("eof", n)
            break
        n += len(d)
except ConnectionResetError:
    print("reset", n)
except OSError as e:
    print(type(e).__name__, n)
`;

export function parseEnding(out: string): Ending {
  const [end, bytes] = out.trim().split(" ");
  return { end: end ?? out, bytes: Number(bytes) };
}
