/**
 * A streaming tar (POSIX pax) writer and reader for silo's own archives of rootfs entries (`silo cache
 * compress`). Exact round trips are the point: file types, modes with setuid bits, owners, mtimes,
 * symlink targets, hard links (one copy of the data), device nodes and extended attributes
 * (SCHILY.xattr.*, as GNU tar and bsdtar write them). The output is plain tar: `zstd -dc x.tar.zst | tar t`.
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { join } from "node:path";
import { readXattrs } from "./xattr.ts";

const BLOCK = 512;
const CHUNK = 1 << 20;
const enc = new TextEncoder();

function octal(buf: Buffer, off: number, len: number, value: number) {
  buf.write(value.toString(8).padStart(len - 1, "0") + "\0", off, len, "latin1");
}

function paxRecord(key: string, value: Uint8Array | string): Buffer {
  const v = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), v, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function header(name: string, type: string, st: { mode: number; uid: number; gid: number; size: number; mtime: number; rdev?: number }, link = ""): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, st.mode & 0o7777);
  octal(h, 108, 8, st.uid);
  octal(h, 116, 8, st.gid);
  octal(h, 124, 12, st.size);
  octal(h, 136, 12, st.mtime);
  h.write(type, 156, 1, "latin1");
  h.write(link, 157, 100, "utf8");
  h.write("ustar\x0000", 257, 8, "latin1");
  if (st.rdev !== undefined) {
    octal(h, 329, 8, (st.rdev >> 8) & 0xfff);
    octal(h, 337, 8, (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00));
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "latin1");
  return h;
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

function entryType(st: Stats): string | null {
  if (st.isFile()) return "0";
  if (st.isSymbolicLink()) return "2";
  if (st.isCharacterDevice()) return "3";
  if (st.isBlockDevice()) return "4";
  if (st.isDirectory()) return "5";
  if (st.isFIFO()) return "6";
  return null; // sockets do not survive a tar round trip; nothing in a rootfs needs one
}

/** The entries of `dir` (the archive's root, "."), as tar blocks, depth first with each directory before its contents. */
export function* packTree(dir: string): Generator<Buffer> {
  const seen = new Map<string, string>();
  function* entry(rel: string): Generator<Buffer> {
    const abs = rel === "." ? dir : join(dir, rel);
    const st = lstatSync(abs);
    let type = entryType(st);
    if (!type) return;
    let link = "";
    if (type === "2") link = readlinkSync(abs);
    else if (type !== "5" && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first !== undefined) [type, link] = ["1", first];
      else seen.set(key, rel);
    }
    const size = type === "0" ? st.size : 0;
    const name = type === "5" ? `${rel}/` : rel;
    const mtime = Math.floor(st.mtimeMs / 1000);
    const pax: Buffer[] = [];
    if (enc.encode(name).length > 100) pax.push(paxRecord("path", name));
    if (enc.encode(link).length > 100) pax.push(paxRecord("linkpath", link));
    if (size > 0o77777777777) pax.push(paxRecord("size", String(size)));
    if (st.uid > 0o7777777) pax.push(paxRecord("uid", String(st.uid)));
    if (st.gid > 0o7777777) pax.push(paxRecord("gid", String(st.gid)));
    for (const [k, v] of Object.entries(readXattrs(abs))) pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
    if (pax.length) {
      const body = Buffer.concat(pax);
      yield header("PaxHeader", "x", { mode: 0o644, uid: 0, gid: 0, size: body.length, mtime });
      yield body;
      yield pad(body.length);
    }
    const dev = type === "3" || type === "4" ? st.rdev : undefined;
    yield header(name.slice(0, 100), type, { mode: st.mode, uid: Math.min(st.uid, 0o7777777), gid: Math.min(st.gid, 0o7777777), size: Math.min(size, 0o77777777777), mtime, rdev: dev }, link.slice(0, 100));
    if (size > 0) {
      const fd = openSync(abs, "r");
      try {
        let done = 0;
        while (done < size) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - done));
          const n = readSync(fd, buf, 0, buf.length, done);
          if (n <= 0) throw new Error(`${abs} shrank while it was archived`);
          done += n;
          yield n === buf.length ? buf : buf.subarray(0, n);
        }
      } finally {
        closeSync(fd);
      }
      yield pad(size);
    }
    if (type === "5") for (const n of readdirSync(abs).sort()) yield* entry(rel === "." ? n : `${rel}/${n}`);
  }
  yield* entry(".");
  yield Buffer.alloc(BLOCK * 2);
}

export interface TarEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkpath: string;
  rdev: number;
  xattrs: Record<string, Buffer>;
}

const str = (b: Buffer, off: number, len: number) => {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString("utf8");
};
const num = (b: Buffer, off: number, len: number) => parseInt(str(b, off, len).trim() || "0", 8);

/** glibc's makedev for the major/minor numbers a tar header carries. */
const makedev = (major: number, minor: number) => (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);

function parsePax(body: Buffer): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    const len = Number(body.subarray(i, sp).toString("latin1"));
    if (!(len > 0)) break;
    const rec = body.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    out[rec.subarray(0, eq).toString("utf8")] = rec.subarray(eq + 1);
    i += len;
  }
  return out;
}

/**
 * Parse a tar stream. `onEntry` gets each entry; for regular files `onData` then gets its content in order.
 * Both may be async (they are awaited, so a slow disk slows the stream instead of filling memory).
 */
export async function unpackStream(
  chunks: AsyncIterable<Uint8Array>,
  onEntry: (e: TarEntry) => void | Promise<void>,
  onData: (chunk: Uint8Array) => void | Promise<void>,
): Promise<void> {
  let buf: Buffer = Buffer.alloc(0);
  let pax: Record<string, Buffer> = {};
  let want = 0; // content bytes of the current file still to come
  let skip = 0; // padding (or ignored content) still to drop
  let paxLeft = -1;
  let paxBody: Buffer[] = [];
  let ended = false;
  for await (const c of chunks) {
    buf = buf.length ? Buffer.concat([buf, c]) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    for (;;) {
      if (want > 0) {
        if (!buf.length) break;
        const n = Math.min(want, buf.length);
        await onData(buf.subarray(0, n));
        buf = buf.subarray(n);
        want -= n;
        continue;
      }
      if (paxLeft >= 0) {
        const n = Math.min(paxLeft, buf.length);
        paxBody.push(buf.subarray(0, n));
        buf = buf.subarray(n);
        paxLeft -= n;
        if (paxLeft > 0) break;
        pax = parsePax(Buffer.concat(paxBody));
        paxLeft = -1;
        continue;
      }
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        buf = buf.subarray(n);
        skip -= n;
        if (skip > 0) break;
        continue;
      }
      if (buf.length < BLOCK) break;
      const h = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (h.every((b) => b === 0)) {
        ended = true;
        continue;
      }
      ended = false;
      const type = String.fromCharCode(h[156]!) || "0";
      const size = pax.size ? Number(pax.size.toString()) : num(h, 124, 12);
      if (type === "x") {
        paxLeft = size;
        paxBody = [];
        skip = (BLOCK - (size % BLOCK)) % BLOCK;
        continue;
      }
      const prefix = str(h, 345, 155);
      const e: TarEntry = {
        path: pax.path?.toString("utf8") ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100)),
        type: type === "\0" ? "0" : type,
        mode: num(h, 100, 8),
        uid: pax.uid ? Number(pax.uid.toString()) : num(h, 108, 8),
        gid: pax.gid ? Number(pax.gid.toString()) : num(h, 116, 8),
        size,
        mtime: pax.mtime ? Number(pax.mtime.toString()) : num(h, 136, 12),
        linkpath: pax.linkpath?.toString("utf8") ?? str(h, 157, 100),
        rdev: makedev(num(h, 329, 8), num(h, 337, 8)),
        xattrs: Object.fromEntries(Object.entries(pax).filter(([k]) => k.startsWith("SCHILY.xattr.")).map(([k, v]) => [k.slice(13), v])),
      };
      pax = {};
      await onEntry(e);
      if (e.type === "0" || e.type === "7") want = size;
      else skip += size;
      skip += (BLOCK - (size % BLOCK)) % BLOCK;
    }
  }
  // A cut-off stream is an error, not a shorter archive: it must end with its zero blocks.
  if (!ended || want > 0 || paxLeft >= 0) throw new Error("the archive is truncated");
}
