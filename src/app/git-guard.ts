/**
 * The project's git, guarded (THREATS.md invariant 2). Host git runs code that files under `.git/` name
 * (`core.fsmonitor`, hooks, `commondir` → another config, a `gitdir:` file), and editors run `git status`
 * every few seconds, so nothing the sandbox writes may reach a `.git` while it runs, or unchecked after.
 *
 * - A real `.git` directory at the project root (or one that a `.git` symlink leads to inside it) is seen through an overlay (RunSpec.gitOverlay): git works
 *   inside (commit, branch, stash), the host sees none of it, and the `.git` mount point cannot be renamed
 *   or replaced. After the sandbox, git-apply.ts applies the safe part of the upper (objects, refs, HEAD,
 *   index, ...: each checked) to the real `.git` and quarantines the rest.
 * - A `.git` file at the root (a worktree's or submodule's `gitdir:`) is bound read-only.
 * - A `.git` symlink at the root is app/protect.ts's: it puts the link back if the sandbox changed it.
 * - Anywhere else (and at the root when there was none): a `.git` that is new or changed after the run is
 *   quarantined (git-apply.ts scanGit).
 * - A trusted `[mount] writable = [".git"]` keeps today's direct bind of the root `.git`.
 *
 * This part runs before the sandbox, on every run: one lstat, and for a repository three mkdirs.
 */
import { existsSync, lstatSync, mkdirSync, realpathSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";

/** What the exit side needs: plain data, it travels in handoff.json to `silo __after`. */
export interface GitGuard {
  root: string;
  tool: string;
  /** When the run started (ms): a ref the host changed after it keeps the host's version. */
  startMs: number;
  /**
   * Entries whose ctime (seconds) is at least this count as the sandbox's in the scan for planted `.git`s:
   * ctime comes from a coarse clock (a tick behind) and some filesystems keep whole seconds, so the scan
   * takes a second's margin (a false alarm costs a look; a miss would let a planted `.git` stay).
   */
  sinceSec: number;
  /** The overlay's directory (upper, work, mnt), when the root `.git` is overlaid. */
  dir: string | null;
  /** The git directory the upper applies to: ROOT/.git, or where a `.git` symlink leads inside the project. */
  gitDir: string;
  /** The root `.git` is not scanned: overlaid, or writable by trusted config. */
  skipRoot: boolean;
  /** Entries the exit scan looks at before it gives up (and says so): SCAN_BUDGET, or SILO_GIT_SCAN_BUDGET. */
  budget?: number;
  /** Lines for the native waiter's RUNDIR/watch (native/silo-stage.c `changed`): any true → `silo __after`. */
  watch: string[];
}

/**
 * The scan at exit stops after this many entries and says so. Measured on a 100,000-file tree (README):
 * ~60 ms in the native waiter, ~150 ms in silo, warm cache.
 */
export const SCAN_BUDGET = 300_000;

/** SILO_GIT_SCAN_BUDGET (a positive integer) lowers or raises it: tests reach the limit without 300,000 files. */
function scanBudget(): number {
  const n = Number(process.env.SILO_GIT_SCAN_BUDGET);
  return Number.isSafeInteger(n) && n > 0 ? n : SCAN_BUDGET;
}

/** SILO_HOME/unchecked/<hash of the root>: an exit scan stopped at the budget there (git-apply.ts finishGit). */
export const uncheckedMark = (home: HomePaths, root: string) => join(home.home, "unchecked", Bun.hash(root).toString(16));

/** Decide how the sandbox sees the root `.git`; creates the overlay's directories. */
export function guardGit(root: string, tool: string, home: HomePaths, writable: boolean): { guard: GitGuard; overlay?: { lower: string; dir: string; guest: string }; readonly: string[] } {
  const startMs = Date.now();
  const mark = uncheckedMark(home, root);
  if (existsSync(mark))
    log.warn(`an earlier run's exit scan could not check all of this project for a planted .git, repository or protected name (too many files); look, then remove ${mark}`);
  const sinceSec = Math.floor(startMs / 1000) - 1;
  let lower = join(root, ".git");
  let kind: "dir" | "file" | "link" | "none" = "none";
  try {
    const st = lstatSync(lower);
    kind = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "link" : "file";
    // `.git` → a directory elsewhere in the project (`.bare`): that directory is overlaid where it is.
    if (kind === "link") {
      const real = realpathSync(lower);
      if (real.startsWith(`${root}/`) && statSync(real).isDirectory()) lower = real;
    }
  } catch {
    // no repository (or a dangling link)
  }
  const overlaid = kind === "dir" || (kind === "link" && lower !== join(root, ".git"));
  // A directory is overlaid (or read-only), a file read-only, a symlink watched by app/protect.ts (it puts
  // the link back if the sandbox changed it): only a missing one is scanned.
  const guard: GitGuard = { root, tool, startMs, sinceSec, dir: null, gitDir: lower, skipRoot: kind !== "none" || writable, budget: scanBudget(), watch: [] };
  const guest = join("/workspace", relative(root, lower));
  const readonly = kind === "file" && !writable ? ["/workspace/.git"] : [];
  let overlay: { lower: string; dir: string; guest: string } | undefined;
  // overlayfs options cannot carry these; such a `.git` is bound read-only instead (git cannot write inside).
  if (overlaid && !writable && /[,:\\\n]/.test(lower)) readonly.push(guest);
  else if (overlaid && !writable) {
    const dir = join(home.run, `${process.pid}-${Math.random().toString(36).slice(2, 10)}-git`);
    mkdirSync(home.run, { recursive: true, mode: 0o700 });
    mkdirSync(dir, { mode: 0o700 });
    for (const d of ["upper", "work", "mnt"]) mkdirSync(join(dir, d), { mode: 0o755 });
    overlay = { lower, dir, guest };
    guard.dir = dir;
    guard.watch.push(`${dir}/upper/`);
  }
  guard.watch.push(`${guard.skipRoot ? "?" : "+"}${sinceSec}\t${guard.budget}\t${root}`);
  return { guard, overlay, readonly };
}
