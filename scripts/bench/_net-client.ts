// Benchmark client (its own process). argv: direct <port> | unix <socket> <port> | tcp <relayPort> <port>.
// Opens the tunnel (CONNECT bench.test:<port>) unless direct, sends a ClientHello naming bench.test (the
// upstream starts streaming on any bytes), counts bytes until close, prints {bytes, ms}.
import { connect } from "node:net";
import { buildClientHello } from "../../test/unit/net/_hello.ts";

const [mode, a, b] = process.argv.slice(2) as [string, string, string?];
const hello = buildClientHello({ serverName: "bench.test" });
const t0 = performance.now();
const s = mode === "direct" ? connect(Number(a), "127.0.0.1") : mode === "unix" ? connect(a) : connect(Number(a), "127.0.0.1");
let bytes = 0;
let head = mode !== "direct";
let pending = "";
s.on("connect", () => {
  if (mode === "direct") s.write(hello);
  else s.write(`CONNECT bench.test:${b} HTTP/1.1\r\nHost: bench.test:${b}\r\n\r\n`);
});
s.on("data", (d) => {
  if (!head) return void (bytes += d.length);
  pending += d.toString("latin1");
  const i = pending.indexOf("\r\n\r\n");
  if (i < 0) return;
  if (!pending.startsWith("HTTP/1.1 200")) throw new Error(`proxy said: ${pending}`);
  head = false;
  bytes += Buffer.byteLength(pending.slice(i + 4), "latin1");
  s.write(hello);
});
s.on("close", () => console.log(JSON.stringify({ bytes, ms: performance.now() - t0 })));
