// Folding an overlay upper into a layer, on synthetic uppers (the real-overlay checks are in
// test/integration/cache/overlay.test.ts).
import { describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyUpper, isOpaque, isWhiteout, linkTree, makeWhiteout, stripMountPoints } from "../../../src/cache/overlay.ts";
import { mknod, setXattr } from "../../../src/core/xattr.ts";
import { tmp } from "../../helpers/silo.ts";

const canMknod = (() => {
  const d = tmp();
  try {
    mknod(join(d, "w"), 0o020000, 0);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
})();

describe.skipIf(!canMknod)("applyUpper", () => {
  test("whiteouts, opaque dirs, files replacing dirs, merged dirs; the old layer is untouched", () => {
    const d = tmp();
    const old = join(d, "old");
    mkdirSync(join(old, "keep/sub"), { recursive: true });
    writeFileSync(join(old, "keep/sub/a"), "old a");
    writeFileSync(join(old, "keep/b"), "old b");
    mkdirSync(join(old, "replaced"));
    writeFileSync(join(old, "replaced/x"), "x");
    makeWhiteout(join(old, "gone-in-image"));
    const layer = join(d, "layer");
    linkTree(old, layer);

    const up = join(d, "up");
    mkdirSync(join(up, "keep"), { recursive: true });
    writeFileSync(join(up, "keep/b"), "new b"); // a file rewritten (copied up, then written)
    makeWhiteout(join(up, "keep/sub")); // a directory deleted
    writeFileSync(join(up, "replaced"), "now a file");
    mkdirSync(join(up, "gone-in-image")); // re-created over the old layer's whiteout
    writeFileSync(join(up, "gone-in-image/f"), "f");
    mkdirSync(join(up, "opaque"));
    setXattr(join(up, "opaque"), "user.overlay.opaque", Buffer.from("y"));
    applyUpper(up, layer);

    expect(readFileSync(join(layer, "keep/b"), "utf8")).toBe("new b");
    expect(isWhiteout(join(layer, "keep/sub"))).toBe(true);
    expect(readFileSync(join(layer, "replaced"), "utf8")).toBe("now a file");
    expect(isOpaque(join(layer, "gone-in-image"))).toBe(true);
    expect(isOpaque(join(layer, "opaque"))).toBe(true);
    // The previous generation shares inodes with the copy but was never written through.
    expect(readFileSync(join(old, "keep/b"), "utf8")).toBe("old b");
    expect(readFileSync(join(old, "keep/sub/a"), "utf8")).toBe("old a");
    expect(lstatSync(join(old, "replaced")).isDirectory()).toBe(true);
    expect(isWhiteout(join(old, "gone-in-image"))).toBe(true);
  });
});

describe("stripMountPoints", () => {
  test("drops empty stubs of mount targets and the empty dirs made for them, nothing else", () => {
    const up = tmp();
    mkdirSync(join(up, "workspace"));
    mkdirSync(join(up, "etc"));
    writeFileSync(join(up, "etc/hosts"), "");
    writeFileSync(join(up, "etc/written"), "kept");
    mkdirSync(join(up, "root/.cache/pip"), { recursive: true });
    mkdirSync(join(up, "root/.npm"), { recursive: true });
    writeFileSync(join(up, "root/.npm/kept"), "x");
    stripMountPoints(up, ["/workspace", "/etc/hosts", "/root/.cache/pip", "/root/.npm"]);
    expect(readdirSync(up).sort()).toEqual(["etc", "root"]);
    expect(readdirSync(join(up, "etc"))).toEqual(["written"]);
    expect(readdirSync(join(up, "root"))).toEqual([".npm"]);
  });
});
