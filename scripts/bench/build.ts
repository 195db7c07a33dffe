/**
 * Build layers and rootfs compression (issue 6).
 *
 * 1. `silo run python -c pass` from a project with a global + project build layer (a few thousand files)
 *    against the same command from a project without layers, interleaved. Goal: no measurable difference
 *    (a layer is one more overlay lowerdir, whatever its size).
 * 2. zstd on a rootfs entry (the python fixture, as a tar stream): silo's choice (Bun's native zstd, 16 MiB
 *    frames compressed in parallel; streaming node:zlib decompression) against the `zstd` CLI on the same
 *    bytes, and fzstd (pure JS) for decompression. Throughput in MB/s of uncompressed data.
 * 3. End to end: `silo cache compress` of the entry and its restore against `tar | zstd` and `zstd -d | tar -x`.
 *
 * Needs dist/silo and the fixture registry (scripts/fixtures/build.sh).
 */
import { closeSync, createReadStream, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fmt, median, spawnOk, timeInterleaved } from "./_util.ts";

const repo = resolve(import.meta.dir, "../..");
const silo = process.env.SILO_BIN || join(repo, "dist/silo");
const registry = process.env.SILO_TEST_REGISTRY || "http://127.0.0.1:5000";

export default async function bench(): Promise<void> {
  const root = join(tmpdir(), `silo-bench-build-${process.pid}`);
  const home = join(root, "home");
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${registry}"\n`);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home, SILO_NO_AUTO_GC: "1" };
  try {
    spawnOk([silo, "install", "python"], { env });
    await layersVsPlain(root, env);
    const rootfs = join(home, "rootfs", readdirSync(join(home, "rootfs")).find((n) => /^[0-9a-f]{64}$/.test(n))!);
    await zstdThroughput(root, rootfs);
    endToEnd(root, rootfs);
  } finally {
    Bun.spawnSync(["chmod", "-R", "u+rwX", root]);
    rmSync(root, { recursive: true, force: true });
  }
}

async function layersVsPlain(root: string, env: Record<string, string>) {
  const plain = join(root, "plain");
  const layered = join(root, "layered");
  for (const d of [plain, layered]) {
    mkdirSync(d);
    writeFileSync(join(d, "silo.toml"), "");
  }
  // A global layer and a project layer of ~3000 files (as a pip install of a few packages would leave).
  spawnOk([silo, "build", "--global", "python", "sh", "-c", "mkdir -p /opt/g && for i in $(seq 1000); do echo $i > /opt/g/f$i; done"], { cwd: layered, env });
  spawnOk([silo, "build", "python", "sh", "-c", "for d in a b; do mkdir -p /usr/local/lib/bench/$d; for i in $(seq 1000); do echo $i > /usr/local/lib/bench/$d/f$i; done; done"], { cwd: layered, env });
  const run = (cwd: string) => () => spawnOk([silo, "run", "python", "-c", "pass"], { cwd, env });
  // Layers are per project; the global layer is present for both, so compare against a project without
  // its own layer AND a home without a global layer: remove the global one for "plain" by a second home.
  const plainHome = join(root, "home-plain");
  Bun.spawnSync(["cp", "-a", env.SILO_HOME!, plainHome]);
  rmSync(join(plainHome, "builds"), { recursive: true, force: true });
  const plainEnv = { ...env, SILO_HOME: plainHome };
  const runs = 15;
  const t = timeInterleaved({ plain: () => spawnOk([silo, "run", "python", "-c", "pass"], { cwd: plain, env: plainEnv }), layered: run(layered) }, runs, 3);
  const p = median(t.plain!);
  const l = median(t.layered!);
  console.log(`silo run python -c pass (median of ${runs}, interleaved)`);
  console.log(`  plain image                     ${fmt(p)}`);
  console.log(`  image + global + project layer  ${fmt(l)}   ratio ${(l / p).toFixed(3)} (goal: ~1.00)`);
}

async function zstdThroughput(root: string, rootfs: string) {
  const { packTree } = await import("../../src/core/tar.ts");
  const { zstdFrames } = await import("../../src/cache/compress.ts");
  const tar = join(root, "entry.tar");
  const fd = openSync(tar, "w");
  let size = 0;
  for (const b of packTree(rootfs)) size += writeSync(fd, b);
  closeSync(fd);
  const data = await Bun.file(tar).bytes();
  const MB = size / 1e6;
  const runs = 3;
  const mbps = (ms: number[]) => `${(MB / (median(ms) / 1000)).toFixed(0)} MB/s (${fmt(median(ms))})`;
  const chunks = function* () {
    for (let i = 0; i < data.length; i += 1 << 20) yield Buffer.from(data.buffer, data.byteOffset + i, Math.min(1 << 20, data.length - i));
  };
  const ours = join(root, "ours.tar.zst");
  const time = async (f: () => unknown | Promise<unknown>) => {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await f();
      xs.push(performance.now() - t);
    }
    return xs;
  };
  console.log(`\nzstd level 3 on a rootfs entry as tar (${MB.toFixed(0)} MB), median of ${runs}`);
  const cOurs = await time(async () => {
    const out = openSync(ours, "w");
    await zstdFrames(chunks(), (b) => void writeSync(out, b));
    closeSync(out);
  });
  const cCli1 = await time(() => spawnOk(["zstd", "-3", "-q", "-f", tar, "-o", join(root, "cli.tar.zst")]));
  const cCliT = await time(() => spawnOk(["zstd", "-3", "-T0", "-q", "-f", tar, "-o", join(root, "cli.tar.zst")]));
  const ratio = (p: string) => (Bun.file(p).size / size).toFixed(3);
  console.log(`  compress   bun native, parallel frames  ${mbps(cOurs)}  ratio ${ratio(ours)}`);
  console.log(`  compress   zstd CLI (1 thread)          ${mbps(cCli1)}`);
  console.log(`  compress   zstd CLI -T0                 ${mbps(cCliT)}  ratio ${ratio(join(root, "cli.tar.zst"))}`);
  console.log(`             → bun/CLI(1 thread) ${(median(cCli1) / median(cOurs)).toFixed(2)}×, bun/CLI(-T0) ${(median(cCliT) / median(cOurs)).toFixed(2)}×`);
  const zlib = await import("node:zlib");
  const dStream = await time(async () => {
    let n = 0;
    for await (const c of createReadStream(ours, { highWaterMark: 1 << 20 }).pipe(zlib.createZstdDecompress({ chunkSize: 1 << 20 }))) n += (c as Buffer).length;
    if (n !== size) throw new Error(`decompressed ${n} of ${size} bytes`);
  });
  const comp = await Bun.file(ours).bytes();
  const { decompress } = await import("fzstd");
  const dFzstd = await time(() => decompress(comp));
  const dCli = await time(() => spawnOk(["sh", "-c", `zstd -dc '${ours}' > /dev/null`]));
  console.log(`  decompress bun native (node:zlib stream)  ${mbps(dStream)}`);
  console.log(`  decompress fzstd (pure JS)                ${mbps(dFzstd)}`);
  console.log(`  decompress zstd CLI                       ${mbps(dCli)}`);
  console.log(`             → bun/CLI ${(median(dCli) / median(dStream)).toFixed(2)}×, bun/fzstd ${(median(dFzstd) / median(dStream)).toFixed(2)}×`);
}

function endToEnd(root: string, rootfs: string) {
  const runs = 3;
  const ours: number[] = [];
  const oursBack: number[] = [];
  const cli: number[] = [];
  const cliBack: number[] = [];
  const script = (s: string) => {
    const t = performance.now();
    spawnOk([process.execPath, "-e", s]);
    return performance.now() - t;
  };
  const mod = join(repo, "src/cache/compress.ts");
  for (let i = 0; i < runs; i++) {
    const a = join(root, `e2e-${i}.tar.zst`);
    const back = join(root, `e2e-back-${i}`);
    ours.push(script(`const m = await import(${JSON.stringify(mod)}); await m.compressDir(${JSON.stringify(rootfs)}, ${JSON.stringify(a)});`));
    oursBack.push(script(`const m = await import(${JSON.stringify(mod)}); await m.extractArchive(${JSON.stringify(a)}, ${JSON.stringify(back)});`));
    const c = join(root, `e2e-cli-${i}.tar.zst`);
    const cback = join(root, `e2e-cli-back-${i}`);
    let t = performance.now();
    spawnOk(["sh", "-c", `tar -C '${rootfs}' -cf - . | zstd -3 -q -T0 -o '${c}'`]);
    cli.push(performance.now() - t);
    mkdirSync(cback);
    t = performance.now();
    spawnOk(["sh", "-c", `zstd -dc '${c}' | tar -C '${cback}' -xf -`]);
    cliBack.push(performance.now() - t);
    for (const p of [a, back, c, cback]) rmSync(p, { recursive: true, force: true });
  }
  console.log(`\nend to end on the rootfs directory (median of ${runs}; includes bun start-up ~20 ms)`);
  console.log(`  pack    silo compressDir ${fmt(median(ours))}   tar | zstd -T0 ${fmt(median(cli))}   ratio ${(median(ours) / median(cli)).toFixed(2)}`);
  console.log(`  restore silo extract     ${fmt(median(oursBack))}   zstd -d | tar -x ${fmt(median(cliBack))}   ratio ${(median(oursBack) / median(cliBack)).toFixed(2)}`);
}
