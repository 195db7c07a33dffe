/**
 * After the sandbox (git-guard.ts says why): apply the safe part of the `.git` overlay's upper to the real
 * `.git`, and quarantine every `.git` the sandbox made or changed elsewhere in the tree.
 *
 * The upper holds what the sandbox wrote: whole files (copied up, or new), directories, and whiteouts
 * (character devices 0/0: a deletion) and opaque directories (`user.overlay.opaque`: one that replaced a
 * deleted one). Files that git-check.ts accepts are copied beneath the real `.git` (core/beneath.ts: no
 * symlink followed at any component), to a temporary name and renamed into place, objects first and HEAD
 * last, so git never sees a ref to a missing object; a ref, HEAD or packed-refs that the host changed too
 * during the run keeps the host's version (the sandbox's goes to quarantine). Symlinks, special files and
 * everything outside the safe set are quarantined from the upper; deletions are applied to refs, reflogs,
 * the index and the *_HEAD files only.
 */
import { closeSync, copyFileSync, constants, existsSync, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, type Stats, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { at, closeQuietly, lstatBeneath, openDir, openParent, removeEntry } from "../core/beneath.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { checkGitFile, isApplyDir, isConflictChecked, isDeletable } from "./git-check.ts";
import { SCAN_BUDGET, uncheckedMark, type GitGuard } from "./git-guard.ts";
import { quarantine, type QuarantineItem } from "./quarantine.ts";

/** Apply the upper, scan the tree, quarantine; reports to the user through the quarantine's warning. */
export function finishGit(g: GitGuard, home: HomePaths): void {
  const t0 = performance.now();
  const items: QuarantineItem[] = [];
  try {
    if (g.dir) applyUpper(g, items);
  } catch (e) {
    // Nothing more is applied (the upper goes with the run directory); the scan below still runs.
    log.warn(`silo could not apply what ${g.tool} wrote to .git: ${(e as Error).message}; those writes are dropped`);
  }
  const t1 = performance.now();
  const scan = scanGit(g.root, g.skipRoot, g.sinceSec * 1000, g.budget ?? SCAN_BUDGET, relative(g.root, g.gitDir));
  log.debug(`git: upper applied in ${(t1 - t0).toFixed(1)} ms, tree scanned for .git in ${(performance.now() - t1).toFixed(1)} ms`);
  items.push(...scan.items);
  // Fail closed: what the walk did not reach is not passed as checked. Nothing there can be quarantined
  // (silo does not know what is), so it says so as an error now and at the start of every later run in the
  // project until a scan completes (or the user removes the mark after looking).
  const mark = uncheckedMark(home, g.root);
  if (!scan.complete) {
    const budget = g.budget ?? SCAN_BUDGET;
    log.error(`the project has more than ${budget} files and directories: silo could not check all of them for a .git, a repository (HEAD) or a protected name (.envrc, .vscode, ...) that ${g.tool} may have planted; look with \`find . -name .git -o -name HEAD -o -name .envrc -o -name .vscode\` before using git or an editor here (SILO_GIT_SCAN_BUDGET raises the limit)`);
    try {
      mkdirSync(dirname(mark), { recursive: true, mode: 0o700 });
      writeFileSync(mark, `${g.root}\n${new Date().toISOString()} ${g.tool}\n`);
    } catch (e) {
      log.warn(`could not record the unchecked project in ${mark}: ${(e as Error).message}`);
    }
  } else if (existsSync(mark)) rmSync(mark, { force: true });
  if (scan.unreadable.length)
    log.warn(`silo could not look for a planted .git inside ${scan.unreadable.slice(0, 3).join(", ")}${scan.unreadable.length > 3 ? ", ..." : ""} (unreadable); check before using git there`);
  if (items.length) quarantine(home, { root: g.root, tool: g.tool }, items);
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/** Order of application: objects, then refs and reflogs, then the rest, HEAD last. */
const rank = (rel: string) => (rel.startsWith("objects/") ? 0 : rel.startsWith("refs/") || rel === "packed-refs" ? 1 : rel === "HEAD" ? 3 : 2);

export function applyUpper(g: GitGuard, items: QuarantineItem[]): { applied: string[]; deleted: string[] } {
  const upper = join(g.dir!, "upper");
  const files: string[] = [];
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const shown = relative(g.root, g.gitDir); // .git, or where a .git symlink leads
  const q = (rel: string, reason: string) => items.push({ base: upper, from: rel, path: `${shown}/${rel}`, reason });
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(rel ? join(upper, rel) : upper);
    } catch (e) {
      if (rel) q(rel, `silo could not read it: ${(e as Error).message}`);
      return;
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(upper, r));
      if (isWhiteout(st)) whiteouts.push(r);
      else if (st.isDirectory()) {
        if (!isApplyDir(r)) q(r, "a part of .git that silo does not apply (config, hooks, another git directory, ...)");
        else {
          if ((r.startsWith("refs/") || r.startsWith("logs/")) && isOpaque(join(upper, r))) opaque.push(r);
          walk(r);
        }
      } else if (!st.isFile()) q(r, "a symlink or special file in .git");
      else {
        const why = checkGitFile(r, join(upper, r));
        if (why) q(r, why);
        else files.push(r);
      }
    }
  };
  walk("");
  // The coarse clock behind ctime lags by a tick at most: a host write before the run is not a conflict.
  const since = g.startMs - 20;
  const applied: string[] = [];
  const deleted: string[] = [];
  const realFd = openDir(g.gitDir);
  try {
    for (const r of files.sort((a, b) => rank(a) - rank(b))) {
      const cur = lstatBeneath(realFd, r);
      if (cur && r.startsWith("objects/") && cur.isFile() && !r.startsWith("objects/info/")) continue; // content-addressed: the same
      if (cur && isConflictChecked(r) && cur.ctimeMs >= since) {
        q(r, "the host changed it during the run too; the host's version was kept");
        continue;
      }
      try {
        copyBeneath(realFd, r, join(upper, r));
        applied.push(r);
      } catch (e) {
        q(r, `silo could not apply it to .git: ${(e as Error).message}`);
      }
    }
    // Deletions, and what an opaque directory dropped: refs and reflogs first, never objects or config.
    const gone = [...whiteouts.filter(isDeletable), ...opaque.flatMap((d) => droppedBy(realFd, upper, d))];
    for (const r of gone) {
      const cur = lstatBeneath(realFd, r);
      if (!cur || (isConflictChecked(r) && cur.ctimeMs >= since)) continue;
      try {
        const p = openParent(realFd, r);
        try {
          removeEntry(p.fd, p.name);
        } finally {
          closeSync(p.fd);
        }
        deleted.push(r);
      } catch (e) {
        log.warn(`could not apply the deletion of .git/${r} by ${g.tool}: ${(e as Error).message}`);
      }
    }
  } finally {
    closeQuietly(realFd);
  }
  const ignored = whiteouts.filter((w) => !isDeletable(w) && !w.startsWith("objects/"));
  if (ignored.length) log.debug(`git: deletions not applied: ${ignored.join(", ")}`);
  log.debug(`git: applied ${applied.length} file(s) and ${deleted.length} deletion(s) from the sandbox to ${g.gitDir}`);
  return { applied, deleted };
}

/** Copy `src` (a regular file silo checked) to `rel` beneath the directory open as `baseFd`: temp + rename. */
function copyBeneath(baseFd: number, rel: string, src: string) {
  const p = openParent(baseFd, rel, true);
  const tmp = `.silo-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  try {
    copyFileSync(src, at(p.fd, tmp), constants.COPYFILE_EXCL);
    // No execute, setuid or setgid bits: git's own files are 0644, objects 0444.
    const fd = openSync(at(p.fd, tmp), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, rel.startsWith("objects/") ? 0o444 : 0o644);
    } finally {
      closeSync(fd);
    }
    renameSync(at(p.fd, tmp), at(p.fd, p.name));
  } catch (e) {
    try {
      unlinkSync(at(p.fd, tmp));
    } catch {
      // not made
    }
    throw e;
  } finally {
    closeSync(p.fd);
  }
}

/** Entries of the real `dir` that an opaque `dir` in the upper no longer has (the sandbox deleted them). */
function droppedBy(realFd: number, upper: string, dir: string): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    const p = openParent(realFd, `${dir}/x`);
    try {
      names = readdirSync(at(p.fd));
    } finally {
      closeSync(p.fd);
    }
  } catch {
    return out;
  }
  for (const n of names) {
    let st: Stats | null = null;
    try {
      st = lstatSync(join(upper, dir, n));
    } catch {
      // gone in the sandbox
    }
    if (!st) out.push(`${dir}/${n}`);
    else if (st.isDirectory()) out.push(...droppedBy(realFd, upper, `${dir}/${n}`));
  }
  return out;
}

let getxattr: ((path: Uint8Array, name: Uint8Array, buf: Uint8Array, size: number) => number) | null = null;
/** Does the upper's directory carry overlayfs's opaque mark (userxattr mounts: `user.overlay.opaque`)? */
function isOpaque(path: string): boolean {
  if (!getxattr) {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const sym = { lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 } } as const;
    const lib = dlopen("libc.so.6", sym).symbols;
    getxattr = (p, n, b, s) => Number(lib.lgetxattr(p, n, b, s));
  }
  const enc = (s: string) => new TextEncoder().encode(`${s}\0`);
  const buf = new Uint8Array(8);
  return getxattr(enc(path), enc("user.overlay.opaque"), buf, buf.length) > 0 && buf[0] === 0x79; // "y"
}

/**
 * Names a host program runs or trusts in whatever directory it is started in or opened at, not only the
 * project root (app/protect.ts guards the root's): direnv's and mise's hooks on `cd`, an editor opened on
 * a subfolder (VS Code's folderOpen tasks, JetBrains' run configurations, Neovim's exrc), pre-commit and
 * git hook managers in a nested repository. `.cargo/config(.toml)` is matched as such: cargo reads it in
 * every parent of its working directory. `.tool-versions` is left out: mise and asdf read versions from it,
 * never a command. silo-stage.c `is_protected` keeps the same list.
 */
export const NESTED_PROTECTED = new Set([
  ".envrc", ".vscode", ".devcontainer", ".idea", ".zed", ".helix", ".nvim.lua", ".nvimrc", ".exrc",
  "mise.toml", ".mise.toml", "mise.local.toml", ".mise.local.toml", ".mise", ".pre-commit-config.yaml", ".githooks", ".husky",
]);
const isNestedProtected = (dir: string, name: string) =>
  NESTED_PROTECTED.has(name) || name.endsWith(".code-workspace") || (dir.endsWith("/.cargo") && (name === "config" || name === "config.toml"));

/** The entries that make a directory a repository for git (with HEAD): quarantined from the project root. */
const GIT_MARKERS = ["HEAD", "config", "commondir", "gitdir"];

type Mode = "tree" | "git" | "protected";

/**
 * What the run left below `root` that host git or another host tool would run, by names and lstat only,
 * without following symlinks, at most `budget` entries (iteratively: no depth limit):
 *
 * - a `.git`, or a directory git would take for a repository (one holding `HEAD`: a bare repository, or a
 *   `.git` made elsewhere and renamed), that is new or whose own ctime is at `sinceMs` or later (a rename
 *   updates the moved directory's ctime, an added or removed entry its parent's) goes whole; a `.git` file
 *   or symlink that changed too. In an older one, each changed entry outside the safe set (objects/ not
 *   walked). At the root itself (no `.git` there), the markers `HEAD`, `config`, `commondir` and `gitdir`.
 * - a protected name below the root (NESTED_PROTECTED) that is new or changed goes whole; in an older
 *   directory of that name, each changed entry.
 *
 * `skipRoot`: the root's `.git` and `gitDir` (where a `.git` symlink leads) are not looked at: overlaid, read-only,
 * or writable by trusted config.
 * Returns what to quarantine, whether the walk finished, and the directories it could not read.
 */
export function scanGit(root: string, skipRoot: boolean, sinceMs: number, budget: number, gitDir = ".git"): { items: QuarantineItem[]; complete: boolean; unreadable: string[] } {
  const skip = new Set(skipRoot ? [".git", gitDir] : []);
  const items: QuarantineItem[] = [];
  const unreadable: string[] = [];
  let left = budget;
  const q = (rel: string, reason: string) => items.push({ base: root, from: rel, path: rel, reason });
  const isNew = (st: Stats) => st.ctimeMs >= sinceMs || (st.birthtimeMs > 0 && st.birthtimeMs >= sinceMs);
  // [directory relative to root, how to look at it, its path inside the git directory it is in]
  const stack: [string, Mode, string][] = [["", "tree", ""]];
  while (stack.length > 0 && left >= 0) {
    const [rel, popped, inner] = stack.pop()!;
    let mode = popped;
    let ents;
    try {
      ents = readdirSync(rel ? join(root, rel) : root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") unreadable.push(rel);
      continue;
    }
    let skipNames: Set<string> | null = null;
    if (mode === "tree" && !skip.has(rel) && ents.some((e) => e.name === "HEAD")) {
      if (!rel) skipNames = rootMarkers(root, ents.map((e) => e.name), sinceMs, q);
      else {
        const st = lstatOrNull(join(root, rel));
        if (st && isNew(st)) {
          q(rel, "a directory the sandbox made or changed that git takes for a repository (HEAD, objects, refs): the host's git would use it");
          continue;
        }
        mode = "git";
      }
    }
    for (const e of ents) {
      if (--left < 0) break;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skipNames?.has(e.name) || skip.has(r)) continue;
      if (mode === "git") {
        const ir = inner ? `${inner}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (ir !== "objects") stack.push([r, "git", ir]);
          continue;
        }
        const st = lstatOrNull(join(root, r));
        if (st && st.ctimeMs >= sinceMs && (!st.isFile() || checkGitFile(ir, join(root, r)) !== null))
          q(r, "a file in a git directory the sandbox changed, which the host's git may run or read as configuration");
      } else if (mode === "protected") {
        const st = lstatOrNull(join(root, r));
        if (st && isNew(st)) q(r, "changed by the sandbox inside a directory a host tool runs or trusts");
        else if (st?.isDirectory()) stack.push([r, "protected", ""]);
      } else if (e.name === ".git") {
        const st = lstatOrNull(join(root, r));
        if (!st) continue;
        if (isNew(st)) q(r, "a .git the sandbox created, moved or changed: the host's git would use it");
        else if (st.isDirectory()) stack.push([r, "git", ""]);
      } else if (rel && isNestedProtected(rel, e.name)) {
        const st = lstatOrNull(join(root, r));
        if (st && isNew(st)) q(r, "a name a host tool runs or trusts (direnv, mise, editors, cargo, hook managers), created or changed by the sandbox");
        else if (st?.isDirectory()) stack.push([r, "protected", ""]);
      } else if (e.isDirectory()) stack.push([r, "tree", ""]);
    }
  }
  return { items, complete: left >= 0, unreadable };
}

/**
 * The project root holds HEAD (and had no `.git`): git in it would take it for a bare repository. When
 * any of the names that make it one changed during the run, its markers are quarantined (the root itself
 * cannot be). Returns the names the caller skips.
 */
function rootMarkers(root: string, names: string[], sinceMs: number, q: (rel: string, reason: string) => void): Set<string> {
  const markers = names.filter((n) => GIT_MARKERS.includes(n));
  const changed = names.some((n) => (GIT_MARKERS.includes(n) || n === "objects" || n === "refs" || n === "packed-refs") && (lstatOrNull(join(root, n))?.ctimeMs ?? 0) >= sinceMs);
  if (changed) for (const n of markers) q(n, "makes the project root a git repository the sandbox made or changed: the host's git would use it");
  return new Set(changed ? markers : []);
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
