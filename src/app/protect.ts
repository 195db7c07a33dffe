/**
 * Protected project paths: names a host program runs or trusts later (git hooks and config, direnv's
 * `.envrc` and mise's config, editors' workspace settings (and Vim's exrc), task runners' and cargo's config, dev containers). The sandbox
 * must not leave anything there (THREATS.md invariant 2). Three cases, told apart before the run with
 * lstat only (no symlink followed):
 *
 * - it exists and no component is a symlink: the driver binds it read-only (PreparedRun readonly).
 * - a component is a symlink: a mount protects only what the name resolves to (bwrap resolves the
 *   destination), so what it resolves to inside the project is walked in turn (and bound), and the name
 *   itself is recorded (its target, inode and ctime). At exit, a name that changed (removed, replaced,
 *   retargeted) goes to quarantine and the original symlink is put back.
 * - it does not exist: there is nothing to bind, and a mount point would itself be created in the
 *   project. Whatever is there at exit goes to quarantine.
 * New `*.code-workspace` files at the root are quarantined too. The exit check is a few lstat calls; only
 * what changed is handled, beneath a descriptor of the project (app/quarantine.ts, core/beneath.ts). In a
 * run handed over to the native stage's waiter, RUNDIR/watch (watchLines) tells it when to run that check.
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from "node:fs";
import { isAbsolute, join, posix } from "node:path";
import { log } from "../core/log.ts";
import { readRegularFile } from "../core/beneath.ts";
import type { HomePaths } from "../core/paths.ts";

/** What the host runs or trusts in a project (relative to its root); `[mount] protect` adds, `writable` removes. */
export const PROTECTED_PATHS = [
  ".git/hooks",
  ".git/config",
  "silo.toml",
  ".silo",
  ".envrc",
  ".githooks",
  ".husky",
  ".pre-commit-config.yaml",
  ".cargo/config.toml",
  ".cargo/config",
  ".devcontainer",
  ".vscode",
  ".idea",
  ".zed",
  ".helix",
  ".nvim.lua",
  ".nvimrc",
  ".exrc",
  "mise.toml",
  ".mise.toml",
  "mise.local.toml",
  ".mise.local.toml",
  ".mise",
];

/** Hook names git runs from a hooks directory (protected one by one where core.hooksPath is the root itself). */
const GIT_HOOKS = "applypatch-msg pre-applypatch post-applypatch pre-commit pre-merge-commit prepare-commit-msg commit-msg post-commit pre-rebase post-checkout post-merge pre-push pre-receive update proc-receive post-receive post-update reference-transaction push-to-checkout pre-auto-gc post-rewrite sendemail-validate fsmonitor-watchman p4-changelist p4-prepare-changelist p4-post-changelist p4-pre-submit post-index-change".split(" ");

const WORKSPACE_SUFFIX = ".code-workspace";

/** What silo knew of the protected names before the run: all `silo __after` needs (JSON). */
export interface ProtectSnapshot {
  root: string;
  tool: string;
  /** Protected paths that did not exist: what is there at exit is quarantined. */
  missing: string[];
  /** Protected names that are symlinks: put back if the sandbox changed them. */
  links: { path: string; target: string; sig: string }[];
  /** `*.code-workspace` names at the root before the run. */
  workspaces: string[];
}

/** The protected set for a project: built in, core.hooksPath, `[mount] protect`; less `[mount] writable`. */
export function protectedPaths(root: string, protect: string[], writable: string[]): string[] {
  const out = new Set<string>([...PROTECTED_PATHS, ...hooksPaths(root)]);
  for (const p of protect) {
    const rel = plainRelative(p);
    if (rel) out.add(rel);
    else log.warn(`[mount] protect: ignoring \`${p}\`, which is not a path inside the project`);
  }
  for (const w of writable) out.delete(posix.normalize(w).replace(/\/+$/, ""));
  return [...out];
}

/**
 * Look at the protected paths before the run (lstat, readlink: nothing followed, nothing opened). Returns
 * the snapshot and the project-relative paths to bind read-only.
 */
export function snapshotProtected(root: string, tool: string, paths: string[]): { snapshot: ProtectSnapshot; readonly: string[] } {
  const snapshot: ProtectSnapshot = { root, tool, missing: [], links: [], workspaces: [] };
  const readonly = new Set<string>();
  const seen = new Set<string>();
  const walk = (rel: string, depth: number) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const parts = rel.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const prefix = i === parts.length ? rel : parts.slice(0, i).join("/");
      // Plain lstat without exceptions: this runs before every sandbox (bigint only for a symlink's ctime).
      const st = lstatSync(join(root, prefix), { throwIfNoEntry: false });
      if (!st) return void snapshot.missing.push(rel);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(join(root, prefix));
        const big = lstatBig(join(root, prefix));
        if (big && !snapshot.links.some((l) => l.path === prefix)) snapshot.links.push({ path: prefix, target, sig: signature(big) });
        // What the name resolves to inside the project is protected in turn (as data: a path, not followed).
        const inside = resolveLink(root, prefix, target);
        if (inside !== null && depth < 8) walk([inside, ...parts.slice(i)].filter(Boolean).join("/"), depth + 1);
        return;
      }
      if (i < parts.length && !st.isDirectory()) return; // a file where a directory would be: nothing below
    }
    readonly.add(rel);
  };
  for (const p of paths) walk(p, 0);
  for (const name of workspaceFiles(root)) {
    snapshot.workspaces.push(name);
    walk(name, 0);
  }
  return { snapshot, readonly: [...readonly] };
}

/**
 * RUNDIR/watch for the native stage's waiter (silo-stage.c `changed`): it runs `silo __after` only when
 * a line says the project may have changed where it matters. "PATH": PATH exists now;
 * "=SIG\tPATH\tTARGET": lstat(PATH) is no longer SIG, or PATH no longer links to TARGET; "*N\tDIR\tSUFFIX": DIR no longer holds N names ending in SUFFIX.
 */
export function watchLines(s: ProtectSnapshot): string[] {
  return [
    ...s.missing.map((p) => join(s.root, p)),
    ...s.links.map((l) => `=${l.sig}\t${join(s.root, l.path)}\t${l.target}`),
    `*${s.workspaces.length}\t${s.root}\t${WORKSPACE_SUFFIX}`,
  ];
}

/**
 * After the run: quarantine what the sandbox left at a protected path and put back the symlinks it
 * changed. Cheap when nothing changed (one lstat per missing path and per link, one readdir of the root).
 * Returns the paths quarantined.
 */
export async function settleProtected(home: HomePaths, s: ProtectSnapshot): Promise<string[]> {
  const changedLinks = s.links.filter((l) => {
    const st = lstatBig(join(s.root, l.path));
    // The target too: where ctime is coarse, a new link can get the old one's inode within a tick.
    return !st || signature(st) !== l.sig || readLink(join(s.root, l.path)) !== l.target;
  });
  const appeared = s.missing.filter((p) => lstatSync(join(s.root, p), { throwIfNoEntry: false }) !== undefined);
  const workspaces = workspaceFiles(s.root).filter((n) => !s.workspaces.includes(n));
  if (!changedLinks.length && !appeared.length && !workspaces.length) return [];
  const { settleChanges } = await import("./protect-settle.ts");
  return settleChanges(home, s, changedLinks, appeared, workspaces);
}

/** The link's target as a project-relative path, or null when it leads outside the project (or to its root). */
export function resolveLink(root: string, linkRel: string, target: string): string | null {
  const abs = isAbsolute(target) ? posix.normalize(target) : posix.join(root, posix.dirname(linkRel), target);
  if (!abs.startsWith(root + "/")) return null;
  return abs.slice(root.length + 1) || null;
}

/** `ino:ctime_ns`, as silo-stage.c prints it: a new or replaced name has a new inode or ctime. */
export const signature = (st: BigIntStats) => `${st.ino}:${st.ctimeNs}`;

function readLink(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}

function lstatBig(p: string): BigIntStats | null {
  return lstatSync(p, { bigint: true, throwIfNoEntry: false }) ?? null;
}

/** A plain project-relative path ("a/b"), or null for absolute, `..`, or the root itself. */
function plainRelative(p: string): string | null {
  if (isAbsolute(p)) return null;
  const n = posix.normalize(p).replace(/\/+$/, "");
  if (n === "." || n === "" || n === ".." || n.startsWith("../")) return null;
  return n;
}

/**
 * A regular file's text, at most 1 MiB; null otherwise. The project chooses what `.git/config` is: a FIFO
 * would block a plain read forever, a link to /dev/zero would never end.
 */
function readSmallFile(path: string): string | null {
  return readRegularFile(path, 1 << 20)?.toString("utf8") ?? null;
}

/** `*.code-workspace` at the root: VS Code runs its tasks and settings when one is opened. */
function workspaceFiles(root: string): string[] {
  try {
    return readdirSync(root).filter((n) => n.endsWith(WORKSPACE_SUFFIX));
  } catch {
    return [];
  }
}

/**
 * core.hooksPath from the project's .git/config, read on the host as data (never given to git), when it
 * names a directory inside the project: git runs what is there. Where it is the root itself, each hook name.
 */
export function hooksPaths(root: string): string[] {
  const text = readSmallFile(join(root, ".git", "config"));
  if (text === null) return [];
  const out: string[] = [];
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|\s)[#;].*$/, "").trim();
    const head = /^\[\s*([^\]\s"]+)(?:\s+"[^"]*")?\s*\]\s*(.*)$/.exec(line);
    let body = line;
    if (head) {
      section = head[1]!.toLowerCase();
      body = head[2]!;
    }
    const kv = /^hookspath\s*=\s*(.*)$/i.exec(body);
    if (section !== "core" || !kv) continue;
    const value = kv[1]!.replace(/^"(.*)"$/, "$1");
    if (!value || value.startsWith("~")) continue;
    const abs = isAbsolute(value) ? posix.normalize(value) : posix.join(root, value);
    if (abs === root || abs === root + "/") out.push(...GIT_HOOKS);
    else if (abs.startsWith(root + "/")) out.push(abs.slice(root.length + 1));
  }
  return out;
}
