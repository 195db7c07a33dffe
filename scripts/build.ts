// bun run build [--target linux-x64|linux-arm64|darwin-arm64|all]: one self-contained executable per target.
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json";

export const TARGETS = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "darwin-arm64": "bun-darwin-arm64",
} as const;
export type Target = keyof typeof TARGETS;

const host = `${process.platform}-${process.arch}` as Target;

if (import.meta.main) {
  const arg = process.argv.indexOf("--target");
  const wanted = arg > 0 ? process.argv[arg + 1]! : host;
  const targets = (wanted === "all" ? Object.keys(TARGETS) : [wanted]) as Target[];
  // Split builds leave one file per chunk behind; start from an empty dist/ so old ones do not pile up
  // (all but dist/release, which `bun run release` makes and its tests read).
  mkdirSync("dist", { recursive: true });
  for (const f of readdirSync("dist")) if (f !== "release") rmSync(join("dist", f), { recursive: true, force: true });
  for (const t of targets) {
    if (!TARGETS[t]) throw new Error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(", ")}, all`);
    await buildTarget(t, t === host && wanted !== "all" ? join("dist", "silo") : join("dist", `silo-${t}`)).catch((e: Error) => {
      console.error(`build: ${e.message}`);
      process.exit(1);
    });
  }
}

/**
 * One self-contained executable for target t at outfile. `requireStage` (the release) fails when the
 * target's C compiler is missing instead of shipping a Linux build without its native stage.
 */
export async function buildTarget(t: Target, outfile: string, opts: { requireStage?: boolean } = {}): Promise<void> {
  const stage = t.startsWith("linux-") ? buildNativeStage(t, opts.requireStage ?? false) : null;
  const result = await Bun.build({
    // The native sandbox stage rides along as an embedded file (Bun.embeddedFiles; bwrap/native.ts).
    entrypoints: ["src/main.ts", ...(stage ? [stage] : [])],
    // A compiled Bun binary reads bunfig.toml (preload = code run at start-up) and .env files from the
    // working directory unless told not to: in a cloned project that is project code run on the host by
    // `silo --version` or any shim (THREATS.md invariant 1). Every autoload is off, including those off by
    // default today, so a Bun upgrade that changes a default changes nothing here.
    // test/integration/security/host-exec.test.ts checks the built binary.
    compile: { target: TARGETS[t], outfile, autoloadBunfig: false, autoloadDotenv: false, autoloadTsconfig: false, autoloadPackageJson: false },
    minify: true,
    // Measured (scripts/bench/startup.ts): one plain bundle starts in ~70 ms, because every lazily imported
    // module (c12, giget, consola, ...) is still parsed at start-up. Splitting keeps each lazy import in its
    // own chunk, and bytecode skips parsing what is loaded: together ~5 ms over a compiled hello-world.
    splitting: true,
    bytecode: true,
    format: "esm",
    define: { SILO_VERSION: JSON.stringify(pkg.version), SILO_BUILD: JSON.stringify(buildId()), SILO_COMMIT: JSON.stringify(commitId()) },
  });
  if (!result.success) throw new Error(`building ${t} failed:\n${result.logs.join("\n")}`);
  console.log(`built ${outfile} (${t})`);
}

function compilerName(t: Target): string {
  return t === host ? "cc" : t === "linux-arm64" ? "aarch64-linux-gnu-gcc" : "x86_64-linux-gnu-gcc";
}

/** The C compiler for target t's native stage when this machine has one. */
export function stageCompiler(t: Target): string | null {
  return Bun.which(compilerName(t)) ? compilerName(t) : null;
}

/** What to install for it (Debian's packages). */
export function missingCompiler(t: Target): string {
  const cc = compilerName(t);
  const apt = cc === "aarch64-linux-gnu-gcc" ? "gcc-aarch64-linux-gnu libc6-dev-arm64-cross" : cc === "cc" ? "gcc libc6-dev" : "gcc-x86-64-linux-gnu libc6-dev-amd64-cross";
  return `no ${cc} to compile the ${t} native sandbox stage (Debian: apt-get install ${apt})`;
}

/**
 * The bwrap driver's set-up stage (src/runner/drivers/bwrap/native/silo-stage.c), static so it runs on any
 * Linux. Without a C compiler for the target the build goes on and silo uses its /bin/sh stage instead
 * (slower to start a sandbox, same sandbox).
 */
function buildNativeStage(t: Target, required: boolean): string | null {
  const cc = stageCompiler(t);
  if (!cc) {
    if (required) throw new Error(missingCompiler(t));
    console.warn(`build: no ${compilerName(t)}, so the ${t} build has no native sandbox stage (silo falls back to /bin/sh + unshare)`);
    return null;
  }
  const dir = join("dist", ".native", t);
  mkdirSync(dir, { recursive: true });
  const out = join(dir, "silo-stage");
  const src = "src/runner/drivers/bwrap/native/silo-stage.c";
  const r = Bun.spawnSync([cc, "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", out, src], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0 || !existsSync(out)) throw new Error(`compiling ${src} with ${cc} failed`);
  return out;
}

/** The commit and the build time: one id per build. */
function buildId(): string {
  return `${commitId()}-${Date.now().toString(36)}`;
}

/** The commit built (`silo --version` prints it), with `-dirty` when the tree has uncommitted changes. */
function commitId(): string {
  const git = (args: string[]) => Bun.spawnSync(["git", ...args], { stderr: "ignore" });
  const head = git(["rev-parse", "--short=12", "HEAD"]);
  const commit = head.exitCode === 0 ? head.stdout.toString().trim() : "unknown";
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]).stdout.toString().trim() ? "-dirty" : "";
  return `${commit}${dirty}`;
}
