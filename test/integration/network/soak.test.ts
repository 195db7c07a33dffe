// Soak: many large transfers through every path a sandbox's connection can take to the egress proxy (the
// proxy socket itself, the native stage's relay, the relay process), both directions at once, each checked
// by length and sha256: none short, none corrupted (THREATS.md invariant 7: what the proxy lets through
// arrives whole). The hand-over of a tunnel from JavaScript to the splice worker happens after the first
// MiB, so every transfer here crosses it while bytes flow both ways.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startEgressProxy, type EgressProxy } from "../../../src/net/proxy.ts";
import { startSandboxRelays, type SandboxRelays } from "../../../src/net/relay.ts";
import { spliceStats } from "../../../src/net/splice.ts";
import { tmp } from "../../helpers/silo.ts";
import { startUpstream, transfer, type Served, type Via } from "./_soak.ts";

const MiB = 1 << 20;
const TRANSFERS = Number(process.env.SOAK_TRANSFERS ?? 16);
const SIZE = Number(process.env.SOAK_MIB ?? 32) * MiB;
const BATCH = 4;
const stage = join(import.meta.dir, "../../../dist/.native", `${process.platform}-${process.arch}`, "silo-stage");

describe("tunnel soak", () => {
  const dir = tmp("silo-soak-");
  const served = new Map<number, Served>();
  const upstream = startUpstream(served);
  let proxy: EgressProxy;
  let relays: SandboxRelays;
  let native: ReturnType<typeof Bun.spawn>;
  let nativePort = 0;
  let seed = 1;

  beforeAll(async () => {
    if (!existsSync(stage)) throw new Error(`${stage} is missing: run \`bun run build\` first`);
    proxy = await startEgressProxy({ socketPath: join(dir, "p.sock"), allow: ["127.0.0.1"], deny: [], hostAccess: false, tool: "t" });
    relays = await startSandboxRelays({ mode: "proxy", proxySocket: proxy.socketPath, proxyPort: 0, hostAccess: false, ports: [] });
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    nativePort = probe.port;
    probe.stop(true);
    native = Bun.spawn([stage, "--relays-only", `127.0.0.1:${nativePort}>${proxy.socketPath}`], { stdout: "pipe", stderr: "inherit" });
    await (native.stdout as ReadableStream<Uint8Array>).getReader().read(); // its first line: listening
  });
  afterAll(async () => {
    native?.kill();
    relays?.close();
    await proxy?.close();
    upstream.stop(true);
  });

  async function soak(via: Via) {
    const offloadedBefore = spliceStats.offloaded;
    // Counted around these transfers only: the cut tests may see a read race the cut (they end in a reset anyway).
    const lateBefore = spliceStats.lateData;
    const results: { seed: number; down: number; up: number; side: Awaited<ReturnType<typeof transfer>> }[] = [];
    for (let i = 0; i < TRANSFERS; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, TRANSFERS - i) }, (_, k) => {
        const s = seed++;
        // Sizes differ a little per transfer, so that no two end on the same boundary.
        const down = SIZE + s * 4099;
        const up = SIZE - s * 4093;
        return transfer(via, upstream.port, s, down, up).then((side) => results.push({ seed: s, down, up, side }));
      });
      await Promise.all(batch);
    }
    for (const r of results) {
      const u = served.get(r.seed);
      expect(u).toBeDefined();
      await u!.closed;
      const got = { error: r.side.error, gotEnd: r.side.gotEnd, down: r.side.got, up: u!.up.got };
      expect(got).toEqual({ error: null, gotEnd: true, down: r.down, up: r.up });
      expect(r.side.gotHash.digest("hex")).toBe(u!.up.sentHash.digest("hex"));
      expect(u!.up.gotHash.digest("hex")).toBe(r.side.sentHash.digest("hex"));
    }
    expect(spliceStats.offloaded - offloadedBefore).toBeGreaterThanOrEqual(TRANSFERS);
    expect(spliceStats.lateData - lateBefore).toBe(0);
  }

  test(`${TRANSFERS} transfers through the proxy socket, ${SIZE / MiB} MiB each way at once, arrive whole`, async () => {
    await soak({ unix: proxy.socketPath });
  });

  test(`${TRANSFERS} transfers through the native relay and the proxy arrive whole`, async () => {
    await soak({ port: nativePort });
  });

  test(`${TRANSFERS} transfers through the relay process and the proxy arrive whole`, async () => {
    await soak({ port: relays.proxyPort! });
  });
});
