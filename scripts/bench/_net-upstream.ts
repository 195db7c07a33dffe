// Benchmark upstream (its own process): on the first bytes of each connection, stream BYTES bytes and close.
import type { Socket } from "bun";

const total = Number(process.argv[2] ?? 1 << 30);
const chunk = Buffer.alloc(1 << 20, 0x61);
type S = { sent: number; off: number; started: boolean };
function pump(s: Socket<S>) {
  while (s.data.sent < total) {
    const want = Math.min(chunk.length - s.data.off, total - s.data.sent);
    const n = s.write(chunk.subarray(s.data.off, s.data.off + want));
    if (n <= 0) return;
    s.data.sent += n;
    s.data.off = (s.data.off + n) % chunk.length;
    if (n < want) return;
  }
  s.end();
}
const server = Bun.listen<S>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(s) {
      s.data = { sent: 0, off: 0, started: false };
    },
    data(s) {
      if (s.data.started) return;
      s.data.started = true;
      pump(s);
    },
    drain: pump,
  },
});
console.log(server.port);
