/** Getting one layer into the blob store (resumable, verified), and applying one layer to a rootfs. */
import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { blobPath, digestHex, hasBlob, PartialBlob, tmpDir } from "../cache/blobs.ts";
import type { RegistryClient } from "./client.ts";
import { isRetriableNetworkError } from "./http-errors.ts";
import { withLock } from "./lock.ts";
import type { Layer } from "./manifest.ts";
import { TarReader } from "../core/tar.ts";
import type { Unpacker } from "./unpack.ts";

export interface FetchHooks {
  onStart?(): void;
  onBytes?(n: number): void;
  onReset?(): void;
  signal?: AbortSignal;
}

/** A stored blob that does not match its digest. */
export class CorruptBlob extends Error {
  constructor(readonly digest: string) {
    super(`stored blob ${digest} is damaged`);
  }
}

const isMismatch = (e: unknown) => e instanceof SiloError && e.message.startsWith("digest mismatch");

/**
 * Make sure the layer blob is in the store. True if it was downloaded now (and so verified just now).
 * One process downloads a given blob at a time (a flock per blob); a dropped connection resumes with a
 * Range request; a digest mismatch gets one fresh download before it is reported.
 */
export async function fetchLayer(home: HomePaths, client: RegistryClient, layer: Layer, hooks: FetchHooks = {}): Promise<boolean> {
  if (hasBlob(home, layer.digest, layer.size)) return false;
  const lock = join(tmpDir(home), `${digestHex(layer.digest)}.lock`);
  return withLock(
    lock,
    async () => {
      if (hasBlob(home, layer.digest, layer.size)) return false;
      hooks.onStart?.();
      for (let round = 0; ; round++) {
        const part = PartialBlob.open(home, layer.digest, layer.size);
        try {
          if (part.offset) hooks.onBytes?.(part.offset);
          await download(client, part, hooks);
          part.commit();
          return true;
        } catch (e) {
          part.close();
          if (round === 0 && isMismatch(e)) {
            log.warn(`${layer.digest.slice(0, 19)} arrived damaged; downloading it again`);
            hooks.onReset?.();
            continue;
          }
          throw e;
        }
      }
    },
    { signal: hooks.signal, onWait: () => log.debug(`waiting for another silo downloading ${layer.digest.slice(0, 19)}`) },
  );
}

async function download(client: RegistryClient, part: PartialBlob, hooks: FetchHooks) {
  let resumes = 0;
  for (;;) {
    const f = await client.getBlob(part.digest, part.offset);
    if (part.offset > 0 && f.res.status !== 206) {
      log.debug(`${part.digest.slice(0, 19)}: the server ignored the Range; starting over`);
      part.restart();
      hooks.onReset?.();
    }
    try {
      for await (const chunk of f.chunks()) {
        part.write(chunk);
        hooks.onBytes?.(chunk.length);
      }
      if (part.offset === part.size) return;
      throw Object.assign(new Error("the connection ended early"), { code: "ECONNRESET" });
    } catch (e) {
      f.abort();
      if (!isRetriableNetworkError(e) || ++resumes > 5) {
        if (e instanceof SiloError) throw e;
        throw new SiloError("E_NETWORK", `downloading ${part.digest.slice(0, 19)} from ${f.endpoint.host} failed: ${(e as Error).message}`, "try again: the download resumes where it stopped");
      }
      log.debug(`${part.digest.slice(0, 19)}: ${(e as Error).message}; resuming at byte ${part.offset}`);
    }
  }
}

export type Sniffed = "gzip" | "zstd" | "none";

/** The compression a blob actually uses, from its magic bytes (media types are sometimes wrong). */
export function sniffCompression(path: string): Sniffed {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(4);
    const n = readSync(fd, b, 0, 4, 0);
    if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
    if (n >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return "zstd";
    return "none";
  } finally {
    closeSync(fd);
  }
}

/**
 * Decompressors, measured on the python fixture's 83 MB layer (scripts/bench/pull.ts prints current
 * figures): node:zlib's streaming gunzip ~380 MB/s (Bun.gunzipSync is no faster and needs the whole
 * layer in memory); Bun's native zstd through node:zlib's streaming decoder ~420 MB/s against fzstd's
 * ~130-190 MB/s, so the native one is used and fzstd stays out of the binary.
 */
export async function decompressor(kind: Sniffed): Promise<Transform | null> {
  const zlib = await import("node:zlib");
  if (kind === "gzip") return zlib.createGunzip({ chunkSize: 256 << 10 });
  if (kind === "zstd") return zlib.createZstdDecompress({ chunkSize: 256 << 10 }) as unknown as Transform;
  return null;
}

/**
 * Stream one stored layer through its decompressor and the tar reader into the unpacker. With `verify`
 * the compressed bytes are hashed on the way (for blobs that were already in the store): a mismatch throws
 * CorruptBlob so the caller can fetch the blob again.
 */
export async function applyLayer(home: HomePaths, layer: Layer, unpacker: Unpacker, verify: boolean): Promise<void> {
  const path = blobPath(home, layer.digest);
  const kind = sniffCompression(path);
  const hasher = verify ? new Bun.CryptoHasher("sha256") : null;
  const reader = new TarReader(unpacker.onEntry);
  unpacker.beginLayer();
  const stages: unknown[] = [createReadStream(path, { highWaterMark: 1 << 20 })];
  if (hasher)
    stages.push(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hasher.update(chunk);
          cb(null, chunk);
        },
      }),
    );
  const dec = await decompressor(kind);
  if (dec) stages.push(dec);
  stages.push(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        try {
          reader.push(chunk);
          cb();
        } catch (e) {
          cb(e as Error);
        }
      },
    }),
  );
  try {
    await (pipeline as unknown as (...s: unknown[]) => Promise<void>)(...stages);
    reader.end();
  } catch (e) {
    // A damaged stored blob usually breaks the decompressor before the hash can be compared.
    if (verify && !(await blobIntact(path, layer.digest))) throw new CorruptBlob(layer.digest);
    throw e instanceof SiloError ? e : new SiloError("E_IMAGE", `layer ${layer.digest.slice(0, 19)} cannot be unpacked: ${(e as Error).message}`, "the image is damaged or uses an unsupported format");
  }
  if (hasher && `sha256:${hasher.digest("hex")}` !== layer.digest) throw new CorruptBlob(layer.digest);
}

async function blobIntact(path: string, digest: string): Promise<boolean> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return `sha256:${h.digest("hex")}` === digest;
}
