/**
 * Leftovers and orphans in SILO_HOME, as plan actions. Leftovers (every gc): temporary directories of
 * pulls, builds, compressions and sandboxes whose silo process is gone, and build generations that are no
 * longer current and that no running sandbox uses. Orphans (`silo cache clean --safe`): rootfs data
 * without its marker or a marker without data, the builds and caches of tools that are not installed, and
 * the generated CA bundles (app/ca-bundle.ts) of images that are gone.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Action } from "../cache/gc.ts";
import { knownProjectLayers } from "../cache/layer-index.ts";
import { oldGenerations, staleBuildDirs } from "../cache/layers.ts";
import { measure } from "../cache/usage.ts";
import { listDir, type Inventory } from "./cache-inventory.ts";
import { isAlive } from "../core/fs.ts";

const HOUR = 3_600_000;

const alive = (pid: number) => pid === process.pid || isAlive(pid);

/** Temporary names carry the pid of the silo that made them; the name patterns of each writer. */
const TEMP_PATTERNS = [
  /^\.tmp-[0-9a-f]{64}-(\d+)-/, // a pull unpacking (src/image)
  /^\.trash-[0-9a-f]{64}-(\d+)-/, // a rootfs being deleted
  /^[0-9a-f]{64}\.tmp-(\d+)-/, // a rootfs being restored from its archive
  /^[0-9a-f]{64}\.tar\.zst\.tmp-(\d+)-/, // an archive being written
];

export function housekeeping(inv: Inventory, opts: { orphans: boolean }): Action[] {
  const { home } = inv;
  const plan: Action[] = [];
  const add = (path: string, reason: string) => plan.push({ kind: "remove-path", path, bytes: measure(path).disk, reason });

  for (const n of listDir(home.rootfs)) {
    const pid = TEMP_PATTERNS.map((re) => re.exec(n)?.[1]).find(Boolean);
    if (pid && !alive(Number(pid))) add(join(home.rootfs, n), "left by an interrupted silo");
  }
  for (const n of listDir(home.run)) {
    const pid = /^(\d+)-/.exec(n)?.[1];
    if (pid && !alive(Number(pid))) add(join(home.run, n), "left by a sandbox whose silo is gone");
  }
  const scopes = [...listDir(home.builds).map((t) => join(home.builds, t)), ...knownProjectLayers(home).map((p) => p.base)];
  for (const base of scopes) {
    for (const d of staleBuildDirs(base)) add(d, "left by an interrupted build (sandbox capture)");
    for (const g of oldGenerations(base)) if (!inv.mounted.has(join(base, g, "root"))) add(join(base, g), "an old build generation nothing uses");
  }
  if (!opts.orphans) return plan;

  const names = new Set(listDir(home.rootfs));
  for (const n of names) {
    const m = /^([0-9a-f]{64})(\.tar\.zst)?$/.exec(n);
    if (m && !names.has(`${m[1]}.json`) && !recent(join(home.rootfs, n), inv.now)) add(join(home.rootfs, n), "rootfs data without its marker (an unfinished unpack)");
    const j = /^([0-9a-f]{64})\.json$/.exec(n);
    if (j && !names.has(j[1]!) && !names.has(`${j[1]}.tar.zst`)) add(join(home.rootfs, n), "a marker whose rootfs is gone");
  }
  // A bundle is made again on the next run that needs it: one whose image is neither unpacked nor archived goes.
  const caDir = join(home.state, "ca");
  const caNames = listDir(caDir);
  for (const n of caNames) {
    const key = /^([0-9a-f]{32})\.json$/.exec(n)?.[1];
    if (!key) continue;
    const rootfs = caBundleImage(join(caDir, n));
    if (rootfs && (names.has(rootfs) || names.has(`${rootfs}.tar.zst`))) continue;
    add(join(caDir, n), "a CA bundle marker whose image is gone");
    if (caNames.includes(`${key}.pem`)) add(join(caDir, `${key}.pem`), "a CA bundle whose image is gone");
  }
  for (const tool of listDir(home.builds)) if (!inv.installed[tool]) add(join(home.builds, tool), `build layers of ${tool}, which is not installed`);
  for (const tool of listDir(home.cache)) if (!inv.installed[tool]) add(join(home.cache, tool), `caches of ${tool}, which is not installed`);
  return plan;
}

/** The rootfs (hex digest) a generated CA bundle was made from, or null when its marker does not say. */
function caBundleImage(marker: string): string | null {
  try {
    const r = (JSON.parse(readFileSync(marker, "utf8")) as { rootfs?: unknown }).rootfs;
    return typeof r === "string" && /^[0-9a-f]{64}$/.test(r) ? r : null;
  } catch {
    return null;
  }
}

/** Changed in the last hour: a pull may be between renaming its rootfs into place and writing the marker. */
function recent(p: string, now: number): boolean {
  try {
    return now - statSync(p).ctimeMs < HOUR;
  } catch {
    return false;
  }
}
