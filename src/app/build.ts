/**
 * `silo build`, `silo rebuild`, `silo build --remove` and the baking of registry `postInstall` steps:
 * commands whose writes to the sandbox's root filesystem become a persistent layer (src/cache/layers.ts).
 *
 * A build runs each step in a build sandbox (runtime allowlist + installAllow) whose overlay upper dir is
 * on the host (RunSpec.captureUpper), stacked on the image, the global layer (for a project build) and the
 * layer accumulated so far. After each step the upper is folded into that accumulated layer; when all
 * steps succeed the result becomes the scope's current generation by rename. Until then nothing a run
 * reads has changed: a failed or killed build leaves the previous layer as it was.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { homePaths, type HomePaths } from "../core/paths.ts";
import { mountedLayers } from "../cache/inuse.ts";
import { forgetProjectLayer, recordProjectLayer } from "../cache/layer-index.ts";
import {
  commitLayer, currentLayer, ensureProjectSiloDir, globalBase, isRecordedLayer, layerIdentity, makeBuildDir, projectBase, readMeta, removeLayer,
  type BuildStep, type LayerMeta, type Scope,
} from "../cache/layers.ts";
import { applyUpper, checkUpper, linkTree, stripMountPoints } from "../cache/overlay.ts";
import { syncFs } from "../core/xattr.ts";
import { oweSweep, paySweep, stripSetidBits } from "./strip-setid.ts";
import { removeTree } from "../core/fs.ts";
import { VERSION } from "../version.ts";

export interface BuildOptions {
  tool: string;
  cwd: string;
  global?: boolean;
  driver?: string;
  env?: Record<string, string>;
  tty?: boolean;
  /** `--ssh-agent`: the steps reach the host's ssh-agent (git+ssh dependencies). */
  sshAgent?: boolean;
}

interface Target {
  tool: string;
  scope: Scope;
  base: string;
  /** The project root (project scope); "" for a global build (its /workspace is a directory of its own). */
  root: string;
}

/**
 * A global layer is stacked under every project (THREATS.md invariant 6), so a global build sees nothing of
 * the directory it was typed in, which may be a hostile project: an empty /workspace of its own (0700, outside
 * SILO_HOME), no project config (its env, image or driver), and the caches of global builds (runStep), as
 * the postInstall steps and the LSP install (app/lsp.ts). A project build runs in its project.
 */
async function inOwnWorkspace(t: Target, opts: BuildOptions, build: (opts: BuildOptions) => Promise<number>): Promise<number> {
  if (t.scope !== "global") return build(opts);
  const work = mkdtempSync(join(tmpdir(), "silo-global-build-"));
  try {
    return await build({ ...opts, cwd: work });
  } finally {
    removeTree(work);
  }
}

/**
 * The `silo build` command line. `--global` and `--remove` may also come right after the tool name
 * (`silo build node --remove`): no command starts with them, so they are read as silo's own flags there.
 */
export async function runBuildCommand(opts: BuildOptions & { argv: string[]; remove?: boolean }, home: HomePaths = homePaths()): Promise<number> {
  const argv = [...opts.argv];
  let { global, remove } = opts;
  while (argv[0] === "--global" || argv[0] === "--remove") {
    if (argv.shift() === "--global") global = true;
    else remove = true;
  }
  // The seed's separator, `silo build node -- npm install`: a `--` right after the tool is silo's, not the command.
  if (argv[0] === "--") argv.shift();
  if (remove) {
    if (argv.length) throw new SiloError("E_USAGE", "silo build --remove takes no command", `silo build ${opts.tool} --remove${global ? " --global" : ""}`);
    const had = await removeBuild({ tool: opts.tool, cwd: opts.cwd, global }, home);
    if (had) log.success(`removed the ${global ? "global" : "project"} build layer of ${opts.tool}`);
    else log.info(`${opts.tool} has no ${global ? "global" : "project"} build layer; nothing removed`);
    return 0;
  }
  return buildTool({ ...opts, global, argv }, home);
}

/** `silo build <tool> <cmd…>`: add one step to the tool's layer. Resolves with the command's exit code. */
export async function buildTool(opts: BuildOptions & { argv: string[] }, home: HomePaths = homePaths()): Promise<number> {
  if (opts.argv.length === 0)
    throw new SiloError("E_USAGE", `silo build ${opts.tool}: name the command to run`, `e.g. \`silo build ${opts.tool} pip install -r requirements.txt\`, or --remove`);
  const t = await resolveTarget(opts, home);
  return inOwnWorkspace(t, opts, (o) => runBuild(home, t, o, { append: true, steps: [{ argv: opts.argv, origin: "user" }] }));
}

export interface RebuildOptions extends BuildOptions {
  tool: string;
  /** Replace the stored script with this shell script. */
  setup?: string;
}

/** Re-run a layer's stored script (or a new `--setup` script) on the current image, from nothing. */
export async function rebuildTool(opts: RebuildOptions, home: HomePaths = homePaths()): Promise<number> {
  const t = await resolveTarget(opts, home);
  const prev = currentLayer(t.base, t.scope);
  const steps: BuildStep[] = opts.setup !== undefined ? [{ script: opts.setup, origin: "user" }] : prev ? (readMeta(prev)?.steps ?? []) : [];
  if (steps.length === 0)
    throw new SiloError(
      "E_USAGE",
      prev ? `the ${t.scope} layer of ${t.tool} has no stored script to re-run` : `${t.tool} has no ${t.scope} build layer${t.scope === "project" ? " in this project" : ""}`,
      `create one with \`silo build ${t.scope === "global" ? "--global " : ""}${t.tool} <command>\`, or give a script with --setup`,
    );
  log.info(`rebuilding the ${t.scope} layer of ${t.tool} (${steps.length} step${steps.length === 1 ? "" : "s"})`);
  return inOwnWorkspace(t, opts, (o) => runBuild(home, t, o, { append: false, steps }));
}

/** The tools with a layer in a scope (for `silo rebuild --all`). */
export async function toolsWithLayers(opts: { cwd: string; global?: boolean }, home: HomePaths = homePaths()): Promise<string[]> {
  const { readdirSync } = await import("node:fs");
  const dir = opts.global ? home.builds : join(await projectRoot(opts.cwd, home), ".silo");
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => currentLayer(join(dir, n), opts.global ? "global" : "project") !== null).sort();
}

/** `silo build <tool> --remove [--global]`: drop the layer (generations a sandbox still uses stay until gc). */
export async function removeBuild(opts: { tool: string; cwd: string; global?: boolean }, home: HomePaths = homePaths()): Promise<boolean> {
  const scope: Scope = opts.global ? "global" : "project";
  const base = scope === "global" ? globalBase(home, opts.tool) : projectBase(await projectRoot(opts.cwd, home), opts.tool);
  const had = currentLayer(base, scope) !== null;
  const inUse = mountedLayers();
  const { kept } = removeLayer(base, (p) => inUse.has(p));
  if (scope === "project") forgetProjectLayer(home, base);
  if (kept.length) log.info(`${kept.length} generation(s) still used by a running sandbox stay until \`silo cache gc\``);
  return had;
}

/**
 * Registry `postInstall` steps (`npm install -g …`), baked into the tool's global layer at install. The
 * user's own global steps for the tool are re-run after them. Nothing to do when the current global layer
 * was baked from the same steps on the same image.
 */
export async function bakePostInstall(tool: string, postInstall: string[], digest: string, home: HomePaths = homePaths()): Promise<void> {
  const base = globalBase(home, tool);
  const prev = currentLayer(base, "global");
  const meta = prev ? readMeta(prev) : null;
  const baked = (meta?.steps ?? []).filter((s) => s.origin === "postInstall").map((s) => ("script" in s ? s.script : s.argv.join(" ")));
  if (meta && meta.digest === digest && JSON.stringify(baked) === JSON.stringify(postInstall)) return;
  const steps: BuildStep[] = [
    ...postInstall.map((script) => ({ script, origin: "postInstall" as const })),
    ...(meta?.steps ?? []).filter((s) => s.origin !== "postInstall"),
  ];
  log.info(`${tool}: running its install steps (${postInstall.join("; ")})`);
  const work = mkdtempSync(join(tmpdir(), "silo-postinstall-"));
  try {
    const code = await runBuild(home, { tool, scope: "global", base, root: work }, { tool, cwd: work, tty: false }, { append: false, steps });
    if (code !== 0)
      throw new SiloError("E_SANDBOX", `${tool}: its install steps failed (exit ${code})`, `retry with \`silo rebuild ${tool} --global\` (network: the tool's installAllow hosts)`);
  } finally {
    removeTree(work);
  }
}

// --- internals ---------------------------------------------------------------------------------------

async function projectRoot(cwd: string, home: HomePaths): Promise<string> {
  const { findProjectConfig } = await import("../config/load.ts");
  const file = findProjectConfig(cwd);
  if (!file)
    throw new SiloError("E_CONFIG", "a project build layer needs a silo.toml in the project root", "create one with `silo init`, or build for all projects with --global");
  const { realpathSync } = await import("node:fs");
  void home;
  return realpathSync(dirname(file));
}

async function resolveTarget(opts: BuildOptions, home: HomePaths): Promise<Target> {
  if (opts.global) return { tool: opts.tool, scope: "global", base: globalBase(home, opts.tool), root: "" };
  const root = await projectRoot(opts.cwd, home);
  return { tool: opts.tool, scope: "project", base: projectBase(root, opts.tool), root };
}

/** Where every sandbox has a mount besides RunSpec.mounts (bwrap creates their mount points). */
const MOUNT_TARGETS = ["/workspace", "/etc/hosts", "/etc/resolv.conf", "/tmp", "/proc", "/dev", "/run/silo/ssh-agent.sock", "/run/silo"];

const argvOf = (s: BuildStep) => ("script" in s ? ["/bin/sh", "-c", s.script] : s.argv);
const describeStep = (s: BuildStep) => ("script" in s ? s.script : s.argv.join(" "));

/**
 * Run `plan.steps` in order, on top of the scope's current layer (`append`: `silo build`) or on nothing
 * (`silo rebuild`, postInstall), then commit a new generation whose stored script is the old script (when
 * appending) plus these steps. Holds the scope's lock throughout, so concurrent builds queue.
 */
async function runBuild(home: HomePaths, t: Target, opts: BuildOptions, plan: { append: boolean; steps: BuildStep[] }): Promise<number> {
  const { withLock } = await import("../image/lock.ts");
  mkdirSync(t.base, { recursive: true });
  if (t.scope === "project") ensureProjectSiloDir(dirname(dirname(t.base)));
  return withLock(
    join(t.base, ".lock"),
    async () => {
      // A project layer this SILO_HOME did not build (it came with the repository) is not built upon.
      const current = plan.append ? currentLayer(t.base, t.scope) : null;
      const from = current && (t.scope === "global" || isRecordedLayer(home, current)) ? current : null;
      const fromMeta = from ? readMeta(from) : null;
      const dir = makeBuildDir(t.base);
      const acc = join(dir, "root");
      try {
        if (from) linkTree(from.root, acc);
        else mkdirSync(acc, { mode: 0o755 });
        let digest = "";
        for (const step of plan.steps) {
          const r = await runStep(home, t, opts, step, acc, join(dir, "upper"));
          if (r.code !== 0) {
            log.error(`build step failed (exit ${r.code}): ${describeStep(step)}`);
            log.info(`the ${t.scope} layer of ${t.tool} is unchanged`);
            return r.code;
          }
          digest = r.digest;
        }
        // Steps added to a layer built on an older image do not make it current: keep its digest, so runs
        // go on suggesting `silo rebuild`.
        if (fromMeta && fromMeta.digest !== digest) digest = fromMeta.digest;
        flush(acc);
        const ctx = await loadContext(home, opts.cwd, t.tool);
        const meta: LayerMeta = {
          version: 1,
          tool: t.tool,
          scope: t.scope,
          digest,
          image: ctx.installed?.image ?? ctx.tool?.image,
          globalGen: t.scope === "project" ? currentLayer(globalBase(home, t.tool), "global")?.gen : undefined,
          steps: [...(fromMeta?.steps ?? []), ...plan.steps],
          builtAt: new Date().toISOString(),
          silo: VERSION,
        };
        const { gen, previous } = commitLayer(t.base, dir, meta);
        // Recorded with its root's identity: runs stack only project layers this SILO_HOME built (or trusted).
        if (t.scope === "project")
          recordProjectLayer(home, { base: t.base, tool: t.tool, project: dirname(dirname(t.base)), digest, gen, id: layerIdentity(join(t.base, gen, "root")) ?? undefined });
        if (previous && previous !== gen && !mountedLayers().has(join(t.base, previous, "root"))) removeTree(join(t.base, previous));
        log.success(`${t.tool}: ${t.scope} layer ${from ? "updated" : "built"} (${meta.steps.length} step${meta.steps.length === 1 ? "" : "s"} in its script)`);
        return 0;
      } finally {
        if (existsSync(dir)) removeTree(dir);
      }
    },
    { onWait: () => log.info(`waiting for another build of ${t.tool}'s ${t.scope} layer`) },
  );
}

async function loadContext(home: HomePaths, cwd: string, tool: string) {
  const { loadRunContext } = await import("./context.ts");
  return loadRunContext(home, cwd, tool);
}

/** One step in its own sandbox: lowers = image (+ global layer) + the accumulated layer; upper captured. */
async function runStep(home: HomePaths, t: Target, opts: BuildOptions, step: BuildStep, acc: string, upper: string) {
  const { prepareRun } = await import("./run.ts");
  log.info(`${t.tool} (${t.scope} build): ${describeStep(step)}`);
  mkdirSync(upper, { mode: 0o755 });
  const prepared = await prepareRun(
    {
      tool: t.tool, args: [], argv: argvOf(step), cwd: opts.cwd, driver: opts.driver, env: opts.env, tty: opts.tty, sshAgent: opts.sshAgent, purpose: "build",
      globalBuildCaches: t.scope === "global",
    },
    home,
  );
  let code: number;
  const imageRoot = prepared.spec.layers[0]!;
  const started = Date.now() - 1000; // file times come from a coarser clock
  const owed = oweSweep(home, prepared.spec.workspace, started);
  try {
    const below = t.scope === "project" ? currentLayer(globalBase(home, t.tool), "global") : null;
    prepared.spec.layers = [imageRoot, ...(below ? [below.root] : []), acc];
    prepared.spec.captureUpper = upper;
    prepared.spec.keepSetuid = true; // dpkg sets them (ssh-keysign); the layer's directories are private
    code = (await prepared.driver.run(prepared.spec, prepared.hooks)).code;
  } finally {
    await prepared.cleanup();
    removeTree(`${upper}.work`);
    stripProjectSetid(prepared.spec.workspace, started);
    paySweep(owed);
  }
  if (code === 0) {
    checkUpper(upper);
    stripMountPoints(upper, [...MOUNT_TARGETS, ...prepared.spec.mounts.map((m) => m.guest)]);
    applyUpper(upper, acc);
  }
  removeTree(upper);
  return { code, digest: `sha256:${basename(imageRoot)}` };
}

/** The build's filter let chmod set setuid bits (for its layer): none stays on a file in the project. */
function stripProjectSetid(workspace: string, since: number) {
  const t0 = performance.now();
  const stripped = stripSetidBits(workspace, since);
  log.debug(`build: setuid/setgid sweep of ${workspace} in ${(performance.now() - t0).toFixed(1)} ms`);
  if (stripped.length)
    log.warn(`the build left setuid/setgid files in the project; their bits were removed: ${stripped.slice(0, 5).join(", ")}${stripped.length > 5 ? ", ..." : ""}`);
}

/**
 * Flush the layer to disk before it becomes current. The sandbox is gone, so every write it made is in the
 * host's page cache already (an overlay upper is a plain directory); syncfs makes the commit durable too,
 * so a crash right after the rename cannot leave a current layer with empty files.
 */
function flush(dir: string) {
  const fd = openSync(dir, "r");
  try {
    syncFs(fd);
  } finally {
    closeSync(fd);
  }
}

