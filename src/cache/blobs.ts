/**
 * The content-addressed blob store under SILO_HOME/images: blobs/sha256/<hex> holds manifests, configs and
 * layers by digest. Nothing lands there unverified: bytes are hashed while they stream into
 * tmp/<hex>.partial, compared with the digest, then renamed into place. A partial file outlives an
 * interrupted download, so the next try resumes it (Range) instead of starting over.
 */
import { closeSync, existsSync, readFileSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import type { HomePaths } from "../core/paths.ts";

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** The hex of a sha256 digest; anything else is refused (it becomes a file name). */
export function digestHex(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new SiloError("E_IMAGE", `unsupported digest ${JSON.stringify(digest)}`, "silo stores sha256 digests only");
  return m[1]!;
}

export const blobDir = (home: HomePaths) => join(home.images, "blobs", "sha256");
export const tmpDir = (home: HomePaths) => join(home.images, "tmp");
export const blobPath = (home: HomePaths, digest: string) => join(blobDir(home), digestHex(digest));

export const sha256 = (data: Uint8Array | string) => `sha256:${new Bun.CryptoHasher("sha256").update(data).digest("hex")}`;

/** Present with the expected size (a cheap check; contents are verified when read for unpacking). */
export function hasBlob(home: HomePaths, digest: string, size?: number): boolean {
  try {
    const st = statSync(blobPath(home, digest));
    return st.isFile() && (size === undefined || st.size === size);
  } catch {
    return false;
  }
}

/** Store a small blob held in memory (manifest, config) after checking its digest. */
export function putBlob(home: HomePaths, digest: string, bytes: Uint8Array): string {
  const got = sha256(bytes);
  if (got !== digest) throw mismatch(digest, got);
  const path = blobPath(home, digest);
  if (!existsSync(path)) writeFileAtomic(path, bytes, 0o644);
  return path;
}

/** A small blob's bytes if present and intact; a damaged one is removed (null: fetch it again). */
export function readBlob(home: HomePaths, digest: string): Uint8Array | null {
  const path = blobPath(home, digest);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    return null;
  }
  if (sha256(bytes) === digest) return bytes;
  rmSync(path, { force: true });
  return null;
}

export function removeBlob(home: HomePaths, digest: string) {
  rmSync(blobPath(home, digest), { force: true });
}

/** Every stored blob with its size and modification time (for `silo cache` reports and gc). */
export function listBlobs(home: HomePaths): { digest: string; size: number; mtimeMs: number }[] {
  const dir = blobDir(home);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^[a-f0-9]{64}$/.test(n))
    .map((n) => {
      const st = statSync(join(dir, n));
      return { digest: `sha256:${n}`, size: st.size, mtimeMs: st.mtimeMs };
    });
}

export const mismatch = (want: string, got: string) =>
  new SiloError("E_IMAGE", `digest mismatch: expected ${want}, got ${got}`, "the registry or mirror sent corrupted data; silo discarded it, try again");

/**
 * A download in progress: appends to tmp/<hex>.partial while hashing. `open` resumes an existing partial
 * (its bytes are hashed first), so `offset` is where the next request should start.
 */
export class PartialBlob {
  private hasher = new Bun.CryptoHasher("sha256");
  private fd: number;
  offset = 0;

  private constructor(
    readonly path: string,
    readonly digest: string,
    readonly size: number,
    private readonly home: HomePaths,
  ) {
    this.fd = openSync(path, "a+", 0o644);
  }

  static open(home: HomePaths, digest: string, size: number): PartialBlob {
    mkdirSync(tmpDir(home), { recursive: true });
    mkdirSync(blobDir(home), { recursive: true });
    const p = new PartialBlob(join(tmpDir(home), `${digestHex(digest)}.partial`), digest, size, home);
    const have = fstatSync(p.fd).size;
    if (have >= size) p.restart(); // nothing to resume, or junk: start over
    else if (have > 0) {
      const buf = Buffer.allocUnsafe(1 << 20);
      let pos = 0;
      while (pos < have) {
        const n = readSync(p.fd, buf, 0, Math.min(buf.length, have - pos), pos);
        if (n <= 0) break;
        p.hasher.update(buf.subarray(0, n));
        pos += n;
      }
      p.offset = pos;
    }
    return p;
  }

  write(chunk: Uint8Array) {
    if (this.offset + chunk.length > this.size)
      throw new SiloError("E_IMAGE", `${this.digest.slice(0, 19)} is larger than the ${this.size} bytes its manifest states`, "the registry sent a different blob; try again");
    this.hasher.update(chunk);
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    this.offset += chunk.length;
  }

  /** The server ignored our Range: drop what we have. */
  restart() {
    ftruncateSync(this.fd, 0);
    this.hasher = new Bun.CryptoHasher("sha256");
    this.offset = 0;
  }

  /** Verify and move into the store. On mismatch the partial is deleted and the error thrown. */
  commit(): string {
    closeSync(this.fd);
    this.fd = -1;
    const got = `sha256:${this.hasher.digest("hex")}`;
    if (this.offset !== this.size || got !== this.digest) {
      rmSync(this.path, { force: true });
      if (this.offset !== this.size)
        throw new SiloError("E_IMAGE", `${this.digest.slice(0, 19)}: got ${this.offset} bytes, expected ${this.size}`, "the download ended early; try again");
      throw mismatch(this.digest, got);
    }
    const dest = blobPath(this.home, this.digest);
    renameSync(this.path, dest);
    return dest;
  }

  /** Close, keeping the partial for a later resume. */
  close() {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
