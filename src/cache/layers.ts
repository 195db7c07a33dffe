/**
 * The build-layer store. A scope (one tool's global layer, SILO_HOME/builds/<tool>/, or its project layer,
 * <project>/.silo/<tool>/) holds generations and a `current` symlink naming one of them:
 *
 *   current -> g-<time>-<digest12>       (swapped by rename: readers see the old or the new, never half)
 *   g-<time>-<digest12>/root/            the layer: an overlay upper dir, used as a read-only lower
 *   g-<time>-<digest12>/build.json       what built it: the steps (the stored script), image digest, time
 *   tmp-<pid>-<rand>/                    a build in progress; never read, removed once its pid is gone
 *
 * The image digest in the generation's name lets `silo run` spot a layer built on an older image with one
 * readlink, without reading build.json: stacking stays O(1) in the number and size of layers.
 *
 * A project's `.silo/` may come with the repository (THREATS.md invariant 3): a project layer is stacked
 * only when this SILO_HOME built it or the user trusted it, i.e. SILO_HOME/state/project-layers.json records
 * its scope, its generation and the identity (device, inode, ctime) of its `root/` as it was then. A copy
 * under the same name, a replaced directory or a re-pointed `current` does not match. What that identity
 * does not see is a file changed in place deep inside a recorded layer; the sandbox cannot do that (`.silo`
 * is bound read-only), someone who can write the project directory outside any sandbox can.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { isAlive, removeTree, writeFileAtomic } from "../core/fs.ts";
import { log } from "../core/log.ts";
import { joinUnder, type HomePaths } from "../core/paths.ts";

export type Scope = "global" | "project";

/** One command of a layer's script: an argv (`silo build node npm ci`) or a shell script (`--setup`, postInstall). */
export type BuildStep = { argv: string[]; origin?: "user" | "postInstall" } | { script: string; origin?: "user" | "postInstall" };

export interface LayerMeta {
  version: 1;
  tool: string;
  scope: Scope;
  /** Manifest digest of the image the layer was built on. */
  digest: string;
  image?: string;
  /** For a project layer: the global generation that was below it. */
  globalGen?: string;
  steps: BuildStep[];
  builtAt: string;
  silo: string;
}

export interface LayerRef {
  scope: Scope;
  /** The scope directory (holds `current` and the generations). */
  base: string;
  gen: string;
  /** The layer directory to stack. */
  root: string;
}

const GEN = /^g-[0-9a-z]+-([0-9a-f]{12})$/;
const TMP = /^tmp-(\d+)-[0-9a-z]+$/;

export const globalBase = (home: HomePaths, tool: string) => joinUnder(home.builds, tool);
export const projectBase = (root: string, tool: string) => joinUnder(join(root, ".silo"), tool);

export const genName = (digest: string, now = Date.now()) => `g-${now.toString(36)}-${digest.replace(/^sha256:/, "").slice(0, 12)}`;
export const genDigest12 = (gen: string) => GEN.exec(gen)?.[1] ?? null;

/**
 * The current generation of a scope, or null. A project's `.silo` arrives with the repository, so it may be
 * hostile: the link must name a generation directly inside the scope, and the resolved layer path must be
 * that same path (no symlinked `.silo`, tool or generation directory leading elsewhere on the host).
 */
export function currentLayer(base: string, scope: Scope): LayerRef | null {
  let gen: string;
  try {
    gen = readlinkSync(join(base, "current"));
  } catch {
    return null;
  }
  if (!GEN.test(gen)) {
    log.warn(`ignoring ${join(base, "current")}: it does not name a build generation`);
    return null;
  }
  const root = join(base, gen, "root");
  let real: string;
  try {
    real = realpathSync(root);
  } catch {
    log.warn(`ignoring the build layer ${base}: ${gen}/root is missing (silo build --remove, then build again)`);
    return null;
  }
  let realBase: string;
  try {
    realBase = realpathSync(base);
  } catch {
    return null;
  }
  // SILO_HOME is ours and may sit behind a symlink (/home -> /var/home); a project's .silo may not.
  if (real !== join(realBase, gen, "root") || (scope === "project" && realBase !== base)) {
    log.warn(`ignoring the build layer ${base}: it resolves outside its directory (${real})`);
    return null;
  }
  return { scope, base, gen, root };
}

export function readMeta(ref: Pick<LayerRef, "base" | "gen">): LayerMeta | null {
  try {
    return JSON.parse(readFileSync(join(ref.base, ref.gen, "build.json"), "utf8")) as LayerMeta;
  } catch {
    return null;
  }
}

const warned = new Set<string>();

/** Device, inode and ctime of a layer's `root/`: what a copy, a replacement or a chmod changes. */
export function layerIdentity(root: string): string | null {
  try {
    const st = statSync(root, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  } catch {
    return null;
  }
}

/**
 * Did this SILO_HOME build (or the user trust) the project layer `ref` as it is now? One read of the small
 * index (src/cache/layer-index.ts writes it) and one stat, only for projects that have a layer.
 */
export function isRecordedLayer(home: HomePaths, ref: LayerRef): boolean {
  let all: { base: string; gen?: string; id?: string }[];
  try {
    all = JSON.parse(readFileSync(join(home.state, "project-layers.json"), "utf8"));
  } catch {
    return false;
  }
  const rec = Array.isArray(all) ? all.find((r) => r.base === ref.base) : undefined;
  return !!rec && rec.gen === ref.gen && rec.id !== undefined && rec.id === layerIdentity(ref.root);
}

/**
 * The build layers a run stacks on the image, lowest first: the global layer, then the project's. `root` is
 * the real path of the project root; `imageRootfs` the image's rootfs (SILO_HOME/rootfs/<manifest hex>),
 * whose name says which image a layer should have been built on. A layer built on another image is still
 * used, with a warning. Two readlinks and a realpath per layer: stacking costs the same for any layer size.
 */
export function buildLayersFor(home: HomePaths, tool: string, root: string, imageRootfs: string): string[] {
  const out: string[] = [];
  const hex = basename(imageRootfs);
  const hex12 = /^[0-9a-f]{64}$/.test(hex) ? hex.slice(0, 12) : null;
  for (const [scope, base] of [["global", globalBase(home, tool)], ["project", projectBase(root, tool)]] as const) {
    const ref = currentLayer(base, scope);
    if (!ref) continue;
    if (scope === "project" && !isRecordedLayer(home, ref)) {
      if (!warned.has(base)) {
        warned.add(base);
        log.warn(`ignoring the build layer ${base}: this silo did not build it (did it come with the project?)`);
        log.hint(`build it here with \`silo rebuild ${tool}\` or \`silo build ${tool} <command>\`, or review it and run \`silo trust\` to use it as it is`);
      }
      continue;
    }
    if (hex12 && genDigest12(ref.gen) !== hex12 && !warned.has(base)) {
      warned.add(base);
      log.warn(`${tool}'s ${scope} build layer was built on an older image than the one ${tool} uses now (sha256:${hex12})`);
      log.hint(`run \`silo rebuild ${tool}${scope === "global" ? " --global" : ""}\` to re-run its script on the current image`);
    }
    out.push(ref.root);
  }
  return out;
}

/** A fresh build directory inside the scope (same filesystem as the generations: the commit is a rename). */
export function makeBuildDir(base: string): string {
  mkdirSync(base, { recursive: true });
  removeStaleBuildDirs(base);
  const dir = join(base, `tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  // Private (and so the generation it becomes): a build may leave setuid/setgid files and file
  // capabilities in its layer (dpkg does), which no other host user may reach, in a project's .silo too.
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** Leftovers of builds that were killed (their pid is gone). Returns what was (or would be) removed. */
export function staleBuildDirs(base: string): string[] {
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .filter((n) => {
      const m = TMP.exec(n);
      return m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]));
    })
    .map((n) => join(base, n));
}

/** Remove what killed builds left. Best effort: a leftover never stops a run (the next try removes it). */
export function removeStaleBuildDirs(base: string) {
  for (const d of staleBuildDirs(base)) {
    try {
      removeTree(d); // overlay work dirs are mode 000: rm alone fails for an unprivileged owner
    } catch (e) {
      log.debug(`could not remove ${d}: ${(e as Error).message}`);
    }
  }
}

/**
 * Make the build in `dir` (holding `root/`) the scope's current generation: write build.json, rename the
 * dir to its generation name, then swap `current` by renaming a new symlink over it. Returns the previous
 * generation's name (the caller removes it when no sandbox uses it).
 */
export function commitLayer(base: string, dir: string, meta: LayerMeta): { gen: string; previous: string | null } {
  writeFileAtomic(join(dir, "build.json"), JSON.stringify(meta, null, 2) + "\n");
  let gen = genName(meta.digest);
  while (existsSync(join(base, gen))) gen = genName(meta.digest, Date.now() + 1 + Math.floor(Math.random() * 1000));
  renameSync(dir, join(base, gen));
  const previous = currentGen(base);
  const link = join(base, `current.${process.pid}.tmp`);
  rmSync(link, { force: true });
  symlinkSync(gen, link);
  renameSync(link, join(base, "current"));
  return { gen, previous };
}

export function currentGen(base: string): string | null {
  try {
    const g = readlinkSync(join(base, "current"));
    return GEN.test(g) ? g : null;
  } catch {
    return null;
  }
}

/** Generations of a scope that are not current (left by a build whose old generation was still in use). */
export function oldGenerations(base: string): string[] {
  if (!existsSync(base)) return [];
  const cur = currentGen(base);
  return readdirSync(base).filter((n) => GEN.test(n) && n !== cur && lstatSync(join(base, n)).isDirectory());
}

/** Drop the scope's layer: unlink `current` first (new runs stop using it at once), then the generations. */
export function removeLayer(base: string, inUse: (path: string) => boolean = () => false): { removed: string[]; kept: string[] } {
  const removed: string[] = [];
  const kept: string[] = [];
  rmSync(join(base, "current"), { force: true });
  if (!existsSync(base)) return { removed, kept };
  for (const n of readdirSync(base)) {
    if (!GEN.test(n) && !TMP.test(n)) continue;
    const p = join(base, n);
    if (GEN.test(n) && inUse(join(p, "root"))) kept.push(p);
    else {
      removeTree(p);
      removed.push(p);
    }
  }
  return { removed, kept };
}

/** A project's `.silo/` keeps machine-local layers: keep them out of version control. */
export function ensureProjectSiloDir(root: string) {
  const dir = join(root, ".silo");
  mkdirSync(dir, { recursive: true });
  const ignore = join(dir, ".gitignore");
  if (!existsSync(ignore)) writeFileSync(ignore, "# silo build layers: machine-local, rebuilt with `silo rebuild`\n*\n");
}
