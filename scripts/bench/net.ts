// Network: (1) start-up cost of the network set-up — the host side (egress proxy, hostAccess bridge, port
// forward), the relays in a fresh network namespace, and a whole sandbox run (bwrap driver, fixture python
// image) with the proxy against the same run with no network — against no set-up; (2) throughput of a
// 1 GiB download through the CONNECT tunnel against the same download direct, all on loopback, each side in
// its own process. Medians of interleaved runs.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { proxyEnv, startHostNetwork } from "../../src/net/host.ts";
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
 * A whole `silo run python -c pass` through the bwrap driver, with the registry's allowlist (proxy, relay
 * process in the sandbox's namespace) against the same RunSpec with network "none". Needs dist/silo (the
 * relay runs as `silo __stage`) and the fixture registry; says so and skips otherwise.
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
  const { prepareRun } = await import("../../src/app/run.ts");
  const { homePaths } = await import("../../src/core/paths.ts");
  const prepared = await prepareRun({ tool: "python", args: ["-c", "pass"], cwd: proj, tty: false }, homePaths(home));
  try {
    const withProxy = { ...prepared.spec, self: [silo] };
    if (withProxy.network.mode !== "proxy") throw new Error("the python registry entry has no allowlist any more");
    const noNet = { ...withProxy, network: { mode: "none" as const, hostAccess: false, ports: [] }, env: { ...withProxy.env } };
    for (const k of Object.keys(proxyEnv(withProxy.network))) delete noNet.env[k];
    const runs = Number(process.env.BENCH_RUNS ?? 30);
    const cases = { "sandbox run, no network": noNet, "sandbox run, allowlist (proxy + relays)": withProxy };
    const t: Record<string, number[]> = { "sandbox run, no network": [], "sandbox run, allowlist (proxy + relays)": [] };
    for (let i = 0; i < runs + 2; i++)
      for (const [k, spec] of Object.entries(cases)) {
        const t0 = performance.now();
        const r = await prepared.driver.run(spec);
        if (r.code !== 0) throw new Error(`${k}: exit ${r.code}`);
        if (i >= 2) t[k]!.push(performance.now() - t0);
      }
    const base = median(t["sandbox run, no network"]!);
    for (const [k, xs] of Object.entries(t)) {
      const m = median(xs);
      console.log(`${k.padEnd(40)} ${fmt(m).padStart(10)}   +${fmt(m - base).padStart(9)}   (goal: ≤ +10 ms with the host side above)`);
    }
  } finally {
    await prepared.cleanup();
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
  const cases: Record<string, string[]> = {
    direct: ["direct", upPort],
    "CONNECT via proxy socket": ["unix", proxy.socketPath, upPort],
    "CONNECT via relay + proxy": ["tcp", relayPort, upPort],
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
