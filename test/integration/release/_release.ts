// The release under test: dist/release, made by `bun run release` (CI runs it before the tests; here it is
// built when missing, which takes a minute and fetches Bun's cross-compile runtimes from npm once).
import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../helpers/silo.ts";

export const releaseDir = process.env.SILO_RELEASE_DIR || join(repoRoot, "dist/release");
export const version: string = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;
export const PLATFORMS = ["linux-x64", "linux-arm64", "darwin-arm64"] as const;

export function ensureRelease(): string {
  if (existsSync(join(releaseDir, "SHA256SUMS"))) return releaseDir;
  const r = Bun.spawnSync(["bun", "run", "release", "--out", releaseDir], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bun run release failed:\n${r.stdout.toString()}${r.stderr.toString()}`);
  return releaseDir;
}

/** ELF e_machine of a file: 62 is x86-64, 183 is aarch64. */
export function elfMachine(file: string): number {
  const b = Buffer.alloc(20);
  const fd = openSync(file, "r");
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  return b.readUInt16LE(18);
}
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
