// Build layers are overlayfs upper dirs reused as lowers. These tests mount real overlays (rootless, in a
// user namespace, with `userxattr` as an unprivileged user must) to check that what silo does to upper dirs
// (folding a second build into a first with linkTree + applyUpper) gives exactly the view the build saw.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyUpper, isOpaque, isWhiteout, linkTree } from "../../../src/cache/overlay.ts";
import { tmp } from "../../helpers/silo.ts";
import { describeTree } from "../../unit/cache/_tree.ts";
import { removeScratch, scratch } from "./_helpers.ts";

afterAll(removeScratch);

const NOBODY = 65534;

/** Run `script` in a new user+mount namespace with an overlay of `lowers` (lowest first) on `dir/merged`. */
function inOverlay(dir: string, lowers: string[], upper: string, script: string, asNobody: boolean) {
  const work = join(dir, `work-${Math.random().toString(36).slice(2)}`);
  const merged = join(dir, `merged-${Math.random().toString(36).slice(2)}`);
  mkdirSync(work);
  mkdirSync(merged);
  if (asNobody) for (const p of [work, merged, upper]) chownSync(p, NOBODY, NOBODY);
  // overlayfs lists lowerdirs top first.
  const opts = `lowerdir=${[...lowers].reverse().join(":")},upperdir=${upper},workdir=${work},userxattr`;
  const inner = `mount -t overlay overlay -o ${opts} ${merged} && cd ${merged} && ${script}`;
  const argv = asNobody
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "unshare", "-Urm", "sh", "-ec", inner]
    : ["unshare", "-Urm", "sh", "-ec", inner];
  const p = Bun.spawnSync(argv, { stderr: "pipe", stdout: "pipe" });
  if (p.exitCode !== 0) throw new Error(`overlay script failed: ${p.stderr.toString()}`);
  return merged;
}

/** Snapshot the merged view (files, modes, contents) by copying it out from inside the namespace. */
function snapshot(dir: string, lowers: string[], out: string, asNobody: boolean) {
  const upper = join(dir, `snap-upper-${Math.random().toString(36).slice(2)}`);
  mkdirSync(upper);
  mkdirSync(out);
  if (asNobody) chownSync(out, NOBODY, NOBODY);
  inOverlay(dir, lowers, upper, `cp -a . ${out}/`, asNobody);
  return describeTree(out, { mtime: false });
}

function makeImage(root: string, owner?: number) {
  mkdirSync(join(root, "d/sub"), { recursive: true });
  writeFileSync(join(root, "a"), "image a\n");
  writeFileSync(join(root, "keep"), "image keep\n");
  writeFileSync(join(root, "d/f"), "image d/f\n");
  writeFileSync(join(root, "d/sub/g"), "image d/sub/g\n");
  mkdirSync(join(root, "usr/lib"), { recursive: true });
  writeFileSync(join(root, "usr/lib/x.so"), "image lib\n");
  if (owner !== undefined) Bun.spawnSync(["chown", "-R", `${owner}:${owner}`, root]);
}

for (const asNobody of [false, true]) {
  describe(`build layers on a real overlay (${asNobody ? "unprivileged user" : "root in a user namespace"})`, () => {
    test("whiteouts and opaque dirs are what the upper holds", () => {
      const dir = scratch(tmp("silo-ovl-"));
      if (asNobody) chmodSync(dir, 0o755);
      const image = join(dir, "image");
      makeImage(image, asNobody ? NOBODY : undefined);
      const up = join(dir, "u");
      mkdirSync(up);
      inOverlay(dir, [image], up, "rm a && rm -rf d && mkdir d && echo new > d/h && echo b > b", asNobody);
      expect(isWhiteout(join(up, "a"))).toBe(true);
      expect(lstatSync(join(up, "a")).isCharacterDevice()).toBe(true);
      expect(isOpaque(join(up, "d"))).toBe(true);
      expect(readdirSync(join(up, "d"))).toEqual(["h"]);
    });

    test("a second build folded into the first gives the view the second build saw", () => {
      const dir = scratch(tmp("silo-ovl-"));
      if (asNobody) chmodSync(dir, 0o755);
      const image = join(dir, "image");
      makeImage(image, asNobody ? NOBODY : undefined);
      // Build 1: deletes an image file and a directory, re-creates the directory, adds files.
      const l1 = join(dir, "l1");
      mkdirSync(l1);
      inOverlay(dir, [image], l1, "rm a && rm -rf d && mkdir d && echo one > d/h && echo b > b && mkdir -p opt/pkg && echo v1 > opt/pkg/v && ln -s v opt/pkg/link", asNobody);
      const l1Before = describeTree(l1);
      // Build 2 on top: brings a deleted file back, deletes a file of build 1 and one of the image,
      // removes a directory of build 1 and replaces it, edits a file of build 1, chmods an image file.
      const u2 = join(dir, "u2");
      mkdirSync(u2);
      inOverlay(dir, [image, l1], u2, "echo again > a && rm b && rm keep && rm -rf opt/pkg && mkdir opt/pkg && echo v2 > opt/pkg/v && echo more >> d/h && chmod 600 usr/lib/x.so && mkdir -p e && echo e > e/f", asNobody);
      const expected = snapshot(dir, [image, l1, u2], join(dir, "expected"), asNobody);

      const l2 = join(dir, "l2");
      linkTree(l1, l2);
      const u2copy = join(dir, "u2copy");
      renameSync(u2, u2copy);
      applyUpper(u2copy, l2);
      expect(snapshot(dir, [image, l2], join(dir, "got"), asNobody)).toEqual(expected);
      // The old generation is untouched (a running sandbox may still use it).
      expect(describeTree(l1)).toEqual(l1Before);
      expect(expected["a"]!.sha256).toBe(new Bun.CryptoHasher("sha256").update("again\n").digest("hex"));
      expect(expected["keep"]).toBeUndefined();
      expect(expected["b"]).toBeUndefined();
      expect(Object.keys(expected).filter((k) => k.startsWith("opt/pkg/")).sort()).toEqual(["opt/pkg/v"]);
      expect(expected["usr/lib/x.so"]!.mode).toBe(0o600);
    });
  });
}
