/**
 * tar, both ways, for silo's two uses: image layers (read) and silo's own archives of rootfs entries
 * (`silo cache compress`: written by packTree, read back the same way).
 *
 * The reader is push-based: feed it decompressed chunks, it calls back once per entry and streams file data
 * to the sink the callback returns, without copying. ustar, POSIX pax (path, linkpath, size, uid, gid,
 * mtime, SCHILY.xattr.*) and GNU long names are understood; sparse files are refused.
 * The writer emits POSIX pax for exact round trips: file types, modes with setuid bits, owners, mtimes,
 * symlink targets, hard links (one copy of the data), device nodes and extended attributes (SCHILY.xattr.*,
 * as GNU tar and bsdtar write them). Its output is plain tar: `zstd -dc x.tar.zst | tar t`.
 *
 * Why not a library: Bun.Archive extracts whole archives (in memory, no per-entry control, no whiteouts,
 * ownership or xattrs), and tar-stream / node-tar read through Node stream machinery per entry, which costs
 * more than the parsing itself on images with 10,000+ small files. Every security decision lives with the
 * callers (image/unpack.ts, cache/compress.ts).
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { join } from "node:path";
import { SiloError, type SiloErrorCode } from "./errors.ts";
import { readXattrs } from "./xattr.ts";

export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarEntry {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (fractional with pax). */
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  /** From pax SCHILY.xattr.<name>; absent when none. */
  xattrs?: Map<string, Uint8Array>;
}

/** Receives a file entry's data in order; `end` follows the last byte. */
export interface EntrySink {
  write(chunk: Uint8Array): void;
  end(): void;
}

const BLOCK = 512;
const TYPES: Record<string, EntryType> = { "0": "file", "\0": "file", "7": "file", "5": "dir", "2": "symlink", "1": "hardlink", "3": "char", "4": "block", "6": "fifo" };


function str(b: Uint8Array, start: number, len: number): string {
  let end = start;
  const max = start + len;
  while (end < max && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString("utf8");
}

/** Octal ASCII, or GNU base-256 when the top bit of the first byte is set. */
function num(b: Uint8Array, start: number, len: number): number {
  if (b[start]! & 0x80) {
    let v = b[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  let v = 0;
  let i = start;
  const end = start + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === num(h, 148, 8);
}

type Pax = Map<string, Uint8Array>;

/** Pax records: "<len> <key>=<value>\n", values kept as bytes (xattr values may be binary). */
function parsePax(b: Uint8Array, into: Pax): boolean {
  let pos = 0;
  while (pos < b.length) {
    let sp = pos;
    while (sp < b.length && b[sp] !== 0x20) sp++;
    const len = Number(Buffer.from(b.subarray(pos, sp)).toString("latin1"));
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > b.length) return false;
    const rec = b.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) into.set(Buffer.from(rec.subarray(0, eq)).toString("utf8"), rec.slice(eq + 1));
    pos += len;
  }
  return true;
}

const paxStr = (p: Pax, k: string) => {
  const v = p.get(k);
  return v === undefined ? undefined : Buffer.from(v).toString("utf8");
};

/** What a reader's errors call the archive, and whether it must end with its zero blocks. */
export interface ReaderOptions {
  code: SiloErrorCode;
  /** "a layer", "a cache archive": the subject of the error message. */
  name: string;
  hint: string;
  /** Image layers may stop at an entry boundary; silo's own archives always carry their end blocks. */
  requireEnd: boolean;
}

const LAYER: ReaderOptions = { code: "E_IMAGE", name: "a layer", hint: "the image is damaged or not a Linux container image", requireEnd: false };

const enum State {
  Header,
  Data,
  Meta,
  Pad,
  End,
}

export class TarReader {
  private state = State.Header;
  private header = new Uint8Array(BLOCK);
  private headerFill = 0;
  private remaining = 0;
  private pad = 0;
  private sink: EntrySink | null = null;
  private meta: Uint8Array[] = [];
  private metaType = "";
  private pax: Pax = new Map();
  private globalPax: Pax = new Map();
  private longName?: string;
  private longLink?: string;

  private readonly what: ReaderOptions;

  constructor(
    private readonly onEntry: (e: TarEntry) => EntrySink | null,
    what: Partial<ReaderOptions> = {},
  ) {
    this.what = { ...LAYER, ...what };
  }

  private bad(why: string): SiloError {
    return new SiloError(this.what.code, `${this.what.name} is not a valid tar archive: ${why}`, this.what.hint);
  }

  push(chunk: Uint8Array) {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      switch (this.state) {
        case State.Header: {
          const take = Math.min(BLOCK - this.headerFill, n - pos);
          // Whole headers inside the chunk are read in place; split ones are assembled.
          if (this.headerFill === 0 && take === BLOCK) {
            this.onHeader(chunk.subarray(pos, pos + BLOCK));
          } else {
            this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
            this.headerFill += take;
            if (this.headerFill === BLOCK) {
              this.headerFill = 0;
              this.onHeader(this.header);
            }
          }
          pos += take;
          break;
        }
        case State.Data:
        case State.Meta: {
          const take = Math.min(this.remaining, n - pos);
          const part = chunk.subarray(pos, pos + take);
          if (this.state === State.Meta) this.meta.push(part.slice());
          else this.sink?.write(part);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.endBody();
          break;
        }
        case State.Pad: {
          const take = Math.min(this.pad, n - pos);
          pos += take;
          this.pad -= take;
          if (this.pad === 0) this.state = State.Header;
          break;
        }
        case State.End:
          return;
      }
    }
  }

  /** The stream ended: anything but a clean end (or a clean entry boundary) is a truncated layer. */
  end() {
    if (this.state === State.Data || this.state === State.Meta || (this.state === State.Header && this.headerFill > 0))
      throw this.bad("it ends in the middle of an entry (truncated download?)");
    if (this.what.requireEnd && this.state !== State.End) throw this.bad("it ends without its end-of-archive blocks (truncated?)");
  }

  private onHeader(h: Uint8Array) {
    let zero = true;
    for (let i = 0; i < BLOCK; i++)
      if (h[i] !== 0) {
        zero = false;
        break;
      }
    if (zero) {
      this.state = State.End;
      return;
    }
    if (!checksumOk(h)) throw this.bad("header checksum mismatch");
    const flag = String.fromCharCode(h[156]!);
    const size = num(h, 124, 12);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > 16 << 20) throw this.bad("oversized metadata header");
      this.metaType = flag;
      this.meta = [];
      return this.startBody(size, State.Meta);
    }
    if (flag === "S" || this.pax.has("GNU.sparse.map") || this.pax.has("GNU.sparse.major"))
      throw this.bad("sparse files are not supported in image layers");
    const type = TYPES[flag];
    const ustar = h[257] === 0x75 && h[262] === 0 && str(h, 257, 6) === "ustar"; // POSIX ustar has a prefix field
    let path = str(h, 0, 100);
    if (ustar) {
      const prefix = str(h, 345, 155);
      if (prefix) path = `${prefix}/${path}`;
    }
    const merged = (k: string) => paxStr(this.pax, k) ?? paxStr(this.globalPax, k);
    path = merged("path") ?? this.longName ?? path;
    const linkpath = merged("linkpath") ?? this.longLink ?? str(h, 157, 100);
    const paxSize = merged("size");
    const entry: TarEntry = {
      path,
      type: type ?? "file",
      mode: num(h, 100, 8) & 0o7777,
      uid: Number(merged("uid") ?? num(h, 108, 8)),
      gid: Number(merged("gid") ?? num(h, 116, 8)),
      size: paxSize !== undefined ? Number(paxSize) : size,
      mtime: Number(merged("mtime") ?? num(h, 136, 12)),
      linkpath,
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
    };
    for (const [k, v] of this.pax) {
      if (!k.startsWith("SCHILY.xattr.")) continue;
      (entry.xattrs ??= new Map()).set(k.slice(13), v);
    }
    this.pax = new Map();
    this.longName = this.longLink = undefined;
    if (!type) {
      // Unknown entry kinds (e.g. Solaris ACLs) carry nothing a rootfs needs: skip their data.
      return this.startBody(entry.size, State.Data);
    }
    this.sink = this.onEntry(entry);
    // As Go's archive/tar: links, directories and devices are header-only whatever their size field says.
    if (entry.type !== "file") this.sink = null;
    this.startBody(entry.type === "file" ? entry.size : 0, State.Data);
  }

  private startBody(size: number, state: State) {
    if (!Number.isSafeInteger(size) || size < 0) throw this.bad("bad entry size");
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) return this.endBody(state);
    this.state = state;
  }

  private endBody(state = this.state) {
    if (state === State.Meta) {
      const body = Buffer.concat(this.meta);
      this.meta = [];
      if (this.metaType === "x" || this.metaType === "g") {
        if (!parsePax(body, this.metaType === "x" ? this.pax : this.globalPax)) throw this.bad("malformed pax header");
      }
      else {
        const name = str(body, 0, body.length);
        if (this.metaType === "L") this.longName = name;
        else this.longLink = name;
      }
    } else {
      this.sink?.end();
      this.sink = null;
    }
    this.state = this.pad > 0 ? State.Pad : State.Header;
  }
}

// --- the writer ---------------------------------------------------------------------------------------

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
