/**
 * zstd archives of rootfs entries: SILO_HOME/rootfs/<hex>/ ⇄ SILO_HOME/rootfs/<hex>.tar.zst. An entry
 * unused for a while is packed (`silo cache compress`) and unpacked again, transparently, by the next run
 * that needs it. Both directions write to a temporary name and rename, so an interruption leaves the
 * entry as it was. zstd is Bun's native binding (node:zlib createZstdCompress/Decompress, streaming);
 * fzstd (pure JS, decompression only) measured several times slower, see scripts/bench/build.ts.
 */
import { chmodSync, closeSync, createReadStream, existsSync, fsyncSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, renameSync, rmSync, symlinkSync, writeSync } from "node:fs";
import { isAbsolute, join, normalize } from "node:path";
import { removeTree } from "../core/fs.ts";
import { log } from "../core/log.ts";
import { packTree, TarReader, type EntrySink, type TarEntry } from "../core/tar.ts";
import { mknod, writeXattrs } from "../core/xattr.ts";

export const archiveOf = (dir: string) => `${dir}.tar.zst`;
const tmpName = (p: string) => `${p}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

const FRAME = 16 << 20;

/**
 * Pack `dir` into `out` (a .tar.zst). The tar stream is cut into 16 MiB pieces, each compressed as its own
 * zstd frame on Bun's thread pool, as many at once as there are cores (a .zst may hold several frames; the
 * ratio stays within 1% of one frame, and it runs faster than the single-threaded `zstd` CLI).
 * The directory itself is left alone: the caller removes it.
 */
export async function compressDir(dir: string, out: string, level = 3): Promise<number> {
  const tmp = tmpName(out);
  const fd = openSync(tmp, "wx", 0o600);
  let size = 0;
  try {
    await zstdFrames(packTree(dir), (b) => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      size += b.length;
    }, level);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, out);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  return size;
}

/** Compress a stream of buffers as independent zstd frames of ~16 MiB, in parallel, written in order. */
export async function zstdFrames(source: Iterable<Buffer>, write: (b: Uint8Array) => void, level = 3): Promise<void> {
  const { availableParallelism } = await import("node:os");
  const parallel = Math.max(1, Math.min(4, availableParallelism()));
  const inflight: Promise<Uint8Array>[] = [];
  let batch: Buffer[] = [];
  let batchLen = 0;
  const flush = async () => {
    if (!batchLen) return;
    inflight.push(Bun.zstdCompress(Buffer.concat(batch, batchLen), { level }));
    batch = [];
    batchLen = 0;
    if (inflight.length >= parallel) write(await inflight.shift()!);
  };
  for (const b of source) {
    batch.push(b);
    batchLen += b.length;
    if (batchLen >= FRAME) await flush();
  }
  await flush();
  for (const p of inflight) write(await p);
}

/** Unpack `archive` into `dest` (which must not exist yet). */
export async function extractArchive(archive: string, dest: string): Promise<void> {
  const zlib = await import("node:zlib");
  const tmp = tmpName(dest);
  try {
    const stream = createReadStream(archive, { highWaterMark: 1 << 20 }).pipe(zlib.createZstdDecompress({ chunkSize: 1 << 20 }));
    await extractTar(stream, tmp);
    renameSync(tmp, dest);
  } catch (e) {
    removeTree(tmp);
    // Another silo restored the same entry at the same time: theirs is as good as ours.
    if (!existsSync(dest)) throw e;
  }
}

/** Write a tar stream into a new directory `dest`, restoring types, modes, owners, times, links, xattrs. */
export async function extractTar(stream: AsyncIterable<Uint8Array>, dest: string): Promise<number> {
  mkdirSync(dest, { mode: 0o700 });
  const asRoot = process.getuid?.() === 0;
  const dirs: { path: string; e: TarEntry }[] = [];
  const made = new Set<string>(["."]);
  let count = 0;
  const finish = (p: string, e: TarEntry) => {
    if (asRoot || e.uid !== process.getuid?.()) {
      try {
        lchownSync(p, e.uid, e.gid);
      } catch {
        // a rootless user cannot give files away; they stay ours, as the image engine unpacked them
      }
    }
    if (e.type !== "symlink") chmodSync(p, e.mode);
    if (e.xattrs?.size) {
      const failed = writeXattrs(p, Object.fromEntries(e.xattrs));
      if (failed.length) log.debug(`${p}: could not restore xattrs ${failed.join(", ")}`);
    }
    lutimesSync(p, e.mtime, e.mtime);
  };
  const fileSink = (p: string, e: TarEntry): EntrySink => {
    const fd = openSync(p, "wx", 0o600);
    return {
      write(chunk) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      },
      end() {
        closeSync(fd);
        finish(p, e);
      },
    };
  };
  const reader = new TarReader(
    (e) => {
      count++;
      const rel = normalize(e.path).replace(/\/+$/, "") || ".";
      if (isAbsolute(rel) || rel === ".." || rel.startsWith("../")) throw new Error(`unsafe archive path ${e.path}`);
      const parent = rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : ".";
      if (rel !== "." && !made.has(parent)) throw new Error(`archive entry ${e.path} comes before its directory`);
      const p = rel === "." ? dest : join(dest, rel);
      switch (e.type) {
        case "dir":
          if (rel !== ".") mkdirSync(p, { mode: 0o700 });
          made.add(rel);
          dirs.push({ path: p, e });
          return null;
        case "file":
          return fileSink(p, e);
        case "hardlink":
          linkSync(join(dest, normalize(e.linkpath)), p);
          return null;
        case "symlink":
          symlinkSync(e.linkpath, p);
          break;
        case "char":
        case "block":
          // Only overlay whiteouts (0/0) are restored: no device node of an image belongs on the host.
          if (e.type === "block" || e.devmajor !== 0 || e.devminor !== 0) {
            log.debug(`${p}: skipped a device node`);
            return null;
          }
          mknod(p, 0o020000 | (e.mode & 0o7777), 0);
          break;
        case "fifo":
          mknod(p, 0o010000 | (e.mode & 0o7777), 0);
          break;
      }
      finish(p, e);
      return null;
    },
    { code: "E_IO", name: "a cache archive", hint: "remove it with `silo cache gc`; the tool's image is pulled again when needed", requireEnd: true },
  );
  for await (const chunk of stream) reader.push(chunk);
  reader.end();
  // Directories last, deepest first: their modes may forbid writing and their mtimes moved as we wrote.
  for (const d of dirs.reverse()) finish(d.path, d.e);
  return count;
}

/** If `dir` is gone but its archive is there, bring it back (and drop the archive). True when restored. */
export async function restoreDir(dir: string): Promise<boolean> {
  const archive = archiveOf(dir);
  if (existsSync(dir) || !existsSync(archive)) return false;
  log.info(`unpacking a compressed rootfs (${dir.split("/").pop()!.slice(0, 12)}) for its first use in a while`);
  await extractArchive(archive, dir);
  rmSync(archive, { force: true });
  return true;
}
