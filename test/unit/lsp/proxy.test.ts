import { describe, expect, test } from "bun:test";
import { encodeFrame, FrameReader } from "../../../src/lsp/framing.ts";
import { proxyLsp, type LspServerProcess } from "../../../src/lsp/proxy.ts";
import { createRewriter } from "../../../src/lsp/rewrite.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An in-memory "server": records what it receives; `reply` writes frames to its stdout. */
function fakeServer(opts: { exitOnEof: boolean }) {
  let out!: ReadableStreamDefaultController<Uint8Array>;
  let resolveExit!: (code: number) => void;
  const received = new FrameReader();
  const messages: any[] = [];
  const killed: string[] = [];
  const exited = new Promise<number>((r) => (resolveExit = r));
  const exit = (code: number) => {
    try {
      out.close();
    } catch {}
    resolveExit(code);
  };
  const server: LspServerProcess = {
    stdin: {
      write: (chunk: Uint8Array) => {
        for (const b of received.push(chunk)) messages.push(JSON.parse(dec.decode(b)));
      },
      end: () => opts.exitOnEof && exit(0),
    },
    stdout: new ReadableStream({ start: (c) => void (out = c) }),
    exited,
    kill: (sig = "SIGTERM") => {
      killed.push(sig);
      exit(sig === "SIGKILL" ? 137 : 143);
    },
  };
  const reply = (msg: unknown) => out.enqueue(encodeFrame(JSON.stringify(msg)));
  return { server, messages, killed, reply, raw: (b: Uint8Array) => out.enqueue(b), exit };
}

function fakeClient() {
  let input!: ReadableStreamDefaultController<Uint8Array>;
  const frames = new FrameReader();
  const got: any[] = [];
  return {
    input: new ReadableStream<Uint8Array>({ start: (c) => void (input = c) }),
    output: { write: (c: Uint8Array) => void frames.push(c).forEach((b) => got.push(JSON.parse(dec.decode(b)))) },
    send: (msg: unknown) => input.enqueue(encodeFrame(JSON.stringify(msg))),
    close: () => input.close(),
    got,
  };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await Bun.sleep(5);
  expect(cond()).toBe(true);
};

describe("proxyLsp", () => {
  test("rewrites both ways and returns the server's exit code when it exits", async () => {
    const s = fakeServer({ exitOnEof: true });
    const c = fakeClient();
    const rw = createRewriter({ hostRoot: "/home/u/proj" });
    const done = proxyLsp({ client: c, server: s.server, rewrite: rw });
    c.send({ jsonrpc: "2.0", id: 0, method: "initialize", params: { processId: 99, rootUri: "file:///home/u/proj" } });
    await until(() => s.messages.length === 1);
    expect(s.messages[0].params).toEqual({ processId: null, rootUri: "file:///workspace" });
    s.reply({ jsonrpc: "2.0", id: 1, result: [{ uri: "file:///workspace/a.ts", range: {} }] });
    await until(() => c.got.length === 1);
    expect(c.got[0].result[0].uri).toBe("file:///home/u/proj/a.ts");
    s.reply({ jsonrpc: "2.0", method: "window/logMessage", params: { message: "bye" } });
    s.exit(3);
    expect(await done).toBe(3);
    expect(c.got.map((m) => m.method ?? m.id)).toEqual([1, "window/logMessage"]);
  });

  test("the editor closing stdin closes the server's stdin; its exit code comes back", async () => {
    const s = fakeServer({ exitOnEof: true });
    const c = fakeClient();
    const done = proxyLsp({ client: c, server: s.server, rewrite: createRewriter({ hostRoot: "/p" }) });
    c.send({ jsonrpc: "2.0", method: "exit" });
    c.close();
    expect(await done).toBe(0);
    expect(s.messages).toEqual([{ jsonrpc: "2.0", method: "exit" }]);
    expect(s.killed).toEqual([]);
  });

  test("a server that ignores EOF is terminated after the grace period", async () => {
    const s = fakeServer({ exitOnEof: false });
    const c = fakeClient();
    const done = proxyLsp({ client: c, server: s.server, rewrite: createRewriter({ hostRoot: "/p" }), graceMs: 20 });
    c.close();
    expect(await done).toBe(143);
    expect(s.killed).toEqual(["SIGTERM"]);
  });

  test("garbage on the server's stdout stops the server", async () => {
    const s = fakeServer({ exitOnEof: true });
    const c = fakeClient();
    const done = proxyLsp({ client: c, server: s.server, rewrite: createRewriter({ hostRoot: "/p" }) });
    s.reply({ jsonrpc: "2.0", id: 1, result: "ok" });
    await until(() => c.got.length === 1);
    s.raw(enc.encode("hello from console.log\r\n\r\n"));
    expect(await done).toBe(143);
    expect(s.killed).toEqual(["SIGTERM"]);
  });
});
