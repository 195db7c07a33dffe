import { copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dir, "../..");
/** The binary under test: `SILO_BIN`, else the compiled `dist/silo` (`bun run build`). */
export const siloBin = process.env.SILO_BIN || join(repoRoot, "dist/silo");
/** Registry fixture address (scripts/fixtures/registry.sh). */
export const fixtureRegistry = process.env.SILO_TEST_REGISTRY || "http://127.0.0.1:5000";

const created: string[] = [];

/** A temporary directory, removed when the test process exits (the disk is shared and small). */
export function tmp(prefix = "silo-test-"): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  created.push(dir);
  return dir;
}

/**
 * Remove every tmp() dir of this test process. `bun test` does not run process "exit" handlers, so the
 * preload (setup.ts) calls this from a global afterAll. SILO_TEST_KEEP=1 keeps them for a post-mortem.
 */
export function removeCreated(): void {
  if (process.env.SILO_TEST_KEEP) return;
  for (const d of created.splice(0)) {
    // Overlay work dirs can be left mode 000 by the kernel; make everything removable first.
    Bun.spawnSync(["chmod", "-R", "u+rwx", d], { stdout: "ignore", stderr: "ignore" });
    rmSync(d, { recursive: true, force: true });
  }
  template = undefined;
}

/**
 * The fixture images, pulled once per test process into a template SILO_HOME. Homes made by makeHome()
 * get its image store and rootfs cache as hard links: `silo install python@3.11-slim` in a test then
 * finds the rootfs by digest (resolving the tag still asks the fixture registry) instead of downloading
 * and unpacking 330 MB again, and costs no disk. Nothing else (installed tools, shims, trust) is shared.
 * Tests of pulling itself use their own empty homes (emptyHome()).
 */
const SEED_IMAGES = ["docker.io/library/python:3.11-slim", "docker.io/library/node:22-slim", "docker.io/library/busybox:latest"];
let template: string | undefined;
function seedTemplate(): string {
  if (template) return template;
  const dir = tmp("silo-template-");
  writeFileSync(join(dir, "silo.toml"), `[images.mirrors]\n"docker.io" = "${fixtureRegistry}"\n`);
  for (const ref of SEED_IMAGES) {
    const name = `seed-${ref.replace(/^.*\/|:.*$/g, "")}`;
    const r = Bun.spawnSync([siloBin, "install", "--quiet", name, "--image", ref], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, SILO_HOME: dir } });
    if (r.exitCode !== 0) throw new Error(`seeding ${ref} failed: ${r.stderr.toString()}`);
  }
  template = dir;
  return dir;
}

/** A fresh SILO_HOME whose global silo.toml mirrors docker.io to the fixture registry (image store seeded). */
export function makeHome(extraGlobal = ""): string {
  const home = emptyHome(extraGlobal);
  const t = seedTemplate();
  for (const d of ["images", "rootfs"]) {
    const r = Bun.spawnSync(["cp", "-al", join(t, d), join(home, d)], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`seeding ${home}: ${r.stderr.toString()}`);
  }
  mkdirSync(join(home, "state"), { recursive: true });
  for (const f of ["silo.db", "silo.db-wal"]) if (existsSync(join(t, "state", f))) copyFileSync(join(t, "state", f), join(home, "state", f));
  return home;
}

/** A SILO_HOME with only the mirror configured: nothing pulled yet. */
export function emptyHome(extraGlobal = ""): string {
  const home = tmp("silo-home-");
  writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${fixtureRegistry}"\n${extraGlobal}`);
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
