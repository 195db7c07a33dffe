// Start-up: `silo --version` and config resolution of a project with a silo.toml (the path every shim
// takes into `silo run`), against a compiled hello-world Bun binary, in the same run.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fmt, median, spawnOk, timeInterleaved } from "./_util.ts";

export default async function startup() {
  const root = resolve(import.meta.dir, "../..");
  const silo = join(root, "dist/silo");
  const work = mkdtempSync(join(tmpdir(), "silo-bench-startup-"));
  writeFileSync(join(work, "hello.ts"), 'console.log("hello");\n');
  const hello = join(work, "hello");
  const b = await Bun.build({ entrypoints: [join(work, "hello.ts")], compile: { outfile: hello }, minify: true, bytecode: true });
  if (!b.success) throw new Error("could not compile hello world");

  const home = join(work, "home");
  const proj = join(work, "proj");
  spawnOk(["mkdir", "-p", home, join(proj, "src")]);
  writeFileSync(join(home, "silo.toml"), '[images.mirrors]\n"docker.io" = "http://127.0.0.1:5000"\n');
  writeFileSync(
    join(proj, "silo.toml"),
    '[tools]\npython = "3.11-slim"\n\n[env]\nA = "1"\n\n[mount]\nexclude = [".env"]\n\n[overrides.python.network.proxy]\nallow = ["pypi.org"]\n',
  );
  const env = { PATH: process.env.PATH!, HOME: work, SILO_HOME: home };
  const resolveCache = join(home, "state", "resolved");
  const runs = Number(process.env.BENCH_RUNS ?? 40);
  const t = timeInterleaved(
    {
      "hello-world (compiled bun)": () => spawnOk([hello], { env }),
      "silo --version": () => spawnOk([silo, "--version"], { env }),
      "silo config resolution, cached": () => spawnOk([silo, "__resolve", "python"], { env, cwd: join(proj, "src") }),
      "silo config resolution, cold": () => {
        rmSync(resolveCache, { recursive: true, force: true });
        spawnOk([silo, "__resolve", "python"], { env, cwd: join(proj, "src") });
      },
    },
    runs,
  );
  const base = median(t["hello-world (compiled bun)"]!);
  console.log(`runs: ${runs} each, interleaved; medians`);
  for (const [k, xs] of Object.entries(t)) {
    const m = median(xs);
    console.log(`${k.padEnd(34)} ${fmt(m).padStart(10)}   +${fmt(m - base).padStart(9)}   ×${(m / base).toFixed(2)}`);
  }
  rmSync(work, { recursive: true, force: true });
}
