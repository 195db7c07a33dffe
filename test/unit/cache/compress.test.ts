import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { archiveOf, compressDir, extractArchive, restoreDir } from "../../../src/cache/compress.ts";
import { mknod, setXattr } from "../../../src/core/xattr.ts";
import { tmp as makeTmp } from "../../helpers/silo.ts";
import { describeTree } from "./_tree.ts";

const made: string[] = [];
const tmp = (prefix: string) => {
  const d = makeTmp(prefix);
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) Bun.spawnSync(["rm", "-rf", d]);
});

/** A small tree with every kind of entry a rootfs holds. */
function makeTree(root: string) {
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  mkdirSync(join(root, "etc"));
  mkdirSync(join(root, "tmp"));
  chmodSync(join(root, "tmp"), 0o1777);
  writeFileSync(join(root, "usr/bin/tool"), "#!/bin/sh\necho hi\n");
  chmodSync(join(root, "usr/bin/tool"), 0o4755);
  writeFileSync(join(root, "etc/empty"), "");
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
  writeFileSync(join(root, "usr/big.bin"), big);
  linkSync(join(root, "usr/big.bin"), join(root, "usr/bin/big-link"));
  symlinkSync("tool", join(root, "usr/bin/alias"));
  symlinkSync("/etc/" + "x".repeat(150), join(root, "etc/long-target"));
  const deep = join(root, "d".repeat(60), "e".repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "f".repeat(90)), "long path");
  mkdirSync(join(root, "ro"));
  writeFileSync(join(root, "ro/file"), "read only dir");
  chmodSync(join(root, "ro"), 0o555);
  mknod(join(root, "etc/whiteout"), 0o020000, 0);
  mknod(join(root, "etc/fifo"), 0o010644, 0);
  setXattr(join(root, "etc"), "user.overlay.opaque", Buffer.from("y"));
  setXattr(join(root, "usr/bin/tool"), "user.bin", Buffer.from([0, 1, 2, 255]));
  utimesSync(join(root, "etc/empty"), 1_000_000, 1_000_000);
}

describe("rootfs archives", () => {
  test("compress then extract gives back an identical tree", async () => {
    const dir = tmp("silo-z-");
    const src = join(dir, "src");
    mkdirSync(src);
    makeTree(src);
    const before = describeTree(src);
    const out = join(dir, "src.tar.zst");
    const size = await compressDir(src, out);
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThan(3 * 1024 * 1024); // the patterned 3 MiB file compresses
    await extractArchive(out, join(dir, "back"));
    expect(describeTree(join(dir, "back"))).toEqual(before);
    expect(before["usr/big.bin"]!.links).toEqual(["usr/big.bin", "usr/bin/big-link"]);
    expect(before["etc"]!.xattrs).toEqual({ "user.overlay.opaque": "79" });
  });

  test("the archive is plain tar inside zstd (readable by GNU tar)", async () => {
    const dir = tmp("silo-z-");
    mkdirSync(join(dir, "src"));
    makeTree(join(dir, "src"));
    await compressDir(join(dir, "src"), join(dir, "a.tar.zst"));
    const p = Bun.spawnSync(["sh", "-c", `zstd -dc '${join(dir, "a.tar.zst")}' | tar -t`]);
    expect(p.exitCode).toBe(0);
    const names = p.stdout.toString().trim().split("\n");
    expect(names).toContain("usr/bin/tool");
    expect(names).toContain(`${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(90)}`);
  });

  test("an archive of several frames (larger than one 16 MiB frame) round-trips", async () => {
    const dir = tmp("silo-z-");
    const src = join(dir, "src");
    mkdirSync(src);
    for (let i = 0; i < 3; i++) writeFileSync(join(src, `f${i}`), Buffer.alloc(7 * 1024 * 1024 + i, i + 1));
    const before = describeTree(src);
    await compressDir(src, join(dir, "m.tar.zst"));
    await extractArchive(join(dir, "m.tar.zst"), join(dir, "back"));
    expect(describeTree(join(dir, "back"))).toEqual(before);
  });

  test("restoreDir brings back a packed entry once and drops the archive", async () => {
    const dir = tmp("silo-z-");
    const entry = join(dir, "abc");
    mkdirSync(entry);
    makeTree(entry);
    const before = describeTree(entry);
    await compressDir(entry, archiveOf(entry));
    expect(await restoreDir(entry)).toBe(false); // the directory is still there: nothing to do
    Bun.spawnSync(["rm", "-rf", entry]);
    expect(await restoreDir(entry)).toBe(true);
    expect(existsSync(archiveOf(entry))).toBe(false);
    expect(describeTree(entry)).toEqual(before);
  });

  test("a damaged archive leaves nothing behind", async () => {
    const dir = tmp("silo-z-");
    mkdirSync(join(dir, "src"));
    makeTree(join(dir, "src"));
    await compressDir(join(dir, "src"), join(dir, "a.tar.zst"));
    const bytes = await Bun.file(join(dir, "a.tar.zst")).bytes();
    writeFileSync(join(dir, "a.tar.zst"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(extractArchive(join(dir, "a.tar.zst"), join(dir, "back"))).rejects.toThrow();
    expect(existsSync(join(dir, "back"))).toBe(false);
  });
});
