/**
 * Quarantine: where silo puts what a sandbox left in the project that a host program would run or read as
 * configuration (a planted `.envrc`, a replaced `.vscode`, a git hook), when it could not stop the write.
 *
 *   SILO_HOME/quarantine/<id>/files/<path>   what was moved, as it was (a symlink stays a symlink)
 *   SILO_HOME/quarantine/<id>/meta.json      {id, root, tool, time, entries: [{path, reason, type}]}
 *
 * Every move works beneath a descriptor of the directory silo trusts and never follows a symlink at any
 * component (core/beneath.ts): a sandbox that made `.git` a link to `~/.ssh` gets the link moved, not
 * the keys. `silo quarantine list|show|restore` (app/quarantine-store.ts) reads these records.
 */
import { closeSync, mkdirSync, writeFileSync, renameSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { closeQuietly, kindOf, moveEntry, openDir, openParent, splitRelative, at } from "../core/beneath.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";

export interface QuarantineRun {
  /** The project root (realpath). */
  root: string;
  /** The tool whose sandbox left the items. */
  tool: string;
  /** No warning (the caller says what happened: `silo quarantine restore --force`). */
  silent?: boolean;
}

export interface QuarantineItem {
  /** A directory silo trusts: the project root, or a directory silo created. */
  base: string;
  /** The item's path relative to `base`. */
  from: string;
  /** The path as shown to the user (and restored to), relative to the project root. */
  path: string;
  /** Why it was moved, for `silo quarantine show`. */
  reason: string;
}

export interface QuarantineEntry {
  path: string;
  reason: string;
  /** file, directory, symlink, fifo, socket, device. */
  type: string;
  /** When `silo quarantine restore` put it back. */
  restored?: string;
}

export interface QuarantineMeta {
  id: string;
  root: string;
  tool: string;
  time: string;
  entries: QuarantineEntry[];
}

/** SILO_HOME/quarantine. */
export const quarantineDir = (home: HomePaths) => join(home.home, "quarantine");

/**
 * Move each item into SILO_HOME/quarantine/<id>/files/<path>, never following a symlink at any component
 * of base/from and never leaving base; record meta.json. Returns the paths moved; warns once naming them.
 * An item that is not there is skipped; one that cannot be moved is named in a warning of its own.
 */
export function quarantine(home: HomePaths, run: QuarantineRun, items: QuarantineItem[]): string[] {
  const entries: QuarantineEntry[] = [];
  let dest: { id: string; dir: string; filesFd: number } | undefined;
  const bases = new Map<string, number>();
  try {
    for (const item of items) {
      let src: { fd: number; name: string } | undefined;
      try {
        splitRelative(item.path);
        let baseFd = bases.get(item.base);
        if (baseFd === undefined) bases.set(item.base, (baseFd = openDir(item.base)));
        try {
          src = openParent(baseFd, item.from);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOENT") continue;
          if (code === "ENOTDIR" || code === "ELOOP") throw new Error("a directory on its path is a symlink or not a directory, which silo does not follow");
          throw e;
        }
        let st;
        try {
          st = lstatSync(at(src.fd, src.name));
        } catch {
          continue; // not there
        }
        dest ??= makeRecordDir(home);
        const to = openParent(dest.filesFd, item.path, true);
        try {
          moveEntry(src.fd, src.name, to.fd, to.name);
        } finally {
          closeSync(to.fd);
        }
        entries.push({ path: item.path, reason: item.reason, type: kindOf(st) });
      } catch (e) {
        log.warn(
          `${run.tool} left ${join(run.root, item.path)} (${item.reason}) and silo could not move it away: ${(e as Error).message}; delete it before using this project`,
        );
      } finally {
        if (src) closeQuietly(src.fd);
      }
    }
  } finally {
    for (const fd of bases.values()) closeQuietly(fd);
    if (dest) closeQuietly(dest.filesFd);
  }
  if (!dest) return [];
  const meta: QuarantineMeta = { id: dest.id, root: run.root, tool: run.tool, time: new Date().toISOString(), entries };
  writeMeta(dest.dir, meta);
  const moved = entries.map((e) => e.path);
  if (moved.length && !run.silent)
    log.warn(
      `${run.tool} left ${moved.join(", ")} in the project, which the host would run or trust; silo moved ${moved.length > 1 ? "them" : "it"} to quarantine ${dest.id} (see \`silo quarantine show ${dest.id}\`; \`silo quarantine restore\` puts back what you want)`,
    );
  return moved;
}

/** Write a record's meta.json by temp file + rename (readers see the old record or the new). */
export function writeMeta(dir: string, meta: QuarantineMeta): void {
  const tmp = join(dir, `.meta.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(meta, null, 2) + "\n", { mode: 0o600 });
  renameSync(tmp, join(dir, "meta.json"));
}

/** A fresh SILO_HOME/quarantine/<id> (0700, like SILO_HOME and the quarantine dir), named by the time. */
function makeRecordDir(home: HomePaths): { id: string; dir: string; filesFd: number } {
  mkdirSync(home.home, { recursive: true, mode: 0o700 });
  mkdirSync(quarantineDir(home), { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  for (let n = 0; ; n++) {
    const id = n ? `${stamp}-${process.pid}-${n}` : `${stamp}-${process.pid}`;
    const dir = join(quarantineDir(home), id);
    try {
      mkdirSync(dir, 0o700);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && n < 100) continue;
      throw e;
    }
    mkdirSync(join(dir, "files"), 0o700);
    return { id, dir, filesFd: openDir(join(dir, "files")) };
  }
}
