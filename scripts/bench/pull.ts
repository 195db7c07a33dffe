// bun run bench pull: install the python fixture image into an empty SILO_HOME with silo's pullImage, and
// do the same job with the standard tools (skopeo copy docker://… oci:… + umoci unpack --rootless) from the
// same registry, interleaved, several times each. Prints medians, the ratio silo/standard (goal ≤ 1.0),
// where silo's time goes, and fzstd against Bun's native zstd on a real zstd layer.
// Needs the fixture registry (bash scripts/fixtures/build.sh).
import { mkdtempSync, readFileSync, createReadStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { removeTree } from "../../src/core/fs.ts";
import { median } from "./_util.ts";

const REGISTRY = process.env.SILO_TEST_REGISTRY || "http://127.0.0.1:5000";
const HOST = REGISTRY.replace(/^https?:\/\//, "");
const REF = "python:3.11-slim";
const RUNS = Number(process.env.BENCH_PULL_RUNS || 5);
const child = join(import.meta.dir, "_pull-once.ts");

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function run(argv: string[]): number {
  const t = performance.now();
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}`);
  return performance.now() - t;
}

interface SiloRun {
  ms: number;
  timings: { resolve: number; download: number; unpack: number; total: number };
  sizes: { download: number; unpacked: number };
  digest: string;
  home: string;
}

function siloOnce(): SiloRun {
  const home = mkdtempSync(join(tmpdir(), "silo-bench-home-"));
  const t = performance.now();
  const p = Bun.spawnSync(["bun", child, home, REF, REGISTRY], { stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - t;
  if (p.exitCode !== 0) throw new Error(`silo pull failed: ${p.stderr.toString()}`);
  return { ms, home, ...(JSON.parse(p.stdout.toString()) as Omit<SiloRun, "ms" | "home">) };
}

function standardOnce() {
  const dir = mkdtempSync(join(tmpdir(), "silo-bench-std-"));
  const copy = run(["skopeo", "copy", "-q", "--src-tls-verify=false", `docker://${HOST}/library/${REF}`, `oci:${dir}/oci:x`]);
  const unpack = run(["umoci", "unpack", "--rootless", "--image", `${dir}/oci:x`, `${dir}/bundle`]);
  removeTree(dir);
  return { copy, unpack, total: copy + unpack };
}

async function timeIt(f: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

/** Where silo's time goes: each stage alone, on the layers of one pulled image (warm page cache). */
async function stages(home: string, digest: string) {
  const marker = JSON.parse(readFileSync(join(home, "rootfs", `${digest.slice(7)}.json`), "utf8")) as { layers: string[] };
  const paths = marker.layers.map((l) => join(home, "images/blobs/sha256", l.slice(7)));
  const { decompressor, sniffCompression } = await import("../../src/image/layers.ts");
  const { TarReader } = await import("../../src/core/tar.ts");
  const hash = await timeIt(async () => {
    for (const p of paths) {
      const h = new Bun.CryptoHasher("sha256");
      for await (const c of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
      h.digest();
    }
  });
  const sink = (f?: (c: Buffer) => void) => new Writable({ write: (c: Buffer, _e, cb) => (f?.(c), cb()) });
  const gunzipSync = await timeIt(() => {
    for (const p of paths) Bun.gunzipSync(readFileSync(p));
  });
  const decompress = await timeIt(async () => {
    for (const p of paths) await pipeline(createReadStream(p, { highWaterMark: 1 << 20 }), (await decompressor(sniffCompression(p)))!, sink());
  });
  const parse = await timeIt(async () => {
    for (const p of paths) {
      const r = new TarReader(() => ({ write() {}, end() {} }));
      await pipeline(createReadStream(p, { highWaterMark: 1 << 20 }), (await decompressor(sniffCompression(p)))!, sink((c) => r.push(c)));
    }
  });
  return { hash, decompress, gunzipSync, parse: Math.max(0, parse - decompress) };
}

/** fzstd against Bun's native zstd (node:zlib streaming, and the whole-buffer Bun.zstdDecompressSync). */
async function zstdCompare(home: string, digest: string) {
  const marker = JSON.parse(readFileSync(join(home, "rootfs", `${digest.slice(7)}.json`), "utf8")) as { layers: string[] };
  const layer = readFileSync(join(home, "images/blobs/sha256", marker.layers[0]!.slice(7)));
  const zlib = await import("node:zlib");
  const fzstd = await import("fzstd");
  let out = 0;
  const cases: Record<string, () => Promise<number> | number> = {
    "native, streaming (node:zlib createZstdDecompress)": async () => {
      let n = 0;
      await pipeline(
        (async function* () {
          for (let i = 0; i < layer.length; i += 1 << 20) yield layer.subarray(i, i + (1 << 20));
        })(),
        zlib.createZstdDecompress({ chunkSize: 256 << 10 }),
        new Writable({ write: (c: Buffer, _e, cb) => ((n += c.length), cb()) }),
      );
      return n;
    },
    "native, whole buffer (Bun.zstdDecompressSync)": () => Bun.zstdDecompressSync(layer).length,
    "fzstd, streaming (Decompress)": () => {
      let n = 0;
      const d = new fzstd.Decompress((c) => (n += c.length));
      for (let i = 0; i < layer.length; i += 1 << 20) d.push(layer.subarray(i, i + (1 << 20)), i + (1 << 20) >= layer.length);
      return n;
    },
    "fzstd, whole buffer (decompress)": () => fzstd.decompress(layer).length,
  };
  const times: Record<string, number[]> = {};
  for (let i = 0; i < 3; i++)
    for (const [k, f] of Object.entries(cases)) {
      const t = performance.now();
      out = await f();
      (times[k] ??= []).push(performance.now() - t);
    }
  console.log(`\nzstd decode of a real layer (${mb(layer.length)} → ${mb(out)}), median of 3:`);
  for (const [k, ts] of Object.entries(times)) console.log(`  ${k.padEnd(52)} ${s(median(ts)).padStart(8)}  ${(out / 1e6 / (median(ts) / 1000)).toFixed(0).padStart(5)} MB/s`);
}

export default async function benchPull(): Promise<void> {
  const ok = await fetch(`${REGISTRY}/v2/`).then((r) => r.ok).catch(() => false);
  if (!ok) throw new Error(`no fixture registry at ${REGISTRY}: bash scripts/fixtures/build.sh`);
  for (const tool of ["skopeo", "umoci"]) if (!Bun.which(tool)) throw new Error(`${tool} is not installed`);

  // one warm-up each (page cache, registry), not counted
  removeTree(siloOnce().home);
  standardOnce();
  const silo: SiloRun[] = [];
  const std: ReturnType<typeof standardOnce>[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = siloOnce();
    silo.push(r);
    if (i < RUNS - 1) removeTree(r.home);
    std.push(standardOnce());
  }
  const last = silo.at(-1)!;
  const med = (f: (r: SiloRun) => number) => median(silo.map(f));
  const siloMs = med((r) => r.ms);
  const stdMs = median(std.map((r) => r.total));
  console.log(`install ${REF} (${mb(last.sizes.download)} compressed, ${mb(last.sizes.unpacked)} unpacked) into an empty store, median of ${RUNS}:`);
  console.log(`  silo pullImage (own process)          ${s(siloMs).padStart(8)}   resolve ${s(med((r) => r.timings.resolve))}, download ${s(med((r) => r.timings.download))}, unpack ${s(med((r) => r.timings.unpack))}`);
  console.log(`  skopeo copy + umoci unpack --rootless ${s(stdMs).padStart(8)}   skopeo ${s(median(std.map((r) => r.copy)))}, umoci ${s(median(std.map((r) => r.unpack)))}`);
  console.log(`  ratio silo/standard: ${(siloMs / stdMs).toFixed(2)} (goal ≤ 1.0)`);

  const st = await stages(last.home, last.digest);
  const unpack = med((r) => r.timings.unpack);
  console.log(`\nwhere silo's time goes (each stage alone on the same layers; unpack overlaps the download):`);
  console.log(`  download (HTTP + sha256 + write blob)  ${s(med((r) => r.timings.download))}`);
  console.log(`    of which sha256 alone                ${s(st.hash)}`);
  console.log(`  unpack                                 ${s(unpack)}`);
  console.log(`    decompress (gzip)                    ${s(st.decompress)}   (node:zlib streaming; Bun.gunzipSync whole layers: ${s(st.gunzipSync)})`);
  console.log(`    tar parsing                          ${s(st.parse)}`);
  console.log(`    file writes (the rest)               ${s(Math.max(0, unpack - st.decompress - st.parse))}`);
  console.log(`  other (start-up, resolve, config, rename, index) ${s(siloMs - med((r) => r.timings.download) - unpack)}`);
  removeTree(last.home);

  const zhome = mkdtempSync(join(tmpdir(), "silo-bench-home-"));
  const z = Bun.spawnSync(["bun", child, zhome, `${REF}-zstd`, REGISTRY], { stdout: "pipe", stderr: "pipe" });
  if (z.exitCode !== 0) throw new Error(`pull of the zstd variant failed: ${z.stderr.toString()}`);
  await zstdCompare(zhome, (JSON.parse(z.stdout.toString()) as { digest: string }).digest);
  removeTree(zhome);
}

if (import.meta.main) await benchPull();
