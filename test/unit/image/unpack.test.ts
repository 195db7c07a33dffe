import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanPath, Unpacker } from "../../../src/image/unpack.ts";
import { TarReader } from "../../../src/core/tar.ts";
import { tmp } from "../../helpers/silo.ts";
import { makeTar, type TEntry } from "./_tarball.ts";

const isRoot = process.getuid?.() === 0;

/** lgetxattr(2) through bun:ffi (no attr tools needed on the machine). */
function getxattr(path: string, name: string): string | null {
  const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
  const lib = dlopen("libc.so.6", { lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 } });
  const buf = Buffer.alloc(256);
  const n = Number(lib.symbols.lgetxattr(Buffer.from(`${path}\0`), Buffer.from(`${name}\0`), buf, buf.length));
  lib.close();
  return n < 0 ? null : buf.subarray(0, n).toString();
}

/** Unpack layers (lists of entries) into a fresh root; `outside` is a sibling dir holding canaries. */
function unpack(spec: TEntry[][] | ((outside: string) => TEntry[][]), opts: { asRoot?: boolean } = {}) {
  const base = tmp("silo-unpack-");
  const root = join(base, "root");
  const outside = join(base, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, "canary"), "untouched");
  const layers = typeof spec === "function" ? spec(outside) : spec;
  const u = new Unpacker(root, opts);
  const run = () => {
    for (const l of layers) {
      u.beginLayer();
      const r = new TarReader(u.onEntry);
      r.push(makeTar(l));
      r.end();
    }
    u.finish();
  };
  return { root, outside, u, run };
}

/** The outside directory holds exactly the canary, unchanged. */
function expectOutsideUntouched(outside: string) {
  expect(readdirSync(outside)).toEqual(["canary"]);
  expect(readFileSync(join(outside, "canary"), "utf8")).toBe("untouched");
  expect(statSync(join(outside, "canary")).nlink).toBe(1);
}

test("cleanPath", () => {
  expect(cleanPath("/etc/passwd")).toBe("etc/passwd");
  expect(cleanPath("../../a/./b/../c/")).toBe("a/c");
  expect(cleanPath("./")).toBe("");
  expect(cleanPath("a/../../..")).toBe("");
});

describe("unpacking", () => {
  test("files, dirs, modes, mtimes, symlinks, hard links", () => {
    const { root, run } = unpack([
      [
        { name: "usr", type: "dir", mode: 0o755, mtime: 1_500_000_000 },
        { name: "usr/bin", type: "dir", mode: 0o555, mtime: 1_500_000_001 },
        { name: "usr/bin/tool", data: "#!/bin/sh\n", mode: 0o4755, mtime: 1_500_000_002 },
        { name: "usr/bin/alias", type: "symlink", linkname: "tool" },
        { name: "usr/bin/same", type: "hardlink", linkname: "usr/bin/tool" },
        { name: "etc/implicit/file", data: "parents made on demand", mode: 0o600 },
      ],
    ]);
    run();
    const tool = statSync(join(root, "usr/bin/tool"));
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect(tool.mtimeMs).toBe(1_500_000_002_000);
    expect(statSync(join(root, "usr/bin")).mode & 0o7777).toBe(0o555);
    expect(statSync(join(root, "usr/bin")).mtimeMs).toBe(1_500_000_001_000);
    expect(readlinkSync(join(root, "usr/bin/alias"))).toBe("tool");
    expect(statSync(join(root, "usr/bin/same")).ino).toBe(tool.ino);
    expect(readFileSync(join(root, "etc/implicit/file"), "utf8")).toBe("parents made on demand");
    expect(statSync(join(root, "etc/implicit/file")).mode & 0o777).toBe(0o600);
  });

  test("whiteouts delete from lower layers", () => {
    const { root, run } = unpack([
      [
        { name: "a/keep", data: "1" },
        { name: "a/gone", data: "2" },
        { name: "a/subdir/x", data: "3" },
      ],
      [
        { name: "a/.wh.gone", data: "" },
        { name: "a/.wh.subdir", data: "" },
      ],
    ]);
    run();
    expect(readdirSync(join(root, "a")).sort()).toEqual(["keep"]);
  });

  test("a whiteout never hides an entry of its own layer", () => {
    const { root, run } = unpack([[{ name: "a/x", data: "lower" }], [{ name: "a/x", data: "upper" }, { name: "a/.wh.x", data: "" }]]);
    run();
    expect(readFileSync(join(root, "a/x"), "utf8")).toBe("upper");
  });

  test("an opaque directory keeps only the current layer's entries, whatever their order", () => {
    const { root, run } = unpack([
      [
        { name: "d/old1", data: "1" },
        { name: "d/old2/x", data: "2" },
        { name: "e/old", data: "3" },
      ],
      [
        { name: "d", type: "dir" },
        { name: "d/.wh..wh..opq", data: "" },
        { name: "d/new", data: "4" },
        { name: "e/new", data: "5" },
        { name: "e/.wh..wh..opq", data: "" },
      ],
    ]);
    run();
    expect(readdirSync(join(root, "d"))).toEqual(["new"]);
    expect(readdirSync(join(root, "e"))).toEqual(["new"]);
  });

  test("later layers replace files with dirs, dirs with files, files with symlinks", () => {
    const { root, run } = unpack([
      [
        { name: "f2d", data: "file" },
        { name: "d2f/inner", data: "x" },
        { name: "f2l", data: "file" },
      ],
      [
        { name: "f2d/now", data: "dir" },
        { name: "d2f", data: "now a file" },
        { name: "f2l", type: "symlink", linkname: "/target" },
      ],
    ]);
    run();
    expect(readFileSync(join(root, "f2d/now"), "utf8")).toBe("dir");
    expect(readFileSync(join(root, "d2f"), "utf8")).toBe("now a file");
    expect(readlinkSync(join(root, "f2l"))).toBe("/target");
  });

  test("user.* xattrs are set", () => {
    const { root, run } = unpack([[{ name: "x", data: "1", pax: { "SCHILY.xattr.user.silo": "yes" } }]]);
    run();
    expect(getxattr(join(root, "x"), "user.silo")).toBe("yes");
  });

  test("device nodes are skipped without root; FIFOs are made", () => {
    const { root, u, run } = unpack([[{ name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 }, { name: "pipe", type: "fifo", mode: 0o600 }]], { asRoot: false });
    run();
    expect(existsSync(join(root, "dev/null"))).toBe(false);
    expect(u.stats.skippedDevices).toBe(1);
    expect(lstatSync(join(root, "pipe")).isFIFO()).toBe(true);
  });

  // THREATS.md invariant 2: no device node from an image lands on the host, even when silo unpacks as root.
  test("device nodes are skipped as root too, and replace what a lower layer had there", () => {
    const { root, u, run } = unpack(
      [
        [{ name: "opt/disk", data: "lower" }],
        [
          { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
          { name: "opt/disk", type: "block", devmajor: 8, devminor: 0, mode: 0o666 },
        ],
      ],
      { asRoot: true },
    );
    run();
    expect(existsSync(join(root, "dev/null"))).toBe(false);
    expect(existsSync(join(root, "opt/disk"))).toBe(false);
    expect(u.stats.skippedDevices).toBe(2);
  });

  test.skipIf(!isRoot)("as root, ownership and setuid/setgid bits are kept", () => {
    const { root, run } = unpack([[{ name: "owned", data: "x", uid: 1234, gid: 5678, mode: 0o2755 }, { name: "su", data: "x", mode: 0o4755 }]]);
    run();
    const owned = statSync(join(root, "owned"));
    expect([owned.uid, owned.gid, owned.mode & 0o7777]).toEqual([1234, 5678, 0o2755]);
    expect(statSync(join(root, "su")).mode & 0o7777).toBe(0o4755);
  });

  test("a hard link to something that is not in the image is an error", () => {
    const { run } = unpack([[{ name: "h", type: "hardlink", linkname: "missing" }]]);
    expect(run).toThrow(/hard-links/);
  });
});

describe("path escapes are neutralised", () => {
  test("the canary is reachable from the host (control)", () => {
    const { outside } = unpack([]);
    expect(readFileSync(join(outside, "canary"), "utf8")).toBe("untouched");
  });

  test("absolute paths land inside the root", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: `${outside}/canary`, data: "pwned" }, { name: "/evil", data: "x" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(readFileSync(join(root, outside, "canary"), "utf8")).toBe("pwned");
    expect(readFileSync(join(root, "evil"), "utf8")).toBe("x");
  });

  test("`..` cannot climb out of the root", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "../outside/canary", data: "pwned" }, { name: "a/../../../../outside/new", data: "x" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(readFileSync(join(root, "outside/canary"), "utf8")).toBe("pwned");
  });

  test("a symlink to an absolute outside path, then a write through it", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "link", type: "symlink", linkname: outside }, { name: "link/canary", data: "pwned" }, { name: "link/new", data: "x" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(readFileSync(join(root, outside, "canary"), "utf8")).toBe("pwned"); // resolved as the guest would
    expect(readlinkSync(join(root, "link"))).toBe(outside);
  });

  test("a relative symlink climbing out, then a write through it", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "up", type: "symlink", linkname: "../../../../../../../../" }, { name: "up/outside/canary", data: "pwned" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(readFileSync(join(root, "outside/canary"), "utf8")).toBe("pwned");
  });

  test("a chain of symlinks, across layers", () => {
    const { outside, run } = unpack((outside) => [[{ name: "a", type: "symlink", linkname: "b" }], [{ name: "b", type: "symlink", linkname: `${outside}/..` }], [{ name: "a/outside/canary", data: "pwned" }]]);
    run();
    expectOutsideUntouched(outside);
  });

  test("a file over an existing symlink replaces the link, never writes through it", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "f", type: "symlink", linkname: `${outside}/canary` }], [{ name: "f", data: "pwned" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(lstatSync(join(root, "f")).isFile()).toBe(true);
  });

  test("a hard link to a host file links inside the root or fails", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: `${outside.slice(1)}/canary`, data: "inner" }, { name: "h", type: "hardlink", linkname: `${outside}/canary` }, { name: "h2", type: "hardlink", linkname: `../../../..${outside}/canary` }]]);
    run();
    expectOutsideUntouched(outside);
    expect(readFileSync(join(root, "h"), "utf8")).toBe("inner");
    expect(readFileSync(join(root, "h2"), "utf8")).toBe("inner");
  });

  test("a hard link through a symlinked directory stays inside", () => {
    const { outside, run } = unpack((outside) => [[{ name: "s", type: "symlink", linkname: outside }, { name: "h", type: "hardlink", linkname: "s/canary" }]]);
    expect(run).toThrow(/hard-links/);
    expectOutsideUntouched(outside);
  });

  test("whiteouts cannot delete outside the root", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "keep", data: "k" }, { name: "lnk", type: "symlink", linkname: outside }], [{ name: "../outside/.wh.canary", data: "" }, { name: "lnk/.wh.canary", data: "" }, { name: ".wh..", data: "" }, { name: ".wh...", data: "" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(readFileSync(join(root, "keep"), "utf8")).toBe("k");
  });

  test("an opaque marker under a symlink to the outside empties nothing outside", () => {
    const { outside, run } = unpack((outside) => [[{ name: "lnk", type: "symlink", linkname: outside }], [{ name: "lnk/.wh..wh..opq", data: "" }]]);
    run();
    expectOutsideUntouched(outside);
  });

  test("a directory entry over a symlink replaces the link", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "d", type: "symlink", linkname: outside }], [{ name: "d", type: "dir", mode: 0o700 }, { name: "d/canary", data: "pwned" }]]);
    run();
    expectOutsideUntouched(outside);
    expect(lstatSync(join(root, "d")).isDirectory()).toBe(true);
  });

  test("finish() never chmods through a symlink that replaced a directory", () => {
    const { root, outside, run } = unpack((outside) => [[{ name: "d", type: "dir", mode: 0o777 }], [{ name: "d", type: "symlink", linkname: outside }]]);
    const before = statSync(outside).mode;
    run();
    expect(statSync(outside).mode).toBe(before);
    expect(lstatSync(join(root, "d")).isSymbolicLink()).toBe(true);
  });
});
