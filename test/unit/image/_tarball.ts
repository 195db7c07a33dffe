/**
 * A tiny tar writer for tests: synthetic layers (whiteouts, attacks, pax xattrs) that real tools refuse
 * to produce. Long names and pax records go in a pax header, as Go's archive/tar writes them.
 */
export interface TEntry {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";
  data?: string | Uint8Array;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Uint8Array>;
}

const FLAG = { file: "0", dir: "5", symlink: "2", hardlink: "1", char: "3", block: "4", fifo: "6" } as const;
const enc = new TextEncoder();

function header(name: string, flag: string, size: number, e: TEntry): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, len: number, s: string) => h.set(enc.encode(s).subarray(0, len), off);
  const oct = (off: number, len: number, v: number) => put(off, len, `${v.toString(8).padStart(len - 1, "0")}\0`);
  put(0, 100, name);
  oct(100, 8, e.mode ?? (flag === "5" ? 0o755 : 0o644));
  oct(108, 8, e.uid ?? 0);
  oct(116, 8, e.gid ?? 0);
  oct(124, 12, size);
  oct(136, 12, Math.floor(e.mtime ?? 1_700_000_000));
  put(148, 8, "        ");
  put(156, 1, flag);
  put(157, 100, e.linkname ?? "");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  oct(329, 8, e.devmajor ?? 0);
  oct(337, 8, e.devminor ?? 0);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

const pad = (n: number) => new Uint8Array((512 - (n % 512)) % 512);

function paxBody(rec: Record<string, string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of Object.entries(rec)) {
    const val = typeof v === "string" ? enc.encode(v) : v;
    const key = enc.encode(` ${k}=`);
    const base = key.length + val.length + 1;
    let len = base + String(base).length;
    if (String(len).length !== String(base).length) len = base + String(len).length;
    parts.push(enc.encode(String(len)), key, val, enc.encode("\n"));
  }
  return Buffer.concat(parts);
}

/** An uncompressed tar archive of `entries`, ended by two zero blocks. */
export function makeTar(entries: TEntry[]): Uint8Array {
  const out: Uint8Array[] = [];
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = type === "file" ? (typeof e.data === "string" ? enc.encode(e.data) : (e.data ?? new Uint8Array())) : new Uint8Array();
    const pax: Record<string, string | Uint8Array> = { ...e.pax };
    let name = e.name;
    if (enc.encode(name).length > 99) {
      pax.path = name;
      name = name.slice(0, 99);
    }
    if (Object.keys(pax).length) {
      const body = paxBody(pax);
      out.push(header("PaxHeader", "x", body.length, {} as TEntry), body, pad(body.length));
    }
    out.push(header(name, FLAG[type], data.length, e), data, pad(data.length));
  }
  out.push(new Uint8Array(1024));
  return Buffer.concat(out);
}

export const gzipTar = (entries: TEntry[]) => Bun.gzipSync(makeTar(entries) as Uint8Array<ArrayBuffer>);
