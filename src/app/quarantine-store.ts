/**
 * `silo quarantine list|show|restore`: read the records app/quarantine.ts writes, show what a run tried
 * to plant (with a diff against what the project holds now, for text files), and put back, deliberately,
 * what the user wants. Restoring works beneath a descriptor of the project like the quarantine itself:
 * no symlink is followed on the way, and an existing path is not overwritten unless forced (then it is
 * quarantined in turn, so nothing is lost).
 */
import { closeSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { closeQuietly, lstatBeneath, moveEntry, openDir, openParent, readFileBeneath, readLinkBeneath } from "../core/beneath.ts";
import { SiloError } from "../core/errors.ts";
import type { HomePaths } from "../core/paths.ts";
import { unifiedDiff } from "./line-diff.ts";
import { quarantine, quarantineDir, writeMeta, type QuarantineMeta } from "./quarantine.ts";

/** Every record, oldest first (a record whose meta.json cannot be read is skipped). */
export function listRecords(home: HomePaths): QuarantineMeta[] {
  const dir = quarantineDir(home);
  if (!existsSync(dir)) return [];
  const out: QuarantineMeta[] = [];
  for (const id of readdirSync(dir).sort()) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, id, "meta.json"), "utf8")) as QuarantineMeta);
    } catch {
      // being written, or not silo's
    }
  }
  return out;
}

/** The record with this id, or the only one whose id starts with it. */
export function findRecord(home: HomePaths, id: string): QuarantineMeta {
  const all = listRecords(home);
  const exact = all.find((r) => r.id === id);
  if (exact) return exact;
  const some = all.filter((r) => r.id.startsWith(id));
  if (some.length === 1) return some[0]!;
  throw new SiloError(
    "E_USAGE",
    some.length ? `\`${id}\` names ${some.length} quarantine records` : `no quarantine record \`${id}\``,
    "`silo quarantine list` shows them",
  );
}

/** Lines for `silo quarantine show`: each entry, its reason, and its content against the project's now. */
export function describeRecord(home: HomePaths, r: QuarantineMeta): string[] {
  const files = join(quarantineDir(home), r.id, "files");
  const out = [`${r.id}  ${r.time}  ${r.tool}  ${r.root}`];
  let rootFd: number | null = null;
  try {
    rootFd = openDir(r.root);
  } catch {
    out.push(`  (the project ${r.root} is gone)`);
  }
  try {
    for (const e of r.entries) {
      out.push("", `${e.path} (${e.type}${e.restored ? `, restored ${e.restored}` : ""}): ${e.reason}`);
      if (e.restored) continue;
      for (const sub of walkEntry(files, e.path)) out.push(...describeFile(files, sub, rootFd));
    }
  } finally {
    if (rootFd !== null) closeQuietly(rootFd);
  }
  return out;
}

/** The quarantined entry and, for a directory, everything under it (paths relative to files/). */
function walkEntry(files: string, rel: string): string[] {
  let st;
  try {
    st = lstatSync(join(files, rel));
  } catch {
    return [];
  }
  if (!st.isDirectory()) return [rel];
  const out = [rel];
  for (const e of readdirSync(join(files, rel)).sort()) out.push(...walkEntry(files, join(rel, e)));
  return out;
}

function describeFile(files: string, rel: string, rootFd: number | null): string[] {
  const st = lstatSync(join(files, rel));
  const now = rootFd === null ? null : lstatBeneath(rootFd, rel);
  const nowSays = !now ? "not in the project now" : now.isSymbolicLink() ? "a symlink in the project now" : now.isDirectory() ? "a directory in the project now" : "in the project now";
  if (st.isSymbolicLink()) return [`--- ${rel}: symlink → ${readlinkSync(join(files, rel))} (${nowSays})`];
  if (st.isDirectory()) return [];
  if (!st.isFile()) return [`--- ${rel}: a ${st.isFIFO() ? "fifo" : st.isSocket() ? "socket" : "device"}`];
  if (st.size > 1 << 20) return [`--- ${rel}: ${st.size} bytes, too large to show (${nowSays})`];
  const planted = readFileSync(join(files, rel));
  if (!isText(planted)) return [`--- ${rel}: ${planted.length} bytes, binary (${nowSays})`];
  const current = rootFd === null ? null : readFileBeneath(rootFd, rel);
  const before = current && isText(current) ? current.toString("utf8") : "";
  const diff = unifiedDiff(before, planted.toString("utf8"));
  // A symlink in the project is not followed: it is named, and the planted file shown whole.
  const link = now?.isSymbolicLink() && rootFd !== null ? readLinkBeneath(rootFd, rel) : null;
  const from = current ? `project/${rel}` : link !== null ? `project/${rel} (a symlink → ${link}, not followed)` : "/dev/null";
  return [`--- ${from}`, `+++ quarantine/${rel}${diff.length ? "" : " (the same as in the project now)"}`, ...diff];
}

const isText = (b: Buffer) => b.length <= 1 << 20 && !b.subarray(0, 8192).includes(0);

export interface RestoreResult {
  restored: string[];
  /** Paths that exist in the project: not touched without --force. */
  refused: string[];
  /** Paths that existed and went to quarantine first (--force). */
  replaced: string[];
}

/**
 * Put entries of a record back at their paths in its project (all, or those named). Without `force`, an
 * entry whose path exists in the project is left in quarantine; with it, what is there is quarantined first.
 */
export function restoreRecord(home: HomePaths, r: QuarantineMeta, paths: string[], force: boolean): RestoreResult {
  const wanted = paths.length ? r.entries.filter((e) => paths.includes(e.path)) : r.entries.filter((e) => !e.restored);
  for (const p of paths)
    if (!r.entries.some((e) => e.path === p)) throw new SiloError("E_USAGE", `${r.id} holds no \`${p}\``, `\`silo quarantine show ${r.id}\` lists what it holds`);
  const dir = join(quarantineDir(home), r.id);
  const result: RestoreResult = { restored: [], refused: [], replaced: [] };
  const rootFd = openDir(r.root);
  const filesFd = openDir(join(dir, "files"));
  try {
    for (const e of wanted) {
      if (e.restored) throw new SiloError("E_USAGE", `${e.path} of ${r.id} was already restored (${e.restored})`);
      if (lstatBeneath(rootFd, e.path)) {
        if (!force) {
          result.refused.push(e.path);
          continue;
        }
        const moved = quarantine(home, { root: r.root, tool: r.tool, silent: true }, [{ base: r.root, from: e.path, path: e.path, reason: `replaced by \`silo quarantine restore --force\` of ${r.id}` }]);
        if (!moved.length) throw new SiloError("E_IO", `could not move ${join(r.root, e.path)} out of the way`);
        result.replaced.push(e.path);
      }
      try {
        const from = openParent(filesFd, e.path);
        try {
          const to = openParent(rootFd, e.path, true, 0o755);
          try {
            moveEntry(from.fd, from.name, to.fd, to.name);
          } finally {
            closeSync(to.fd);
          }
        } finally {
          closeSync(from.fd);
        }
      } catch (err) {
        if (err instanceof SiloError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === "ENOTDIR" || code === "ELOOP" ? "a directory on its path in the project is a symlink or not a directory, which silo does not follow" : (err as Error).message;
        throw new SiloError("E_IO", `cannot restore ${e.path} to ${r.root}: ${why}`);
      }
      e.restored = new Date().toISOString();
      writeMeta(dir, r);
      result.restored.push(e.path);
    }
  } finally {
    closeQuietly(rootFd);
    closeQuietly(filesFd);
  }
  return result;
}
