// Network: (1) start-up cost of the network set-up — the host side (egress proxy, hostAccess bridge, port
// forward), the relays in a fresh network namespace, and a whole sandbox run (bwrap driver, fixture python
// image) with the proxy against the same run with no network — against no set-up; (2) throughput of a
// 1 GiB download through the CONNECT tunnel against the same download direct, all on loopback, each side in
// its own process. Medians of interleaved runs.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHostNetwork } from "../../src/net/host.ts";
import { startEgressProxy } from "../../src/net/proxy.ts";
import { fmt, median, spawnOk, timeInterleaved } from "./_util.ts";

const dir = import.meta.dir;
const bun = process.execPath;

export default async function net() {
  const work = mkdtempSync(join(tmpdir(), "silo-bench-net-"));
  try {
    await startup(work);
    await sandboxStartup(work);
    await throughput(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function startup(work: string) {
  const runs = Number(process.env.BENCH_RUNS ?? 30);
  // Host side, in-process (as silo run does it), against nothing at all.
  const runDir = join(work, "run");
  const hostCases: Record<string, () => Promise<void>> = {
    "host side: none (baseline)": async () => undefined,
    "host side: proxy": async () => {
      const h = await startHostNetwork({ allow: ["example.com"], deny: [], hostAccess: false, ports: [], tool: "bench" }, runDir);
      await h.close();
    },
    "host side: proxy+hostAccess+1 port": async () => {
      const h = await startHostNetwork({ allow: ["example.com"], deny: [], hostAccess: true, ports: [{ host: 0, guest: 80 }], tool: "bench" }, runDir);
      await h.close();
    },
  };
  const hostT: Record<string, number[]> = Object.fromEntries(Object.keys(hostCases).map((k) => [k, []]));
  for (let i = 0; i < runs + 3; i++)
    for (const [k, f] of Object.entries(hostCases)) {
      const t = performance.now();
      await f();
      if (i >= 3) hostT[k]!.push(performance.now() - t);
    }
  console.log(`start-up, ${runs} runs each, interleaved; medians`);
  for (const [k, xs] of Object.entries(hostT)) console.log(`${k.padEnd(40)} ${fmt(median(xs)).padStart(10)}`);

  // Inside a fresh user+network namespace, as the driver's stage: loopback up and exit, against loopback up
  // + all relays. Compiled, as in dist/silo (run from source, transpiling the imports dominates).
  const stage = join(work, "stage");
  const b = await Bun.build({ entrypoints: [join(dir, "_net-stage.ts")], compile: { outfile: stage }, minify: true, bytecode: true, format: "esm" });
  if (!b.success) throw new Error("could not compile the stage stand-in");
  const spec = JSON.stringify({ mode: "proxy", proxySocket: join(work, "p.sock"), proxyPort: 3128, hostAccess: true, hostSocket: join(work, "h.sock"), hostPorts: [5432, 6379], ports: [{ host: 1, guest: 8000 }], forwardSocket: join(work, "f.sock") });
  const ns = ["unshare", "--user", "--map-root-user", "--net", "--", stage];
  const t = timeInterleaved({ "namespace: lo only": () => spawnOk([...ns, "none"]), "namespace: lo + relays": () => spawnOk([...ns, spec]) }, runs);
  const base = median(t["namespace: lo only"]!);
  for (const [k, xs] of Object.entries(t)) {
    const m = median(xs);
    console.log(`${k.padEnd(40)} ${fmt(m).padStart(10)}   +${fmt(m - base).padStart(9)}`);
  }
}

/**
 * A whole `silo run python -c pass` through dist/silo, with the registry's allowlist (the egress proxy,
 * the relays in the sandbox's namespace) against a project with no network. Needs dist/silo and the
 * fixture registry; says so and skips otherwise.
 */
async function sandboxStartup(work: string) {
  const root = join(dir, "../..");
  const silo = join(root, "dist/silo");
  const registry = process.env.SILO_TEST_REGISTRY || "http://127.0.0.1:5000";
  const reachable = await fetch(`${registry}/v2/`).then(() => true, () => false);
  if (!existsSync(silo) || !reachable) {
    console.log(`sandbox run: skipped (needs dist/silo and the fixture registry at ${registry})`);
    return;
  }
  const home = join(work, "home");
  const proj = join(work, "proj");
  mkdirSync(home, { recursive: true });
  mkdirSync(proj, { recursive: true });
  writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${registry}"\n`);
  writeFileSync(join(proj, "silo.toml"), "");
  const env = { PATH: process.env.PATH!, HOME: work, SILO_HOME: home };
  spawnOk([silo, "install", "python"], { env });
  // The same run through the compiled binary, as users see it: python's registry allowlist (proxy and
  // relays), against a project that turns the network off (`deny = ["*"]`, the narrowing way).
  const none = join(work, "proj-none");
  mkdirSync(none, { recursive: true });
  writeFileSync(join(none, "silo.toml"), '[overrides.python.network.proxy]\ndeny = ["*"]\n');
  const runs = Number(process.env.BENCH_RUNS ?? 30);
  const t = timeInterleaved(
    {
      "sandbox run, no network": () => spawnOk([silo, "run", "python", "-c", "pass"], { env, cwd: none }),
      "sandbox run, allowlist (proxy + relays)": () => spawnOk([silo, "run", "python", "-c", "pass"], { env, cwd: proj }),
    },
    runs,
  );
  const base = median(t["sandbox run, no network"]!);
  for (const [k, xs] of Object.entries(t)) {
    const m = median(xs);
    console.log(`${k.padEnd(40)} ${fmt(m).padStart(10)}   +${fmt(m - base).padStart(9)}   (goal: ≤ +10 ms with the host side above)`);
  }
}

async function firstLine(p: { stdout: ReadableStream<Uint8Array> }): Promise<string> {
  const { value } = await p.stdout.getReader().read();
  return new TextDecoder().decode(value).trim();
}

async function throughput(work: string) {
  const bytes = Number(process.env.BENCH_NET_BYTES ?? 1 << 30);
  const runs = Number(process.env.BENCH_NET_RUNS ?? 5);
  const upstream = Bun.spawn([bun, join(dir, "_net-upstream.ts"), String(bytes)], { stdout: "pipe", stderr: "inherit" });
  const upPort = await firstLine(upstream);
  const proxy = await startEgressProxy({
    socketPath: join(work, "proxy.sock"),
    allow: ["bench.test"],
    deny: [],
    hostAccess: false,
    tool: "bench",
    lookup: async () => ["127.0.0.1"],
  });
  const relay = Bun.spawn([bun, join(dir, "_net-relay.ts"), proxy.socketPath], { stdout: "pipe", stderr: "inherit" });
  const relayPort = await firstLine(relay);
  // The native stage's relay (what a sandbox uses by default), alone: `bun run build` leaves it in dist/.native.
  const stage = join(dir, "../../dist/.native", `${process.platform}-${process.arch}`, "silo-stage");
  if (!existsSync(stage)) throw new Error(`${stage} is missing: run \`bun run build\` first`);
  const nativePort = String(freePort());
  const native = Bun.spawn([stage, "--relays-only", `127.0.0.1:${nativePort}>${proxy.socketPath}`], { stdout: "pipe", stderr: "inherit" });
  await firstLine(native);
  const cases: Record<string, string[]> = {
    direct: ["direct", upPort],
    "CONNECT via proxy socket": ["unix", proxy.socketPath, upPort],
    "CONNECT via relay process + proxy": ["tcp", relayPort, upPort],
    "CONNECT via native relay + proxy": ["tcp", nativePort, upPort],
  };
  const speeds: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  try {
    for (let i = 0; i < runs; i++)
      for (const [k, args] of Object.entries(cases)) {
        const c = Bun.spawn([bun, join(dir, "_net-client.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
        const out = JSON.parse(await new Response(c.stdout).text()) as { bytes: number; ms: number };
        if (out.bytes !== bytes) throw new Error(`${k}: got ${out.bytes} of ${bytes} bytes`);
        speeds[k]!.push(bytes / 2 ** 20 / (out.ms / 1000));
      }
  } finally {
    relay.kill();
    native.kill();
    upstream.kill();
    await proxy.close();
  }
  const base = median(speeds.direct!);
  console.log(`\nthroughput: ${(bytes / 2 ** 30).toFixed(2)} GiB per run, ${runs} runs each, interleaved; medians (goal ≥ 0.5× direct)`);
  for (const [k, xs] of Object.entries(speeds)) {
    const m = median(xs);
    console.log(`${k.padEnd(40)} ${m.toFixed(0).padStart(6)} MiB/s   ×${(m / base).toFixed(2)}`);
  }
}

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}
