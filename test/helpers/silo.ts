import { mkdirSync, mkdtempSync, realpathSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dir, "../..");
/** The binary under test: `SILO_BIN`, else the compiled `dist/silo` (`bun run build`). */
export const siloBin = process.env.SILO_BIN || join(repoRoot, "dist/silo");
/** Registry fixture address (scripts/fixtures/registry.sh). */
export const fixtureRegistry = process.env.SILO_TEST_REGISTRY || "http://127.0.0.1:5000";

export function tmp(prefix = "silo-test-"): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

/** A fresh SILO_HOME whose global silo.toml mirrors docker.io to the fixture registry. */
export function makeHome(extraGlobal = ""): string {
  const home = tmp("silo-home-");
  writeFileSync(
    join(home, "silo.toml"),
    `[images.mirrors]\n"docker.io" = "${fixtureRegistry}"\n${extraGlobal}`,
  );
  return home;
}

/** A project directory with an optional silo.toml. */
export function makeProject(siloToml?: string, files: Record<string, string> = {}): string {
  const dir = tmp("silo-proj-");
  if (siloToml !== undefined) writeFileSync(join(dir, "silo.toml"), siloToml);
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
  return dir;
}

export interface SiloResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run the silo binary with a clean environment: only what the test passes, plus PATH. */
export async function runSilo(
  args: string[],
  opts: { home: string; cwd?: string; env?: Record<string, string>; stdin?: string; argv0?: string; bin?: string } ,
): Promise<SiloResult> {
  const bin = opts.bin ?? siloBin;
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`bun run build\` first`);
  const proc = Bun.spawn([bin, ...args], {
    cwd: opts.cwd ?? opts.home,
    argv0: opts.argv0,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: opts.home, ...opts.env },
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
}
