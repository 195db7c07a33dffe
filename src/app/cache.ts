/**
 * Use cases of `silo cache gc|compress|clean`, `silo clean` and the reclaiming part of `silo uninstall`.
 * Each builds a plan (src/cache/gc.ts) from an inventory of SILO_HOME (./cache-inventory.ts); --dry-run
 * prints the plan, a real run executes exactly that plan. Just before each destructive step the entry is
 * checked again (a sandbox may have started using it since the plan was made): such a step is skipped and
 * reported, never forced.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { homePaths, type HomePaths } from "../core/paths.ts";
import { DAY, MB, planCompress, planImages, planRootfsGc, planTrim, type Action, type RootfsEntry } from "../cache/gc.ts";
import { mountedLayers } from "../cache/inuse.ts";
import { listFiles } from "../cache/usage.ts";
import { housekeeping } from "./cache-orphans.ts";
import { listDir, listImageInfo, takeInventory, type Inventory } from "./cache-inventory.ts";

/** A compressed rootfs needed by a run: unpack it, then hand it out as localImage() would. */
export async function restoreImage(digest: string, home: HomePaths = homePaths()) {
  const { localImage, rootfsDir } = await import("../image/local.ts");
  const { restoreDir } = await import("../cache/compress.ts");
  return (await restoreDir(rootfsDir(home, digest))) ? localImage(digest, home) : null;
}

export interface GcOptions {
  images?: boolean;
  toolCaches?: boolean;
  /** Overrides of [cache.rootfs] maxSizeMB / maxAgeDays. */
  maxSizeMB?: number;
  maxAgeDays?: number;
}

export interface CacheLimits {
  rootfs: { maxSizeMB: number; maxAgeDays: number };
  tools: { maxSizeMB?: number; perMount: Record<string, number> };
}

/** [cache] of the global silo.toml with the defaults: 8192 MB, 60 days, no tool-cache cap. */
export async function loadLimits(home: HomePaths): Promise<CacheLimits> {
  const { loadTomlData } = await import("../config/load.ts");
  const g = ((await loadTomlData(home.globalConfig)) ?? {}) as import("../config/schema.ts").SiloConfig;
  return {
    rootfs: { maxSizeMB: g.cache?.rootfs?.maxSizeMB ?? 8192, maxAgeDays: g.cache?.rootfs?.maxAgeDays ?? 60 },
    tools: { maxSizeMB: g.cache?.tools?.maxSizeMB, perMount: g.cache?.tools?.perMount ?? {} },
  };
}

/** `silo cache gc`: stale leftovers, then rootfs by age and LRU, then (opt-in) images and tool caches. */
export async function planGc(opts: GcOptions, home: HomePaths = homePaths(), inv?: Inventory): Promise<Action[]> {
  inv ??= await takeInventory(home);
  const limits = await loadLimits(home);
  const plan: Action[] = housekeeping(inv, { orphans: false });
  const rootfs = planRootfsGc(inv.rootfs, {
    maxBytes: (opts.maxSizeMB ?? limits.rootfs.maxSizeMB) * MB,
    maxAgeMs: (opts.maxAgeDays ?? limits.rootfs.maxAgeDays) * DAY,
    now: inv.now,
  });
  plan.push(...rootfs);
  if (opts.images) plan.push(...(await planImageGc(inv, new Set(rootfs.map((a) => ("digest" in a ? a.digest : ""))))));
  if (opts.toolCaches) plan.push(...planToolCaches(inv, limits));
  return plan;
}

async function planImageGc(inv: Inventory, goingRootfs: Set<string>): Promise<Action[]> {
  const present = new Set(inv.rootfs.filter((e) => !goingRootfs.has(e.digest) && (e.dir || e.archive)).map((e) => e.digest));
  const images = await listImageInfo(inv.home, (d) => inv.keep.has(d) || present.has(d));
  const { listBlobs } = await import("../cache/blobs.ts");
  return planImages(images, listBlobs(inv.home), inv.now);
}

/** [cache.tools] maxSizeMB caps every mount; perMount["<tool>/<name>"] (or ["<name>"]) overrides one. */
function planToolCaches(inv: Inventory, limits: CacheLimits): Action[] {
  const plan: Action[] = [];
  for (const tool of listDir(inv.home.cache)) {
    if (inv.runningTools.has(tool)) continue; // a running install may be writing there
    // Shared mounts are <tool>/<name>; per-project ones <tool>/projects/<key>/<name>, capped one by one.
    const dirs: [string, string][] = [];
    for (const name of listDir(join(inv.home.cache, tool)))
      if (name !== "projects") dirs.push([name, join(inv.home.cache, tool, name)]);
      else for (const key of listDir(join(inv.home.cache, tool, name))) for (const n of listDir(join(inv.home.cache, tool, name, key))) dirs.push([n, join(inv.home.cache, tool, name, key, n)]);
    for (const [name, dir] of dirs) {
      const capMB = limits.tools.perMount[`${tool}/${name}`] ?? limits.tools.perMount[name] ?? limits.tools.maxSizeMB;
      if (capMB === undefined) continue;
      plan.push(...planTrim(listFiles(dir), capMB * MB, `the ${tool}/${name} cache`));
    }
  }
  return plan;
}

/** `silo cache compress`: entries unused for 14 days (or all), not in use by a running sandbox. */
export async function planCompressCmd(opts: { all?: boolean }, home: HomePaths = homePaths()): Promise<Action[]> {
  const inv = await takeInventory(home);
  return planCompress(inv.rootfs, { minAgeMs: 14 * DAY, all: !!opts.all, now: inv.now, running: inv.runningDigests });
}

/** `silo cache clean`: --safe orphans only (the default), --rootfs every rootfs entry, --containers sandbox leftovers. */
export async function planClean(opts: { safe?: boolean; rootfs?: boolean; containers?: boolean }, home: HomePaths = homePaths()): Promise<Action[]> {
  const inv = await takeInventory(home);
  const safe = opts.safe || (!opts.rootfs && !opts.containers);
  const plan: Action[] = [];
  if (safe) {
    plan.push(...housekeeping(inv, { orphans: true }));
    const { listBlobs } = await import("../cache/blobs.ts");
    const images = await listImageInfo(home, () => true);
    plan.push(...planImages(images, listBlobs(home), inv.now));
  } else if (opts.containers) plan.push(...housekeeping(inv, { orphans: false }).filter((a) => a.kind === "remove-path" && a.reason.includes("sandbox")));
  if (opts.rootfs)
    for (const e of inv.rootfs)
      if (!inv.runningDigests.has(e.digest)) plan.push({ kind: "remove-rootfs", digest: e.digest, bytes: e.bytes, reason: "--rootfs" });
  return dedupe(plan);
}

/** Drop repeated actions and paths inside a path that is removed anyway (its bytes would count twice). */
function dedupe(plan: Action[]): Action[] {
  const seen = new Set<string>();
  const paths = plan.flatMap((a) => ("path" in a ? [a.path] : []));
  return plan.filter((a) => {
    const k = `${a.kind}:${"path" in a ? a.path : a.digest}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return !("path" in a) || !paths.some((p) => a.path.startsWith(p + "/"));
  });
}

export interface Outcome {
  done: Action[];
  skipped: { action: Action; why: string }[];
}

/** Execute a plan made by one of the planners above. */
export async function executePlan(plan: Action[], home: HomePaths = homePaths(), since = Date.now()): Promise<Outcome> {
  const { removeRootfs } = await import("../image/local.ts");
  const { removeTree } = await import("../core/fs.ts");
  const out: Outcome = { done: [], skipped: [] };
  let db: import("bun:sqlite").Database | null = null;
  const mounted = plan.some((a) => a.kind === "remove-rootfs" || a.kind === "compress" || a.kind === "remove-path") ? mountedLayers() : new Set<string>();
  for (const a of plan) {
    try {
      switch (a.kind) {
        case "remove-rootfs": {
          // A run hands out a rootfs by touching its marker, then mounts it: look at both, just before.
          if (usedSince(home, a.digest, since) || mountedLayers().has(join(home.rootfs, a.digest.slice(7)))) throw new Skip("a sandbox started using it");
          removeRootfs(a.digest, home);
          rmSync(join(home.rootfs, `${a.digest.slice(7)}.tar.zst`), { force: true });
          break;
        }
        case "compress":
          await compressEntry(home, a.digest, mounted, removeTree);
          break;
        case "remove-image": {
          const { openDb, forgetImage } = await import("../cache/db.ts");
          db ??= openDb(home);
          forgetImage(db, a.digest);
          break;
        }
        case "remove-blob": {
          const { removeBlob } = await import("../cache/blobs.ts");
          removeBlob(home, a.digest);
          break;
        }
        case "remove-path":
          if (mounted.has(a.path) || mounted.has(join(a.path, "root"))) throw new Skip("a sandbox uses it");
          removeTree(a.path);
          break;
      }
      out.done.push(a);
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      out.skipped.push({ action: a, why: e.message });
    }
  }
  return out;
}

class Skip extends Error {}

function usedSince(home: HomePaths, digest: string, since: number): boolean {
  try {
    return statSync(join(home.rootfs, `${digest.slice(7)}.json`)).mtimeMs > since;
  } catch {
    return false;
  }
}

async function compressEntry(home: HomePaths, digest: string, mounted: Set<string>, removeTree: (p: string) => void) {
  const { archiveOf, compressDir } = await import("../cache/compress.ts");
  const dir = join(home.rootfs, digest.slice(7));
  if (mounted.has(dir)) throw new Skip("a sandbox started using it");
  const marker = `${dir}.json`;
  const before = statSync(marker).mtimeMs;
  if (!existsSync(archiveOf(dir))) await compressDir(dir, archiveOf(dir));
  // Used while we packed it? Then the directory stays (the archive is dropped on its next restore).
  if (statSync(marker).mtimeMs !== before || mountedLayers().has(dir)) throw new Skip("it was used while being compressed");
  const trash = join(home.rootfs, `.trash-${digest.slice(7)}-${process.pid}-${Date.now()}`);
  renameSync(dir, trash);
  removeTree(trash);
}

// --- automatic gc --------------------------------------------------------------------------------------

/** `silo cache gc --auto`: the daily run started by `silo run` (see ./auto-gc.ts); quiet, one at a time. */
export async function autoGc(home: HomePaths = homePaths()): Promise<void> {
  const { tryLock, unlock } = await import("../image/native.ts");
  const { closeSync, openSync } = await import("node:fs");
  mkdirSync(home.state, { recursive: true });
  const fd = openSync(join(home.state, "gc.lock"), "a", 0o644);
  try {
    if (!tryLock(fd)) return; // another gc is at work
    try {
      const limits = await loadLimits(home);
      const plan = await planGc({ toolCaches: limits.tools.maxSizeMB !== undefined || Object.keys(limits.tools.perMount).length > 0 }, home);
      const out = await executePlan(plan, home);
      const { writeFileAtomic } = await import("../core/fs.ts");
      const freed = out.done.reduce((s, a) => s + a.bytes, 0);
      writeFileAtomic(join(home.state, "gc.log"), `${new Date().toISOString()} auto gc: ${out.done.length} actions, ${(freed / MB).toFixed(1)} MB freed, ${out.skipped.length} skipped\n`);
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}

export type { Action, RootfsEntry };

/** After `silo uninstall`: free what only that tool used (see planUninstall), and say what went. */
export async function reclaimTool(tool: string, digest: string, home: HomePaths, opts: { keepImage?: boolean }): Promise<Outcome> {
  const { planUninstall } = await import("./reclaim.ts");
  const { formatSize } = await import("../cache/usage.ts");
  const { log } = await import("../core/log.ts");
  const { plan, imageKeptFor } = await planUninstall(tool, digest, home, opts);
  const out = await executePlan(plan, home);
  const freed = out.done.reduce((s, a) => s + a.bytes, 0);
  const what = [...new Set(out.done.map((a) => (a.kind === "remove-path" ? a.reason : a.kind === "remove-rootfs" ? "its rootfs" : "image blobs")))];
  if (out.done.length) log.info(`freed ${formatSize(freed)}: ${what.join(", ")}`);
  if (imageKeptFor.length && imageKeptFor[0] !== "--keep-image") log.info(`kept ${tool}'s image, still used by: ${imageKeptFor.join("; ")}`);
  return out;
}

/** `silo cache share-login TOOL`: this project's login of TOOL becomes every project's (cache-mounts.ts). */
export async function shareToolLogin(home: HomePaths, tool: string, cwd: string): Promise<string> {
  const { realpathSync } = await import("node:fs");
  const { SiloError } = await import("../core/errors.ts");
  const { loadRunContext, toolNotInstalled } = await import("./context.ts");
  const { shareLogin } = await import("./cache-mounts.ts");
  const ctx = await loadRunContext(home, cwd, tool);
  if (!ctx.tool) throw toolNotInstalled(tool);
  if (!ctx.tool.cache.some((c) => c.scope === "login"))
    throw new SiloError("E_USAGE", `${tool} has no login to share (its registry entry declares no \`scope = "login"\` cache)`);
  const shared = shareLogin(home, tool, ctx.tool.cache, realpathSync(ctx.project.root));
  if (!shared)
    throw new SiloError("E_USAGE", `no login of ${tool} in this project yet`, `log in with ${tool} here first (silo run ${tool}), then run this again`);
  return shared;
}
