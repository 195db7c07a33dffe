/**
 * Which files of a `.git` silo copies from a sandbox's writes to the real repository, and the checks each
 * must pass (git-apply.ts). Git reads all of these as data: none names a program, a hook, a config, or
 * another git directory. Everything else (config, hooks/, info/, commondir, gitdir, worktrees/, modules/,
 * objects/info/alternates, rebase and sequencer todo lists with their `exec` lines, anything new) is
 * quarantined.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";

const HEX = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** Files with one object id per line first (FETCH_HEAD has more after it). */
const OID_FILES = new Set(["ORIG_HEAD", "FETCH_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "REBASE_HEAD", "AUTO_MERGE"]);
/** Messages git shows or edits, never runs. */
const TEXT_FILES = new Set(["COMMIT_EDITMSG", "MERGE_MSG", "MERGE_MODE", "SQUASH_MSG"]);
const PACK = /^objects\/pack\/(?:pack-[0-9a-f]{40,64}\.(?:pack|idx|rev|bitmap|mtimes|keep|promisor)|multi-pack-index)$/;
const OBJECT_INFO = /^objects\/info\/(?:packs|commit-graph|commit-graphs\/(?:commit-graph-chain|graph-[0-9a-f]{40,64}\.graph))$/;
const LOOSE = /^objects\/[0-9a-f]{2}\/(?:[0-9a-f]{38}|[0-9a-f]{62})$/;

/** A ref name as `git check-ref-format` allows it (with at least `refs/` and one more component). */
export function isRefName(name: string): boolean {
  if (!name.startsWith("refs/") || name.endsWith("/") || name.endsWith(".") || name.includes("..") || name.includes("@{")) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return false;
  return name.split("/").every((c) => c !== "" && !c.startsWith(".") && !c.endsWith(".lock"));
}

/** Directories to walk into (the rest of a directory is quarantined whole). */
export function isApplyDir(rel: string): boolean {
  if (rel === "objects" || rel === "objects/pack" || rel === "objects/info" || rel === "objects/info/commit-graphs") return true;
  if (/^objects\/[0-9a-f]{2}$/.test(rel)) return true;
  if (rel === "refs" || rel === "logs" || rel === "logs/refs") return true;
  return (rel.startsWith("refs/") && isRefName(`${rel}/x`)) || (rel.startsWith("logs/refs/") && isRefName(`${rel.slice(5)}/x`));
}

/** May a deletion of this path (an overlay whiteout) be applied? Objects are never deleted (gc may do it). */
export function isDeletable(rel: string): boolean {
  if (rel === "index" || OID_FILES.has(rel) || TEXT_FILES.has(rel)) return true;
  return (rel.startsWith("refs/") && isRefName(rel)) || rel === "logs/HEAD" || (rel.startsWith("logs/refs/") && isRefName(rel.slice(5)));
}

/** Refs, HEAD and packed-refs are not overwritten when the host changed them during the run too. */
export const isConflictChecked = (rel: string): boolean => !rel.startsWith("objects/") && rel !== "index" && !TEXT_FILES.has(rel);

/** null when the file at `path` (a regular file, `rel` inside `.git`) may be applied; else why not. */
export function checkGitFile(rel: string, path: string): string | null {
  if (LOOSE.test(rel)) return checkLooseObject(rel, path);
  if (PACK.test(rel) || OBJECT_INFO.test(rel)) return null;
  if (TEXT_FILES.has(rel)) return null;
  if (rel === "logs/HEAD" || (rel.startsWith("logs/refs/") && isRefName(rel.slice(5)))) return null;
  if (rel === "index") return readHead(path, 4) === "DIRC" ? null : "not a git index";
  // Read whole below: bounded, so a sandbox cannot make silo read gigabytes.
  if (statSync(path).size > (rel === "packed-refs" ? 64 << 20 : 1 << 20)) return "too large for silo to check";
  const text = () => readFileSync(path, "latin1");
  if (rel === "HEAD") return isRefValue(text(), true) ? null : "HEAD is neither `ref: refs/...` nor an object id";
  if (rel.startsWith("refs/")) {
    if (!isRefName(rel)) return "not a valid ref name";
    return isRefValue(text(), true) ? null : "a ref that holds neither an object id nor `ref: refs/...`";
  }
  if (OID_FILES.has(rel)) return text().split("\n").every((l, i, all) => (l === "" && i === all.length - 1) || HEX.test(l.split(/[\t ]/)[0]!)) ? null : `${rel} holds something other than object ids`;
  if (rel === "packed-refs") return checkPackedRefs(text());
  return "not a part of .git that silo applies";
}

function isRefValue(s: string, symbolic: boolean): boolean {
  const v = s.endsWith("\n") ? s.slice(0, -1) : s;
  if (HEX.test(v)) return true;
  return symbolic && v.startsWith("ref: ") && isRefName(v.slice(5));
}

function checkPackedRefs(s: string): string | null {
  const lines = s.split("\n");
  for (const [i, l] of lines.entries()) {
    if (l === "" && i === lines.length - 1) continue;
    if (i === 0 && l.startsWith("# pack-refs with:")) continue;
    if (l.startsWith("^") && HEX.test(l.slice(1))) continue;
    const [oid, name, ...rest] = l.split(" ");
    if (rest.length || !HEX.test(oid ?? "") || !isRefName(name ?? "")) return `packed-refs line ${i + 1} is not \`<id> refs/...\``;
  }
  return null;
}

function readHead(path: string, n: number): string {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0)).toString("latin1");
  } finally {
    closeSync(fd);
  }
}

/**
 * Inflating more than this much compressed data could take a gigabyte (deflate's ratio reaches ~1000:1):
 * a bigger loose object is checked for its zlib header and name only, as pack files are.
 */
const MAX_VERIFIED_OBJECT = 64 << 10;

/** A loose object's name is the hash of its inflated content: anything else is not git's. */
function checkLooseObject(rel: string, path: string): string | null {
  const name = rel.slice(8, 10) + rel.slice(11);
  // A zlib stream: a 2-byte header (deflate, no preset dictionary), then raw deflate (Bun's inflate; node:zlib
  // costs ~50 ms to load), then a checksum that the content hash makes redundant.
  const big = statSync(path).size > MAX_VERIFIED_OBJECT;
  const z = big ? Buffer.from(readHead(path, 2), "latin1") : readFileSync(path);
  if (z.length < 2 || (z[0]! & 0x0f) !== 8 || (z[1]! & 0x20) !== 0 || (z[0]! * 256 + z[1]!) % 31 !== 0) return "a loose object that is not a zlib stream";
  if (big) return null;
  let body: Buffer;
  try {
    body = Buffer.from(Bun.inflateSync(z.subarray(2)));
  } catch {
    return "a loose object that does not inflate";
  }
  if (!/^(?:blob|tree|commit|tag) \d+\0/.test(body.subarray(0, 32).toString("latin1"))) return "a loose object without an object header";
  const h = new Bun.CryptoHasher(name.length === 40 ? "sha1" : "sha256");
  h.update(body);
  return h.digest("hex") === name ? null : "a loose object whose content does not match its name";
}
