/**
 * Plans that free what one project or one tool used: `silo clean` (this project's build layers and silo's
 * cached data about it) and `silo uninstall` (the tool's global layers, caches, and the image nothing else
 * uses). Same shape as the gc plans: --dry-run prints them, the real run executes them (./cache.ts).
 */
import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { joinUnder, type HomePaths } from "../core/paths.ts";
import { planImages, type Action } from "../cache/gc.ts";
import { measure } from "../cache/usage.ts";
import { listDir, listImageInfo, takeInventory, type Inventory } from "./cache-inventory.ts";

/** Removal of a scope directory: all of it, or (when a running sandbox uses a generation) the rest of it. */
function planScope(base: string, inv: Inventory, reason: string): Action[] {
  const busy = listDir(base).filter((g) => inv.mounted.has(join(base, g, "root")) || inv.mounted.has(join(base, g)));
  if (busy.length === 0) return existsSync(base) ? [{ kind: "remove-path", path: base, bytes: measure(base).disk, reason }] : [];
  return listDir(base)
    .filter((n) => !busy.includes(n) && n !== ".lock")
    .map((n) => ({ kind: "remove-path", path: join(base, n), bytes: measure(join(base, n)).disk, reason: `${reason} (a running sandbox keeps ${busy.join(", ")})` }));
}

export interface ProjectCleanOptions {
  cwd: string;
  rootfsOnly?: boolean;
  cachesOnly?: boolean;
}

/** The project is the directory of the nearest silo.toml, else the working directory. */
export async function projectOf(cwd: string): Promise<{ root: string; file: string | null }> {
  const { findProjectConfig } = await import("../config/load.ts");
  const file = findProjectConfig(cwd);
  return { root: realpathSync(file ? dirname(file) : cwd), file };
}

/**
 * `silo clean`: the project's build layers (<project>/.silo/<tool>, its "rootfs") and silo's caches about
 * the project (resolved configuration in SILO_HOME/state/resolved). Tool package caches are shared by all
 * projects and stay (`silo cache gc --tool-caches` trims them).
 */
export async function planProjectClean(opts: ProjectCleanOptions, home: HomePaths): Promise<Action[]> {
  const inv = await takeInventory(home, { sizes: false });
  const { root, file } = await projectOf(opts.cwd);
  const plan: Action[] = [];
  if (!opts.cachesOnly) {
    const silo = join(root, ".silo");
    const tools = listDir(silo).filter((n) => !n.startsWith("."));
    const parts = tools.flatMap((t) => planScope(join(silo, t), inv, `build layer of ${t}`));
    // Nothing in use: the whole .silo directory goes (with its .gitignore).
    const whole = parts.length === tools.length && parts.every((a, i) => "path" in a && a.path === join(silo, tools[i]!));
    if (existsSync(silo) && whole) plan.push({ kind: "remove-path", path: silo, bytes: measure(silo).disk, reason: "this project's build layers" });
    else plan.push(...parts);
  }
  if (!opts.rootfsOnly) {
    const { loadRegistry } = await import("../registry/index.ts");
    const names = new Set([...Object.keys(inv.installed), ...(await loadRegistry(home)).tools.keys()]);
    for (const name of names) {
      // The key the resolved-config cache uses (src/app/context.ts).
      const key = Bun.hash(`${file ?? root}\0${name}`).toString(16);
      const p = join(home.state, "resolved", `${key}.json`);
      if (existsSync(p)) plan.push({ kind: "remove-path", path: p, bytes: measure(p).disk, reason: `resolved configuration of ${name} for this project` });
    }
  }
  return plan;
}

/**
 * What `silo uninstall <tool>` frees after the tool left config.toml: its global build layers (and LSP
 * layers), its package caches, and, unless kept, its image when no other installed tool, build layer or
 * running sandbox uses it, with the blobs only that image needs.
 */
export async function planUninstall(tool: string, digest: string, home: HomePaths, opts: { keepImage?: boolean }): Promise<{ plan: Action[]; imageKeptFor: string[] }> {
  const inv = await takeInventory(home, { sizes: false });
  const plan: Action[] = [...planScope(joinUnder(home.builds, tool), inv, `build layers of ${tool}`)];
  const caches = joinUnder(home.cache, tool);
  if (!inv.runningTools.has(tool) && existsSync(caches))
    plan.push({ kind: "remove-path", path: caches, bytes: measure(caches).disk, reason: `package caches of ${tool}` });
  if (opts.keepImage) return { plan, imageKeptFor: ["--keep-image"] };
  // The tool's own global layer no longer protects its image: it goes with the tool.
  const others = (inv.keep.get(digest) ?? []).filter((r) => r !== `global build layer of ${tool}`);
  if (others.length) return { plan, imageKeptFor: others };
  const entry = inv.rootfs.find((e) => e.digest === digest);
  if (entry) {
    const seen = new Set<string>();
    const bytes = [entry.dir, entry.archive, `${join(home.rootfs, digest.slice(7))}.json`].reduce((s, p) => s + (p && existsSync(p) ? measure(p, seen).disk : 0), 0);
    plan.push({ kind: "remove-rootfs", digest, bytes, reason: `the image of ${tool}, which nothing else uses` });
  }
  const images = await listImageInfo(home, (d) => d !== digest);
  const mine = new Set(images.find((i) => i.digest === digest)?.blobs ?? []);
  const { listBlobs } = await import("../cache/blobs.ts");
  for (const a of planImages(images, listBlobs(home), inv.now, 0))
    if (a.kind === "remove-image" || (a.kind === "remove-blob" && mine.has(a.digest))) plan.push(a);
  return { plan, imageKeptFor: [] };
}

