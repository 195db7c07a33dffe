// bun run release [--out DIR] [--base-url URL]: what a release publishes, in dist/release by default.
//
//   silo-<version>-<os>-<arch>.tar.gz   for linux-x64, linux-arm64, darwin-arm64: silo-<version>-<os>-<arch>/
//                                       with the binary, LICENSE, README.md and completions/
//   SHA256SUMS                          sha256sum format, what install.sh and the formula check
//   install.sh                          the install script (scripts/install.sh), served next to them
//   Formula/silo.rb                     the Homebrew formula for the tap, with these sums
//
// Everything is built in a scratch directory and moved into place at the end: a failed release leaves the
// previous one as it was. test/integration/release/ checks the result (and builds it when missing).
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pkg from "../package.json";
import { buildTarget, missingCompiler, stageCompiler } from "./build.ts";
import { PLATFORMS, defaultBaseUrl, renderFormula, tarballName, type Platform } from "./release/formula.ts";
import { inspectMachO, resignAdhoc } from "./release/macho.ts";

const root = resolve(import.meta.dir, "..");
process.chdir(root);
const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const out = resolve(flag("--out") ?? "dist/release");
const baseUrl = flag("--base-url") ?? defaultBaseUrl(pkg.version);
const version = pkg.version;

const work = `${out}.tmp-${process.pid}`;
rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, "stage"), { recursive: true });
try {
  // Every target's C compiler first: a release is all three platforms or none, and should not take a
  // minute to say that one cannot be built here.
  for (const p of PLATFORMS) if (p.startsWith("linux-") && !stageCompiler(p)) throw new Error(missingCompiler(p));
  const sums: string[] = [];
  for (const p of PLATFORMS) {
    const name = `silo-${version}-${p}`;
    const dir = join(work, "stage", name);
    mkdirSync(join(dir, "completions"), { recursive: true });
    const bin = join(dir, "silo");
    await build(p, bin);
    if (p.startsWith("darwin-")) checkSignature(bin, p);
    copyFileSync("LICENSE", join(dir, "LICENSE"));
    copyFileSync("README.md", join(dir, "README.md"));
    for (const [shell, file] of [["bash", "silo.bash"], ["zsh", "_silo"], ["fish", "silo.fish"]] as const)
      writeFileSync(join(dir, "completions", file), run(["bun", "src/main.ts", "completion", shell]));
    const tarball = tarballName(version, p);
    packTarball(join(work, "stage"), name, join(work, tarball));
    sums.push(`${sha256(join(work, tarball))}  ${tarball}`);
    console.log(`release: ${tarball} (binary ${mb(statSync(bin).size)}, tarball ${mb(statSync(join(work, tarball)).size)})`);
  }
  const sumsText = `${sums.join("\n")}\n`;
  writeFileSync(join(work, "SHA256SUMS"), sumsText);
  mkdirSync(join(work, "Formula"));
  writeFileSync(join(work, "Formula", "silo.rb"), renderFormula(version, sumsText, baseUrl));
  copyFileSync("scripts/install.sh", join(work, "install.sh"));
  chmodSync(join(work, "install.sh"), 0o755);
  rmSync(join(work, "stage"), { recursive: true });
  rmSync(out, { recursive: true, force: true });
  renameSync(work, out);
  console.log(`release: ${out} (silo ${version})`);
} catch (e) {
  rmSync(work, { recursive: true, force: true });
  console.error(`release: ${(e as Error).message}`);
  process.exit(1);
}

async function build(p: Platform, bin: string): Promise<void> {
  try {
    await buildTarget(p, bin, { requireStage: true });
  } catch (e) {
    // Bun fetches each cross-compile runtime from the npm registry (@oven/bun-<os>-<arch>) on first use.
    throw new Error(`building ${p} failed (cross-compiling needs Bun's ${p} runtime, fetched from the npm registry): ${(e as Error).message}`);
  }
  if (!existsSync(bin)) throw new Error(`building ${p} produced no ${bin}`);
}

/**
 * macOS on Apple silicon kills an executable whose signature does not match its bytes. Bun signs its darwin
 * outputs ad hoc; when a Bun version gets that wrong, the page hashes are rewritten here (macho.ts).
 */
function checkSignature(bin: string, p: Platform): void {
  const file = new Uint8Array(readFileSync(bin));
  const sig = inspectMachO(file);
  const arch = p.split("-")[1];
  if (sig.arch !== arch) throw new Error(`${bin} is a Mach-O for ${sig.arch}, not ${arch}`);
  if (!sig.adhoc) throw new Error(`${bin} is not signed ad hoc`);
  if (sig.problems.length === 0) return;
  console.warn(`release: ${p} signature does not match the file (${sig.problems.join("; ")}); re-signing ad hoc`);
  resignAdhoc(file);
  writeFileSync(bin, file);
}

/** A reproducible tarball: sorted names, root-owned, one timestamp (the commit's), gzip without a name or time. */
function packTarball(dir: string, name: string, to: string): void {
  const epoch = process.env.SOURCE_DATE_EPOCH ?? (run(["git", "log", "-1", "--format=%ct"]).trim() || "0");
  const tar = to.replace(/\.gz$/, "");
  run(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", `--mtime=@${epoch}`, "-C", dir, "-cf", tar, name]);
  run(["gzip", "-n", tar]);
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function run(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
