import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, linkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packTree, TarReader, type ReaderOptions, type TarEntry } from "../../../src/core/tar.ts";
import { tmp } from "../../helpers/silo.ts";
import { makeTar } from "../image/_tarball.ts";

interface Seen extends TarEntry {
  data: string;
}

function read(archive: Uint8Array, chunk = archive.length, opts: Partial<ReaderOptions> = {}): Seen[] {
  const out: Seen[] = [];
  const r = new TarReader((e) => {
    const s: Seen = { ...e, data: "" };
    out.push(s);
    return { write: (c) => (s.data += Buffer.from(c).toString("latin1")), end() {} };
  }, opts);
  for (let i = 0; i < archive.length; i += chunk) r.push(archive.subarray(i, i + chunk));
  r.end();
  return out;
}

const long = `deep/${"d".repeat(120)}/${"f".repeat(90)}.txt`;

/** An archive made by GNU tar in `format`, from a small tree with a long name, a symlink and a hard link. */
function gnuTar(format: string): Uint8Array {
  const dir = tmp();
  mkdirSync(join(dir, "deep", "d".repeat(120)), { recursive: true });
  writeFileSync(join(dir, long), "long name\n");
  writeFileSync(join(dir, "a.txt"), "x".repeat(1500));
  symlinkSync(`../${"t".repeat(150)}`, join(dir, "link"));
  linkSync(join(dir, "a.txt"), join(dir, "hard"));
  const out = join(tmp(), "t.tar");
  const p = Bun.spawnSync(["tar", `--format=${format}`, "-C", dir, "-cf", out, "a.txt", "hard", "link", "deep"]);
  if (p.exitCode !== 0) throw new Error(p.stderr.toString());
  return new Uint8Array(require("node:fs").readFileSync(out));
}

describe("TarReader on GNU tar output", () => {
  // (plain ustar cannot hold the 150-character link target)
  for (const format of ["gnu", "pax"]) {
    test(format, () => {
      const es = read(gnuTar(format));
      const by = Object.fromEntries(es.map((e) => [e.path.replace(/\/$/, ""), e]));
      expect(by["a.txt"]!.data).toBe("x".repeat(1500));
      expect(by["a.txt"]!.type).toBe("file");
      expect(by.hard!.type).toBe("hardlink");
      expect(by.hard!.linkpath).toBe("a.txt");
      expect(by.link!.type).toBe("symlink");
      expect(by.link!.linkpath).toBe(`../${"t".repeat(150)}`);
      expect(by[long]!.data).toBe("long name\n");
      expect(by.deep!.type).toBe("dir");
      expect(by["a.txt"]!.mode).toBe(0o644);
    });
  }
});

describe("TarReader", () => {
  const archive = makeTar([
    { name: "dir", type: "dir", mode: 0o755 },
    { name: "dir/file", data: "hello world", mode: 0o4755, uid: 1000, gid: 100, mtime: 1_600_000_000 },
    { name: "dir/empty", data: "" },
    { name: "x".repeat(150), data: "y".repeat(700) },
    { name: "attrs", data: "a", pax: { "SCHILY.xattr.user.silo": "v1", "SCHILY.xattr.security.capability": new Uint8Array([1, 0, 0, 2]), mtime: "1600000000.25" } },
    { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "fifo", type: "fifo" },
  ]);

  test("headers, data, pax records, devices", () => {
    const es = read(archive);
    expect(es.map((e) => e.path)).toEqual(["dir", "dir/file", "dir/empty", "x".repeat(150), "attrs", "dev/null", "fifo"]);
    expect(es[1]).toMatchObject({ data: "hello world", mode: 0o4755, uid: 1000, gid: 100, mtime: 1_600_000_000, size: 11 });
    expect(es[3]!.data).toBe("y".repeat(700));
    expect(es[4]!.mtime).toBe(1_600_000_000.25);
    expect(Buffer.from(es[4]!.xattrs!.get("user.silo")!).toString()).toBe("v1");
    expect([...es[4]!.xattrs!.get("security.capability")!]).toEqual([1, 0, 0, 2]);
    expect(es[5]).toMatchObject({ type: "char", devmajor: 1, devminor: 3 });
    expect(es[6]!.type).toBe("fifo");
  });

  test("any chunking gives the same entries", () => {
    const whole = read(archive);
    for (const size of [1, 7, 100, 511, 512, 513, 4096]) expect(read(archive, size)).toEqual(whole);
  });

  test("a truncated archive is an error", () => {
    expect(() => read(archive.subarray(0, 512 + 5))).toThrow(/ends in the middle/);
  });

  test("a corrupted header is an error", () => {
    const bad = archive.slice();
    bad[0] = bad[0]! ^ 0xff; // the first header's name
    expect(() => read(bad)).toThrow(/checksum/);
  });

  test("GNU base-256 numbers", () => {
    const a = makeTar([{ name: "big", data: "z", uid: 7 }]);
    const h = a.subarray(0, 512);
    h.fill(0, 108, 116);
    h[108] = 0x80; // base-256 marker
    h[113] = 0x01;
    h[115] = 0x01; // 0x010001 = 65537
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    h.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
    expect(read(a)[0]!.uid).toBe(65537);
  });

  test("sparse files are refused", () => {
    const a = makeTar([{ name: "s", data: "z", pax: { "GNU.sparse.major": "1" } }]);
    expect(() => read(a)).toThrow(/sparse/);
  });
});

describe("packTree → TarReader (silo's own archives)", () => {
  const CACHE = { code: "E_IO" as const, name: "a cache archive", hint: "", requireEnd: true };
  function tree(): string {
    const dir = tmp();
    mkdirSync(join(dir, "d", "e".repeat(120)), { recursive: true });
    writeFileSync(join(dir, "d", "e".repeat(120), "f".repeat(90)), "deep\n");
    writeFileSync(join(dir, "big"), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    writeFileSync(join(dir, "empty"), "");
    symlinkSync(`../${"t".repeat(150)}`, join(dir, "link"));
    linkSync(join(dir, "big"), join(dir, "hard"));
    require("node:fs").chmodSync(join(dir, "empty"), 0o4750);
    return dir;
  }
  const packed = (dir: string) => new Uint8Array(Buffer.concat([...packTree(dir)]));

  test("every entry comes back: names past 100 bytes, modes with setuid, links, one copy of hard-linked data", () => {
    const es = read(packed(tree()), 65536, CACHE);
    const by = new Map(es.map((e) => [e.path, e]));
    expect(by.get("./")?.type ?? by.get(".")?.type).toBe("dir");
    expect(by.get(`d/${"e".repeat(120)}/${"f".repeat(90)}`)).toMatchObject({ type: "file", data: "deep\n" });
    expect(by.get("big")).toMatchObject({ type: "file", size: 3 * 1024 * 1024 + 17 });
    expect(by.get("big")!.data.length).toBe(3 * 1024 * 1024 + 17);
    expect(by.get("hard")).toMatchObject({ type: "hardlink", linkpath: "big", size: 0, data: "" });
    expect(by.get("link")).toMatchObject({ type: "symlink", linkpath: `../${"t".repeat(150)}` });
    expect(by.get("empty")).toMatchObject({ type: "file", mode: 0o4750, size: 0 });
  });

  test("GNU tar reads what packTree writes", () => {
    const out = join(tmp(), "t.tar");
    writeFileSync(out, packed(tree()));
    const r = Bun.spawnSync(["tar", "-tvf", out]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain(`d/${"e".repeat(120)}/${"f".repeat(90)}`);
    expect(r.stdout.toString()).toMatch(/hard link to big/);
  });

  test("a cache archive cut at an entry boundary (no end blocks) is an error; an image layer may end there", () => {
    const whole = packed(tree());
    const cut = whole.subarray(0, 512); // the root directory's header: a whole entry
    expect(() => read(cut, 512, CACHE)).toThrow(/a cache archive is not a valid tar archive: it ends without its end-of-archive blocks/);
    expect(read(cut, 512).length).toBe(1);
  });

  test("malformed input is a SiloError naming the archive, never a crash or a silent short read", () => {
    const pax = makeTar([{ name: "p", data: "x", pax: { comment: "c" } }]);
    pax.set(new TextEncoder().encode("99999 "), 512); // the pax record's length runs past its body
    expect(() => read(pax, 512, CACHE)).toThrow(/a cache archive is not a valid tar archive: malformed pax header/);
    const huge = makeTar([{ name: "m", data: "x", pax: { comment: "c".repeat(17 << 20) } }]);
    expect(() => read(huge)).toThrow(/oversized metadata header/);
    const garbage = new Uint8Array(2048).fill(0x41);
    expect(() => read(garbage, 2048, CACHE)).toThrow(/header checksum mismatch/);
    try {
      read(garbage);
    } catch (e) {
      expect((e as { code?: string }).code).toBe("E_IMAGE");
    }
  });
});
