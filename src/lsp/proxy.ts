/**
 * Stream wiring for `silo lsp`: editor stdin -> frames -> toGuest -> server stdin, and server stdout ->
 * frames -> toHost -> editor stdout. stderr is not ours: the driver passes the server's stderr through.
 *
 * Lifetime: the proxy ends when the server exits (returning its exit code), or when the editor closes
 * its end (stdin EOF, or its PID from `initialize` disappears); then the server's stdin is closed, it gets
 * `graceMs` to exit on its own (LSP servers exit on EOF or after `exit`), and is terminated after that.
 */
import { log } from "../core/log.ts";
import { encodeHeader, FrameReader } from "./framing.ts";
import { isAlive } from "../core/fs.ts";

/** The write side of a stream: a Bun FileSink, `Bun.stdout.writer()`, or a Node Writable. */
export interface WritableLike {
  write(chunk: Uint8Array): unknown;
  flush?(): unknown;
  end?(): unknown;
}

export interface LspServerProcess {
  stdin: WritableLike;
  stdout: ReadableStream<Uint8Array>;
  /** Resolves with the server's exit code (128+n for signal n). */
  exited: Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

export interface LspProxyOptions {
  /** The editor's side: what it writes to us, and where we write back. */
  client: { input: ReadableStream<Uint8Array>; output: WritableLike };
  server: LspServerProcess;
  /**
   * Body transforms (see rewrite.ts, guard.ts); identity functions give a plain framed pipe. `toHost` may
   * drop a message, answering the server (a refused request) or the editor (a refused response) instead.
   */
  rewrite: { toGuest(body: Uint8Array): Uint8Array; toHost(body: Uint8Array): Uint8Array | Dropped };
  /** The editor's PID once known (from `initialize`); when it dies the session ends. */
  clientPid?: () => number | null;
  /** Time the server gets to exit after the editor went away, before SIGTERM (and as long again before SIGKILL). */
  graceMs?: number;
}

/** A server message that does not reach the editor, and what is said instead. */
export interface Dropped {
  dropped: string;
  toServer?: Uint8Array;
  toClient?: Uint8Array;
}

const PID_POLL_MS = 2000;

export async function proxyLsp(opts: LspProxyOptions): Promise<number> {
  const { client, server, rewrite } = opts;
  const graceMs = opts.graceMs ?? 3000;
  const clientReader = client.input.getReader();
  const serverReader = server.stdout.getReader();
  const timers: ReturnType<typeof setTimeout>[] = [];
  let serverGone = false;

  let clientClosed = false;
  const closeClientSide = (why: string) => {
    if (clientClosed) return;
    clientClosed = true;
    log.debug(`lsp: ${why}; closing the server's stdin`);
    try {
      server.stdin.end?.();
    } catch {
      // the server is already gone
    }
    clientReader.cancel().catch(() => {});
    timers.push(
      setTimeout(() => {
        if (serverGone) return;
        log.debug(`lsp: server still running ${graceMs} ms after the editor left; terminating it`);
        server.kill("SIGTERM");
        timers.push(setTimeout(() => !serverGone && server.kill("SIGKILL"), graceMs));
      }, graceMs),
    );
  };

  const toServer = pump(clientReader, server.stdin, rewrite.toGuest).then(
    () => closeClientSide("the editor closed stdin"),
    (e) => {
      if (!serverGone) log.error(`lsp: editor -> server: ${(e as Error).message}`);
      closeClientSide("the editor stream failed");
    },
  );
  const toClient = pump(serverReader, client.output, rewrite.toHost, server.stdin).catch((e) => {
    // A server that prints non-LSP text to stdout breaks the editor's stream too; stop it rather than go on.
    log.error(`lsp: server -> editor: ${(e as Error).message}`);
    server.kill("SIGTERM");
  });

  const pidWatch = opts.clientPid
    ? setInterval(() => {
        const pid = opts.clientPid!();
        if (pid !== null && !isAlive(pid)) closeClientSide(`the editor (pid ${pid}) is gone`);
      }, PID_POLL_MS)
    : undefined;

  const code = await server.exited;
  serverGone = true;
  for (const t of timers) clearTimeout(t);
  if (pidWatch) clearInterval(pidWatch);
  // The server's last words (the `shutdown` response, final diagnostics) are still in the pipe: drain them,
  // but don't wait forever on a stdout that some orphaned grandchild holds open.
  await within(toClient, 2000);
  serverReader.cancel().catch(() => {});
  clientReader.cancel().catch(() => {});
  clientClosed = true;
  await within(toServer, 100);
  try {
    await client.output.flush?.();
  } catch {
    // the editor is gone; nothing left to tell it
  }
  return code;
}

/** Copy frames from `reader` to `out`, transforming each body; resolves at end of stream. */
async function pump(
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> },
  out: WritableLike,
  transform: (body: Uint8Array) => Uint8Array | Dropped,
  back?: WritableLike,
): Promise<void> {
  const frames = new FrameReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done || !value) break;
    const bodies = frames.push(value);
    if (bodies.length === 0) continue;
    for (const body of bodies) {
      const r = transform(body);
      if (!(r instanceof Uint8Array)) {
        log.debug(`lsp: not passed to the editor: ${r.dropped}`);
        if (r.toClient) writeFrame(out, r.toClient);
        // The other pump writes to the server too; one frame is written in one synchronous step, never interleaved.
        if (r.toServer && back) {
          try {
            writeFrame(back, r.toServer);
            await back.flush?.();
          } catch {
            // the server is gone: nobody to answer
          }
        }
        continue;
      }
      writeFrame(out, r);
    }
    // One flush per chunk: latency matters more than syscalls here, and awaiting it is our backpressure.
    await out.flush?.();
  }
  if (!frames.idle) log.debug("lsp: stream ended inside a message");
}

/** Header and body as two writes: the sink buffers them together, and a large body is not copied twice. */
function writeFrame(out: WritableLike, b: Uint8Array) {
  out.write(encodeHeader(b.length));
  out.write(b);
}

/** Wait for `p`, at most `ms` (and leave no timer behind that would keep the process alive). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

