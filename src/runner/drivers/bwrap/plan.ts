/**
 * Host-side preparation of one sandbox: its run directory (SILO_HOME/run/<pid>-<id>: overlay upper, work
 * and mount point, bwrap's status), the checks a RunSpec must pass, and the project paths resolved on the
 * host. Symlinks are resolved here so that a link in the project can never turn a read-only bind or a
 * mask into a bind of some other host path.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import { SiloError } from "../../../core/errors.ts";
import { isAlive, realpathOr, removeTree } from "../../../core/fs.ts";
import { userHome } from "../../../core/paths.ts";
import type { RunSpec } from "../../spec.ts";
import { needsRelays } from "../../../net/plan.ts";

export interface SandboxPlan {
  id: string;
  /** pid of the silo process that owns the run dir (stale-dir detection, stage parent check). */
  ownerPid: number;
  runDir: string;
  /** The overlay's mount point (inside the stage's mount namespace only). */
  root: string;
  upper: string;
  work: string;
  /** RunSpec.layers: lowest first. */
  lowers: string[];
  /**
   * What the stage gives mount(2), relative to the run dir (it works there): `lowers` top first and
   * ':'-joined, each a symlink `l<i>` in the run dir; `gitDir` RunSpec.gitOverlay.dir, `../<name>` (a
   * sibling in SILO_HOME/run). overlayfs shows its options as given in /proc/self/mountinfo, so the
   * sandbox does not read SILO_HOME (and with it the user's name) there. Each path is relative to its
   * mount point's parent, which is how cache/inuse.ts resolves them again.
   */
  mount: { lowers: string; upper: string; work: string; gitDir: string };
  /**
   * Is the upper thrown away (not a build capture)? Then the stage puts it on a tmpfs of
   * `resources.rootfsMB` (argv.ts stageLimits), and `upper`/`work` on disk are only its fallback (made by
   * the stage when that tmpfs cannot hold an overlay upper, or when there is no cap).
   */
  tmpfsFallback: boolean;
  emptyFile: string;
  statusFile: string;
  errFile: string;
  relays: boolean;
  /**
   * Who sets the sandbox up under bwrap: the native stage (which also makes the network namespace and
   * serves the relays in it), or /bin/sh under unshare (joining the relay process's namespaces when there
   * are relays).
   */
  stage: "native" | "sh";
  readonly: { host: string; guest: string }[];
  masked: { guest: string; kind: "dir" | "file" }[];
  /**
   * Set when silo runs as root: the sandbox's uid 0 is then host uid 0 (so that files in /workspace stay
   * the caller's), and the kernel's root-owned knobs must be covered (argv.ts coverHostKnobs).
   * `binfmtMisc`: binfmt_misc is mounted on the host's /proc/sys/fs/binfmt_misc.
   */
  hostRoot?: { binfmtMisc: boolean };
}

const WS = "/workspace";

/** Refuse what no sandbox should get, whatever the layer above decided. */
export function checkSpec(spec: RunSpec, siloHome: string): void {
  const bad = (msg: string, hint?: string) => new SiloError("E_SANDBOX", msg, hint);
  if (spec.layers.length === 0) throw bad("the sandbox has no root filesystem (RunSpec.layers is empty)");
  const ws = realpathSync(spec.workspace);
  const home = userHome();
  const realHome = realpathOr(home);
  // An ancestor of SILO_HOME is fine: the layer above masks SILO_HOME inside it (maskedPaths).
  const why =
    ws === "/" ? "the whole filesystem" : ws === realHome ? "your home directory (~/.ssh, ~/.aws, ...)" : isInside(realpathOr(siloHome), ws) ? "silo's own state (it is inside SILO_HOME)" : null;
  if (why)
    throw bad(`refusing to mount ${ws} as /workspace: it would expose ${why}`, "run silo from a project directory (or create a silo.toml in the project root)");
  if (!spec.cwd.startsWith("/")) throw bad(`the working directory ${spec.cwd} is not an absolute guest path`);
  if (spec.argv.length === 0) throw bad("no command to run");
  const nul = (s: string) => s.includes("\0");
  if (spec.argv.some(nul) || Object.entries(spec.env).some(([k, v]) => nul(k) || nul(v) || k.includes("=") || k === ""))
    throw bad("an argument or environment variable contains a NUL byte (or a bad name)");
  // overlayfs splits its options on ',' and lowerdir on ':'.
  for (const p of [...spec.layers, siloHome, spec.captureUpper ?? "", spec.gitOverlay?.lower ?? "", spec.gitOverlay?.dir ?? ""])
    if (/[,:\\\n]/.test(p))
      throw bad(`the path ${p} contains ',', ':', '\\' or a newline, which overlayfs options cannot carry`, "move SILO_HOME to a plainer path");
}

/** Create the run directory and resolve the project paths. */
export function makePlan(spec: RunSpec, runRoot: string, ownerPid = process.pid, stage: SandboxPlan["stage"] = "sh"): SandboxPlan {
  const id = `${ownerPid}-${Math.random().toString(36).slice(2, 10)}`;
  const runDir = join(runRoot, id);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const capture = spec.captureUpper;
  const upper = capture ?? join(runDir, "upper");
  const work = capture ? `${capture}.work` : join(runDir, "work");
  // A thrown-away upper goes on the stage's tmpfs (the writable layer's cap); on disk only without a cap.
  const dirs = capture || !spec.resources.rootfsMB ? [upper, work, join(runDir, "root")] : [join(runDir, "root")];
  for (const d of dirs) mkdirSync(d, { recursive: true, mode: 0o755 });
  spec.layers.forEach((l, i) => symlinkSync(l, join(runDir, `l${i}`)));
  if (capture) {
    symlinkSync(capture, join(runDir, "cu"));
    symlinkSync(work, join(runDir, "cw"));
  }
  const emptyFile = join(runDir, "empty");
  const ws = realpathSync(spec.workspace);
  const readonly: SandboxPlan["readonly"] = [];
  for (const g of spec.readonlyPaths) {
    const r = resolveInWorkspace(ws, g);
    if (r) readonly.push({ host: r.host, guest: r.guest });
  }
  const masked: SandboxPlan["masked"] = [];
  for (const g of spec.maskedPaths) {
    const r = resolveInWorkspace(ws, g);
    if (r) masked.push({ guest: r.guest, kind: r.kind });
  }
  if (masked.some((m) => m.kind === "file")) writeFileSync(emptyFile, "");
  return {
    id,
    ownerPid,
    runDir,
    root: join(runDir, "root"),
    upper,
    work,
    lowers: [...spec.layers],
    mount: {
      lowers: spec.layers.map((_, i) => `l${i}`).reverse().join(":"),
      upper: capture ? "cu" : "upper",
      work: capture ? "cw" : "work",
      gitDir: spec.gitOverlay ? mountPath(runDir, spec.gitOverlay.dir) : "",
    },
    tmpfsFallback: !capture,
    emptyFile,
    statusFile: join(runDir, "status"),
    errFile: join(runDir, "err"),
    relays: needsRelays(spec.network),
    stage,
    readonly,
    masked,
    hostRoot: hostRootKnobs(),
  };
}

/** `dir` as the stage (working in `runDir`) names it: `../<name>` for a sibling, else as it is. */
const mountPath = (runDir: string, dir: string) => (dirname(dir) === dirname(runDir) ? `../${basename(dir)}` : dir);

let knobs: SandboxPlan["hostRoot"] | null = null;
/** What coverHostKnobs needs to know about the host, when silo runs as root (looked at once per process). */
function hostRootKnobs(): SandboxPlan["hostRoot"] {
  if (process.getuid?.() !== 0) return undefined;
  return (knobs ??= { binfmtMisc: existsSync("/proc/sys/fs/binfmt_misc/register") });
}

/**
 * A guest path under /workspace, resolved on the host: null when it does not exist or resolves outside
 * the project (a symlink to elsewhere leads nowhere inside the sandbox anyway, so there is nothing to do).
 */
export function resolveInWorkspace(ws: string, guest: string): { host: string; guest: string; kind: "dir" | "file" } | null {
  const rel = relative(WS, guest);
  if (rel === "" || rel.startsWith("..") || rel.startsWith(sep)) return null;
  let real: string;
  try {
    real = realpathSync(join(ws, rel));
  } catch {
    return null;
  }
  if (!isInside(ws, real) || real === ws) return null;
  return { host: real, guest: join(WS, relative(ws, real)), kind: statSync(real).isDirectory() ? "dir" : "file" };
}

/**
 * Remove a run directory without waiting: right after a sandbox ends the kernel is still tearing down its
 * namespaces and overlay, and removing the upper then takes 1 to 60 ms of contended locks. A detached
 * `rm` does it after silo has exited; if that is ever cut short, the next silo sees a dead pid and cleans.
 */
export function removeTreeLater(dir: string): void {
  openWorkDirs(dir);
  try {
    Bun.spawn(["rm", "-rf", "--", dir], { env: { PATH: "/usr/bin:/bin" }, stdio: ["ignore", "ignore", "ignore"] }).unref();
  } catch {
    removeTree(dir);
  }
}

/** overlayfs leaves work/work with mode 000 (in a run dir, or as the capture's work dir itself). */
function openWorkDirs(dir: string) {
  for (const w of [join(dir, "work", "work"), join(dir, "work"), join(dir, "w", "work")]) {
    try {
      chmodSync(w, 0o700);
    } catch {
      // not there
    }
  }
}


/**
 * A dead silo's run directory younger than this is left to its reaper, which removes it as that silo ends
 * (removing it here too would only contend with it, for milliseconds the next run would pay).
 */
export const STALE_RUN_GRACE_MS = 30_000;

/** Remove run directories whose silo is gone and whose reaper did not finish (killed with it, say). */
export function cleanStaleRuns(runRoot: string, keep?: string, graceMs = STALE_RUN_GRACE_MS): number {
  let names: string[];
  try {
    names = readdirSync(runRoot);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (!pid || name === keep || isAlive(pid)) continue;
    try {
      if (Date.now() - statSync(join(runRoot, name)).mtimeMs < graceMs) continue;
    } catch {
      continue; // its reaper got there first
    }
    removeTree(join(runRoot, name));
    n++;
  }
  return n;
}


const isInside = (dir: string, p: string) => p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/");

