// Helpers of the cache command tests: JSON plans, du, fake rootfs entries, a pid that is surely gone.
import { expect } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runSilo, type SiloResult } from "../../helpers/silo.ts";

export interface PlanJson {
  dryRun: boolean;
  actions: { kind: string; digest?: string; path?: string; bytes: number; reason: string }[];
  done: PlanJson["actions"];
  skipped: { action: PlanJson["actions"][number]; why: string }[];
  bytes: number;
}

export function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
  return r;
}

export async function plan(home: string, cwd: string, ...args: string[]): Promise<PlanJson> {
  const r = ok(await runSilo([...args, "--json"], { home, cwd }));
  return JSON.parse(r.stdout) as PlanJson;
}

/** Run a destructive command as --dry-run, then for real: the real run must do exactly what the dry run planned. */
export async function dryThenReal(home: string, cwd: string, ...args: string[]): Promise<PlanJson> {
  const dry = await plan(home, cwd, ...args, "--dry-run");
  expect(dry.dryRun).toBe(true);
  expect(dry.done).toEqual([]);
  const real = await plan(home, cwd, ...args);
  // The same actions in the same order; sizes within 1%: ext4 reports delayed-allocation reservations in
  // st_blocks until writeback, so a tree written in the last seconds (an unpack, a killed sandbox's
  // teardown) can measure a block apart between two runs a few milliseconds apart.
  const sizeless = (p: PlanJson) => p.actions.map(({ bytes: _, ...a }) => a);
  expect(sizeless(real)).toEqual(sizeless(dry));
  real.actions.forEach((a, i) => expect(Math.abs(a.bytes - dry.actions[i]!.bytes)).toBeLessThanOrEqual(Math.max(65536, dry.actions[i]!.bytes / 100)));
  expect(real.done).toEqual(real.actions);
  expect(real.skipped).toEqual([]);
  return real;
}

/** `du -s` in bytes: allocated (`-B1`) or apparent (`-b`); several paths add up as one du call (`-c`). */
export function du(paths: string[], apparent = false): number {
  const p = Bun.spawnSync(["du", "-s", "-c", apparent ? "-b" : "-B1", ...paths]);
  const last = p.stdout.toString().trim().split("\n").at(-1)!;
  return Number(last.split("\t")[0]);
}

export const DAY = 86_400_000;

/** A rootfs entry that was never pulled: a directory of `mb` MiB and its marker, last used `daysAgo`. */
export function fakeEntry(home: string, seed: string, mb: number, daysAgo: number): string {
  const hex = new Bun.CryptoHasher("sha256").update(seed).digest("hex");
  const dir = join(home, "rootfs", hex);
  mkdirSync(join(dir, "data"), { recursive: true });
  writeFileSync(join(dir, "data/blob"), Buffer.alloc(mb * 1024 * 1024, seed.charCodeAt(0)));
  const marker = join(home, "rootfs", `${hex}.json`);
  writeFileSync(marker, JSON.stringify({ digest: `sha256:${hex}`, config: { env: [] }, refs: [`fake/${seed}`], layers: [], sizes: { download: 0, unpacked: 0 } }));
  const t = new Date(Date.now() - daysAgo * DAY);
  utimesSync(marker, t, t);
  return `sha256:${hex}`;
}

/**
 * Set when a rootfs entry was last used. Test homes share their seeded rootfs with a template by hard
 * links (test/helpers/silo.ts), so the marker is replaced by a copy first: touching the shared inode
 * would age the entry in every other home too.
 */
export function ageMarker(home: string, digest: string, daysAgo: number) {
  const marker = join(home, "rootfs", `${digest.slice(7)}.json`);
  const body = readFileSync(marker);
  rmSync(marker);
  writeFileSync(marker, body);
  const t = new Date(Date.now() - daysAgo * DAY);
  utimesSync(marker, t, t);
}

/** Remove the seeded rootfs entries of tools this home has not installed, for an exact starting point. */
export function dropUninstalled(home: string) {
  const installed = readFileSync(join(home, "config.toml"), "utf8");
  for (const n of readdirSync(join(home, "rootfs"))) {
    const hex = /^([0-9a-f]{64})\.json$/.exec(n)?.[1];
    if (!hex || installed.includes(hex)) continue;
    rmSync(join(home, "rootfs", n));
    Bun.spawnSync(["rm", "-rf", join(home, "rootfs", hex)]);
  }
}

/** The pid of a process that has exited. */
export async function deadPid(): Promise<number> {
  const p = Bun.spawn(["true"]);
  await p.exited;
  return p.pid;
}

export { removeScratch, scratch, scratchProject } from "../build/_helpers.ts";
