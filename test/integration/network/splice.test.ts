// Long transfers leave JavaScript for the splice worker: bytes must arrive intact, in both directions, on
// many tunnels at once, with half-close honoured and no descriptor left behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { connect, type Socket as NetSocket } from "node:net";
import { join } from "node:path";
import { startEgressProxy, type EgressProxy } from "../../../src/net/proxy.ts";
import { spliceStats } from "../../../src/net/splice.ts";
import { tmp } from "../../helpers/silo.ts";

const MiB = 1 << 20;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Upstream: reads until the client's FIN, then answers with the digest of what it got plus `reply` bytes. */
function startUpstream(reply: Buffer) {
  return Bun.listen<{ h: ReturnType<typeof createHash>; n: number }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { h: createHash("sha256"), n: 0 };
      },
      data(s, d) {
        s.data.h.update(d);
        s.data.n += d.length;
      },
      async end(s) {
        const head = Buffer.from(`${s.data.h.digest("hex")} ${s.data.n}\n`);
        const all = Buffer.concat([head, reply]);
        let off = 0;
        const pump = () => {
          while (off < all.length) {
            const n = s.write(all.subarray(off, off + 4 * MiB));
            off += n;
            if (n === 0) return;
          }
          s.end();
        };
        s.data = Object.assign(s.data, { pump });
        pump();
      },
      drain(s) {
        (s.data as unknown as { pump?: () => void }).pump?.();
      },
    },
  });
}

/** CONNECT through the proxy, send `body`, half-close, collect the whole answer. */
function tunnel(socketPath: string, port: number, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s: NetSocket = connect(socketPath);
    const chunks: Buffer[] = [];
    let head = true;
    s.on("connect", () => s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    s.on("data", (d: Buffer) => {
      if (!head) return void chunks.push(d);
      const i = d.indexOf("\r\n\r\n");
      if (!d.subarray(0, 12).toString().startsWith("HTTP/1.1 200")) return reject(new Error(d.toString()));
      head = false;
      if (i + 4 < d.length) chunks.push(d.subarray(i + 4));
      s.end(body); // write the body and half-close: the upstream answers only after our FIN
    });
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(chunks)));
  });
}

const openFds = () => readdirSync("/proc/self/fd").length;

describe("splice offload through the proxy", () => {
  const dir = tmp("silo-splice-");
  const reply = randomBytes(24 * MiB);
  const upstream = startUpstream(reply);
  let proxy: EgressProxy;

  beforeAll(async () => {
    proxy = await startEgressProxy({ socketPath: join(dir, "p.sock"), allow: ["127.0.0.1"], deny: [], hostAccess: false, tool: "t" });
  });
  afterAll(async () => {
    await proxy.close();
    upstream.stop(true);
  });

  test("8 tunnels at once, 24 MiB each way, arrive intact; no late reads, no leaked descriptors", async () => {
    // Warm up (starts the worker), then measure descriptors around the real run.
    await tunnel(proxy.socketPath, upstream.port, randomBytes(2 * MiB));
    const before = openFds();
    const offloadedBefore = spliceStats.offloaded;
    const lateBefore = spliceStats.lateData; // other files' tests run in this process too
    const bodies = Array.from({ length: 8 }, () => randomBytes(24 * MiB));
    const answers = await Promise.all(bodies.map((b) => tunnel(proxy.socketPath, upstream.port, b)));
    for (const [i, a] of answers.entries()) {
      const nl = a.indexOf(10);
      expect(a.subarray(0, nl).toString()).toBe(`${sha(bodies[i]!)} ${bodies[i]!.length}`);
      expect(a.length - nl - 1).toBe(reply.length);
      expect(sha(a.subarray(nl + 1))).toBe(sha(reply));
    }
    expect(spliceStats.offloaded - offloadedBefore).toBeGreaterThanOrEqual(8);
    expect(spliceStats.lateData - lateBefore).toBe(0);
    // The worker reports each finished pair; once all are in, the descriptor count is back.
    while (spliceStats.finished < spliceStats.offloaded) await Bun.sleep(10);
    await Bun.sleep(20);
    expect(openFds()).toBeLessThanOrEqual(before);
  });

  test("a client that disconnects mid-download ends the tunnel on both sides", async () => {
    const finishedBefore = spliceStats.finished;
    const offloadedBefore = spliceStats.offloaded;
    const lateBefore = spliceStats.lateData;
    await new Promise<void>((resolve) => {
      const s = connect(proxy.socketPath);
      let got = 0;
      s.on("connect", () => s.write(`CONNECT 127.0.0.1:${upstream.port} HTTP/1.1\r\n\r\n`));
      s.once("data", () => s.end(randomBytes(4 * MiB)));
      s.on("data", (d) => {
        got += d.length;
        if (got > 8 * MiB) s.destroy(); // stop reading with most of the reply still in flight
      });
      s.on("close", () => resolve());
    });
    expect(spliceStats.offloaded).toBeGreaterThan(offloadedBefore);
    while (spliceStats.finished <= finishedBefore) await Bun.sleep(10);
    expect(spliceStats.lateData - lateBefore).toBe(0);
  });
});
