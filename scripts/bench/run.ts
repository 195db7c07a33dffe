// `silo run python -c pass` against raw bwrap running the same rootfs in an equivalent minimal sandbox,
// and against the host's python3, in one run: medians, ratios, and silo's peak memory.
// Goals (issue 4): silo ≤ 2× raw bwrap, peak RSS of the silo process ≤ 40 MiB.
// Needs the fixture registry (scripts/fixtures/build.sh) and `bun run build`.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fmt, median, spawnOk, timeInterleaved } from "./_util.ts";

const MiB = 1024 * 1024;

export default async function run() {
  const root = resolve(import.meta.dir, "../..");
  const silo = join(root, "dist/silo");
  const work = mkdtempSync(join(tmpdir(), "silo-bench-run-"));
  const home = join(work, "home");
  const proj = join(work, "proj");
  for (const d of [home, proj]) mkdirSync(d);
  // A user with a git identity: every run passes it in (app/git-identity.ts), from its cache when warm.
  writeFileSync(join(work, ".gitconfig"), "[user]\n\tname = Bench User\n\temail = bench@example.com\n");
  writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${process.env.SILO_TEST_REGISTRY ?? "http://127.0.0.1:5000"}"\n`);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, SILO_HOME: home };
  try {
    spawnOk([silo, "install", "python@3.11-slim"], { env });
    const baseline = process.env.BENCH_BASELINE;
    const rootfs = layersOf(silo, proj, env);
    const bwrap = Bun.which("bwrap")!;
    const hostPython = Bun.which("python3", { PATH: "/usr/local/bin:/usr/bin:/bin" })!;
    // What silo's sandbox amounts to, done by hand: every namespace, the image read-only as /, /proc, /dev,
    // /tmp, the project bound in (at /mnt: a read-only / has no /workspace to mount on), a clean environment.
    const raw = [
      bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", rootfs, "/", "--proc", "/proc",
      "--dev", "/dev", "--tmpfs", "/tmp", "--bind", proj, "/mnt", "--chdir", "/mnt", "--clearenv",
      "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/root", "--", "python3", "-c", "pass",
    ];
    // BENCH_CA=path/to/ca.pem: the same run with `[network] caCertificates` in a second home (its rootfs
    // hard-linked from the first), so the generated CA bundle's cost shows beside the plain run.
    const ca = process.env.BENCH_CA;
    const caEnv = { ...env, SILO_HOME: join(work, "home-ca") };
    if (ca) {
      mkdirSync(caEnv.SILO_HOME);
      for (const d of ["images", "rootfs"]) spawnOk(["cp", "-al", join(home, d), join(caEnv.SILO_HOME, d)], { env });
      writeFileSync(join(caEnv.SILO_HOME, "silo.toml"), `${readFileSync(join(home, "silo.toml"), "utf8")}[network]\ncaCertificates = [${JSON.stringify(resolve(ca))}]\n`);
      spawnOk([silo, "install", "python@3.11-slim"], { env: caEnv });
    }
    const runs = Number(process.env.BENCH_RUNS ?? 30);
    const t = timeInterleaved(
      {
        "host python3 -c pass": () => spawnOk([hostPython, "-c", "pass"], { env }),
        "raw bwrap python3 -c pass": () => spawnOk(raw, { env }),
        // The floor under every silo command (Bun start-up, no sandbox): how much of silo's time is not the sandbox.
        "silo --version": () => spawnOk([silo, "--version"], { env }),
        // python's registry entry allows pypi.org: this includes the egress proxy and the sandbox's relays.
        "silo run python -c pass": () => spawnOk([silo, "run", "python", "-c", "pass"], { env, cwd: proj }),
        ...(ca ? { "silo run, caCertificates": () => spawnOk([silo, "run", "python", "-c", "pass"], { env: caEnv, cwd: proj }) } : {}),
        // BENCH_BASELINE=path/to/an/older/silo: the same run with another build, in the same interleaving.
        ...(baseline ? { "baseline silo run": () => spawnOk([baseline, "run", "python", "-c", "pass"], { env, cwd: proj }) } : {}),
      },
      runs,
    );
    const m = Object.fromEntries(Object.entries(t).map(([k, xs]) => [k, median(xs)]));
    const host = m["host python3 -c pass"]!;
    const bw = m["raw bwrap python3 -c pass"]!;
    console.log(`runs: ${runs} each, interleaved; medians (rootfs ${rootfs})`);
    for (const [k, v] of Object.entries(m))
      console.log(`${k.padEnd(28)} ${fmt(v).padStart(10)}   ×${(v / bw).toFixed(2)} raw bwrap   ×${(v / host).toFixed(2)} host`);
    if (ca) console.log(`caCertificates / without: ×${(m["silo run, caCertificates"]! / m["silo run python -c pass"]!).toFixed(3)}`);
    if (baseline) console.log(`silo / baseline build (${baseline}): ×${(m["silo run python -c pass"]! / m["baseline silo run"]!).toFixed(3)}`);
    const ratio = m["silo run python -c pass"]! / bw;
    console.log(`silo / raw bwrap: ×${ratio.toFixed(2)} (goal ≤ ×2: ${ratio <= 2 ? "met" : "missed"})`);

    // Where silo's own time goes (SILO_TRACE=1 marks, ms since the process started), medians of 15 runs. A run
    // handed over to the stage's waiter prints its marks at the handover; the command runs on from there.
    const traces: Record<string, number[]> = {};
    for (let i = 0; i < 15; i++) {
      const r = Bun.spawnSync([silo, "run", "python", "-c", "pass"], { cwd: proj, env: { ...env, SILO_TRACE: "1" }, stdout: "ignore", stderr: "pipe" });
      const line = /trace: (.*)/.exec(r.stderr.toString())?.[1] ?? "";
      for (const part of line.split(", ")) {
        const m = /^(.*) ([\d.]+)$/.exec(part);
        if (m) (traces[m[1]!] ??= []).push(Number(m[2]));
      }
    }
    console.log(`silo's marks (median ms since start): ${Object.entries(traces).map(([k, xs]) => `${k} ${median(xs).toFixed(1)}`).join(", ")}`);

    const rss = await peakRss([silo, "run", "python", "-c", "pass"], proj, env, 10);
    const show = (r: { polled: number; rusage: number; anon: number; file: number }) =>
      `${(r.polled / MiB).toFixed(1)} MiB (VmHWM of the silo process, polled every ms over its life, its handover to the waiter included; of the resident pages at most ${(r.anon / MiB).toFixed(1)} MiB ` +
      `anonymous and ${(r.file / MiB).toFixed(1)} MiB file-backed, i.e. the executable's own pages, shared with the page cache; ` +
      `wait4 maxrss incl. waited children ${(r.rusage / MiB).toFixed(1)} MiB)`;
    console.log(`peak RSS, silo run python -c pass: ${show(rss)}; goal ≤ 40 MiB: ${rss.polled <= 40 * MiB ? "met" : "missed"}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The rootfs silo mounts for python (its debug log names the layers). */
function layersOf(silo: string, cwd: string, env: Record<string, string>): string {
  const r = Bun.spawnSync([silo, "--debug", "run", "python", "-c", "pass"], { cwd, env, stderr: "pipe", stdout: "ignore" });
  const m = /bwrap: layers (\S+)/.exec(r.stderr.toString());
  if (!m) throw new Error(`could not find the rootfs in silo's debug output:\n${r.stderr}`);
  return m[1]!;
}

/** Highest VmHWM of the silo process (polled; with its anonymous and file-backed parts), and wait4's maxrss; over `n` runs. */
async function peakRss(argv: string[], cwd: string, env: Record<string, string>, n: number) {
  let polled = 0;
  let rusage = 0;
  let anon = 0;
  let file = 0;
  for (let i = 0; i < n; i++) {
    const p = Bun.spawn(argv, { cwd, env, stdout: "ignore", stderr: "ignore" });
    const sample = () => {
      try {
        const status = readFileSync(`/proc/${p.pid}/status`, "utf8");
        const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
        polled = Math.max(polled, kb("VmHWM"));
        anon = Math.max(anon, kb("RssAnon"));
        file = Math.max(file, kb("RssFile"));
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 1);
    await p.exited;
    clearInterval(timer);
    rusage = Math.max(rusage, p.resourceUsage()?.maxRSS ?? 0);
  }
  return { polled, rusage, anon, file };
}
