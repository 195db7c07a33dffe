/**
 * Overlay upper directories as build layers. A build's writes land in an overlayfs upper dir on the host;
 * that dir is then used, unchanged, as a read-only lower of later runs. Deleting a file of a lower layer
 * leaves a whiteout (a character device 0/0; kernels ≥ 6.7 also read zero-size files carrying an
 * `overlay.whiteout` xattr), and a directory removed then re-created is marked opaque
 * (`user.overlay.opaque=y` when the overlay was mounted with `userxattr`, as rootless mounts are;
 * `trusted.overlay.opaque=y` for a mount by real root). Both kinds are honoured and kept as they are.
 *
 * A second build on top of an existing layer captures a fresh upper and folds it into a copy of the old
 * layer: `linkTree` copies the old layer with hard links (files are never written in place afterwards,
 * only replaced by rename, so the old generation stays intact), then `applyUpper` moves the new upper's
 * entries over it with overlay semantics.
 */
import { linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, renameSync, chmodSync, lchownSync, copyFileSync, symlinkSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { removeTree } from "../core/fs.ts";
import { getXattr, listXattrs, mknod, readXattrs, setXattr, writeXattrs } from "../core/xattr.ts";

const OVERLAY_NS = ["user.overlay.", "trusted.overlay."];
const isOverlayAttr = (name: string) => OVERLAY_NS.some((p) => name.startsWith(p));

export function isWhiteout(path: string, st: Stats = lstatSync(path)): boolean {
  if (st.isCharacterDevice() && st.rdev === 0) return true;
  return st.isFile() && st.size === 0 && (getXattr(path, "user.overlay.whiteout") !== null || getXattr(path, "trusted.overlay.whiteout") !== null);
}

/** `y`: the directory hides everything below it. (`x` only says it may hold xattr whiteouts.) */
export function isOpaque(path: string): boolean {
  for (const ns of OVERLAY_NS) if (getXattr(path, `${ns}opaque`)?.toString() === "y") return true;
  return false;
}

/** Which overlay xattr namespace a tree was written with, judged by its opaque markers (default: user). */
function opaqueAttr(sample: string): string {
  return listXattrs(sample).some((n) => n.startsWith("trusted.overlay.")) ? "trusted.overlay.opaque" : "user.overlay.opaque";
}

/** Make `path` a whiteout (a 0/0 character device), replacing what is there. */
export function makeWhiteout(path: string) {
  removeTree(path);
  mknod(path, 0o020000, 0);
}

/**
 * Refuse an upper dir that only works against the exact lowers it was built on: metacopy files keep their
 * data below, redirects point at lower paths. Both are off by default (and unavailable with userxattr).
 */
export function checkUpper(dir: string) {
  const bad: string[] = [];
  const visit = (p: string) => {
    for (const name of listXattrs(p))
      if (/overlay\.(metacopy|redirect)$/.test(name)) bad.push(`${p} (${name})`);
    const st = lstatSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(join(p, e));
  };
  visit(dir);
  if (bad.length)
    throw new SiloError(
      "E_SANDBOX",
      `the build's overlay used metacopy or redirect_dir, which a layer cannot keep: ${bad.slice(0, 3).join(", ")}`,
      "mount overlayfs without metacopy=on and redirect_dir=on for builds",
    );
}

/**
 * The sandbox creates its mount points (/workspace, /etc/hosts, cache dirs, ...) in the overlay, so they
 * land in a captured upper as empty files and directories. Writes under a mount go to the mount, never to
 * the upper, so an empty entry at a mount target is only that stub: drop it, and the empty directories
 * made to hold it (a layer with an empty /etc/hosts would shadow the image's). Opaque directories stay:
 * empty, they still hide what lies below.
 */
export function stripMountPoints(upper: string, guests: string[]) {
  const emptyStub = (p: string) => {
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch {
      return false;
    }
    if (st.isFile()) return st.size === 0 && !isWhiteout(p, st);
    return st.isDirectory() && readdirSync(p).length === 0 && !isOpaque(p);
  };
  for (const g of guests) {
    const parts = g.split("/").filter(Boolean);
    for (let n = parts.length; n > 0; n--) {
      const p = join(upper, ...parts.slice(0, n));
      if (!emptyStub(p)) break;
      removeTree(p);
    }
  }
}

function copyMeta(from: Stats, to: string, attrs?: Record<string, Buffer>) {
  try {
    lchownSync(to, from.uid, from.gid);
  } catch {
    // not ours to give away; the file keeps our uid
  }
  if (!from.isSymbolicLink()) chmodSync(to, from.mode & 0o7777);
  if (attrs) writeXattrs(to, attrs);
  lutimesSync(to, from.atime, from.mtime);
}

/** Copy `src` to `dst` (which must not exist) with hard links for everything but directories. */
export function linkTree(src: string, dst: string) {
  const st = lstatSync(src);
  if (!st.isDirectory()) return linkEntry(src, dst, st);
  mkdirSync(dst);
  for (const name of readdirSync(src)) linkTree(join(src, name), join(dst, name));
  copyMeta(st, dst, readXattrs(src));
}

function linkEntry(src: string, dst: string, st: Stats) {
  try {
    linkSync(src, dst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EMLINK") throw e;
    // Too many links to one inode (shared whiteouts can get there): make a copy instead.
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else if (st.isCharacterDevice() || st.isBlockDevice()) mknod(dst, st.mode, st.rdev);
    else copyFileSync(src, dst);
    copyMeta(st, dst, readXattrs(src));
  }
}

/**
 * Fold the upper dir `upper` into `layer` (a hard-linked copy of the previous layer), consuming `upper`:
 * what the upper holds replaces what the layer holds at the same path; whiteouts and opaque directories
 * replace whole subtrees; plain directories merge, taking the upper's metadata.
 */
export function applyUpper(upper: string, layer: string) {
  const attr = opaqueAttr(upper);
  const walk = (u: string, l: string) => {
    for (const name of readdirSync(u)) {
      const up = join(u, name);
      const lp = join(l, name);
      const ust = lstatSync(up);
      let lst: Stats | null = null;
      try {
        lst = lstatSync(lp);
      } catch {
        // nothing at this path in the old layer
      }
      if (ust.isDirectory() && !isOpaque(up) && lst?.isDirectory()) {
        walk(up, lp);
        copyMeta(ust, lp, Object.fromEntries(Object.entries(readXattrs(up)).filter(([k]) => !isOverlayAttr(k))));
        continue;
      }
      const wasWhiteout = lst !== null && isWhiteout(lp, lst);
      if (lst) removeTree(lp);
      renameSync(up, lp);
      // A directory created where the old layer had a whiteout must keep hiding what lies below.
      if (ust.isDirectory() && wasWhiteout && !isOpaque(lp)) setXattr(lp, attr, Buffer.from("y"));
    }
  };
  walk(upper, layer);
  const st = lstatSync(upper);
  copyMeta(st, layer);
  removeTree(upper);
}
