import { mkdirSync, readdirSync, renameSync, existsSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { digestHex, hasBlob, putBlob, readBlob, removeBlob, sha256 } from "../cache/blobs.ts";
import { digestForRef, openDb, recordPull } from "../cache/db.ts";
import { RegistryClient } from "./client.ts";
import { applyLayer, CorruptBlob, fetchLayer } from "./layers.ts";
import { removeTree } from "../core/fs.ts";
import { localImage, readMarker, rootfsDir, writeMarker } from "./local.ts";
import { withLock } from "./lock.ts";
import { choosePlatform, formatPlatform, hostPlatform, type Layer, parseImageConfig, parseManifest, parsePlatform, type Platform } from "./manifest.ts";
import { formatBytes, formatSeconds, PullProgress } from "./progress.ts";
import type { PulledImage, PullOptions } from "./pull.ts";
import { familiarName, type ImageRef, parseImageRef } from "./ref.ts";
import { Unpacker } from "./unpack.ts";

interface Resolved {
  digest: string;
  indexDigest?: string;
  configDigest: string;
  layers: Layer[];
}

export async function runPull(ref: string, opts: PullOptions & { home: HomePaths }): Promise<PulledImage> {
  const t0 = performance.now();
  const { home } = opts;
  const parsed = parseImageRef(ref);
  const name = familiarName(parsed);
  const platform = opts.platform ?? hostPlatform();
  const wanted = parsePlatform(platform);
  const db = openDb(home);
  const ready = (digest: string, r?: Resolved) => {
    const local = localImage(digest, home);
    if (!local) return null;
    const marker = readMarker(home, digest)!;
    if (r) recordPull(db, { ref: parsed.canonical, platform, digest, indexDigest: r.indexDigest, configDigest: r.configDigest, layers: r.layers, downloadSize: marker.sizes.download, unpackedSize: marker.sizes.unpacked });
    return { ref: parsed.canonical, digest, rootfs: local.rootfs, config: local.config, sizes: marker.sizes, cached: true, timings: { resolve: performance.now() - t0, download: 0, unpack: 0, total: performance.now() - t0 } };
  };

  // A digest never changes what it names: a rootfs pulled by it before needs no network.
  if (parsed.digest) {
    const hit = ready(digestForRef(db, parsed.canonical, platform) ?? parsed.digest);
    if (hit) return hit;
  }
  const client = new RegistryClient(parsed, opts);
  let r: Resolved;
  try {
    r = await resolve(client, parsed, wanted, home);
  } catch (e) {
    // Offline: a tag pulled before still names what we have; say so and use it.
    const known = e instanceof SiloError && e.code === "E_NETWORK" ? digestForRef(db, parsed.canonical, platform) : null;
    const hit = known ? ready(known) : null;
    if (!hit) throw e;
    log.warn(`${e instanceof Error ? e.message : e}; using ${name} as pulled before (${known!.slice(0, 19)})`);
    return hit;
  }
  const hit = ready(r.digest, r);
  if (hit) {
    if (!opts.quiet) log.info(`${name} is up to date (${r.digest.slice(0, 19)})`);
    return hit;
  }
  const hex = digestHex(r.digest);
  return withLock(
    join(home.images, "locks", `${hex}.lock`),
    async () => {
      // Another silo may have made it while we waited for the lock.
      const again = ready(r.digest, r);
      if (again) return again;
      const tResolved = performance.now();
      const configBytes = readBlob(home, r.configDigest) ?? putBlobBytes(home, r.configDigest, await client.getSmallBlob(r.configDigest));
      const config = parseImageConfig(configBytes, name);
      warnOnPlatform(configBytes, wanted, name);
      const built = await build(home, client, r, name, opts);
      const download = r.layers.reduce((s, l) => s + l.size, 0);
      const sizes = { download, unpacked: built.unpacked };
      writeMarker(home, { digest: r.digest, config, configDigest: r.configDigest, platform, refs: [parsed.canonical], layers: r.layers.map((l) => l.digest), sizes, createdAt: new Date().toISOString() });
      recordPull(db, { ref: parsed.canonical, platform, digest: r.digest, indexDigest: r.indexDigest, configDigest: r.configDigest, layers: r.layers, downloadSize: download, unpackedSize: built.unpacked });
      const total = performance.now() - t0;
      return {
        ref: parsed.canonical,
        digest: r.digest,
        rootfs: rootfsDir(home, r.digest),
        config,
        sizes,
        timings: { resolve: tResolved - t0, download: built.downloadMs, unpack: built.unpackMs, total },
      };
    },
    { signal: opts.signal, onWait: () => opts.quiet || log.info(`waiting for another silo pulling ${name}`) },
  );
}

function putBlobBytes(home: HomePaths, digest: string, bytes: Uint8Array): Uint8Array {
  putBlob(home, digest, bytes);
  return bytes;
}

/** Tag or digest → (index →) the platform's image manifest, all verified and stored. */
async function resolve(client: RegistryClient, ref: ImageRef, wanted: Platform, home: HomePaths): Promise<Resolved> {
  const what = familiarName(ref);
  const got = await client.getManifest(ref.digest ?? ref.tag!);
  let digest = sha256(got.bytes);
  if (ref.digest && digest !== ref.digest) throw mismatchError(ref.digest, digest, what);
  let m = parseManifest(got.bytes, got.contentType, what);
  let indexDigest: string | undefined;
  putBlob(home, digest, got.bytes);
  if (m.kind === "index") {
    indexDigest = digest;
    const pick = choosePlatform(m.manifests, wanted, what);
    digest = pick.digest;
    const stored = readBlob(home, digest);
    const inner = stored ? { bytes: stored, contentType: pick.mediaType } : await client.getManifest(digest);
    const innerDigest = sha256(inner.bytes);
    if (innerDigest !== digest) throw mismatchError(digest, innerDigest, what);
    m = parseManifest(inner.bytes, inner.contentType || pick.mediaType, what);
    if (m.kind === "index") throw new SiloError("E_IMAGE", `${what}: an image index inside an image index is not supported`);
    putBlob(home, digest, inner.bytes);
  }
  return { digest, indexDigest, configDigest: m.config.digest, layers: m.layers };
}

const mismatchError = (want: string, got: string, what: string) =>
  new SiloError("E_IMAGE", `the registry sent a manifest for ${what} that does not match its digest (expected ${want.slice(0, 19)}, got ${got.slice(0, 19)})`, "the registry or a proxy altered it; try again or use another mirror");

function warnOnPlatform(configBytes: Uint8Array, wanted: Platform, what: string) {
  try {
    const c = JSON.parse(new TextDecoder().decode(configBytes)) as { os?: string; architecture?: string };
    if (c.architecture && c.os && (c.os !== wanted.os || c.architecture !== wanted.architecture))
      log.warn(`${what} is built for ${c.os}/${c.architecture}, not ${formatPlatform(wanted)}; it may not run here`);
  } catch {}
}

/** Download missing layers in parallel and unpack them in order into a temp dir, then rename it into place. */
async function build(home: HomePaths, client: RegistryClient, r: Resolved, name: string, opts: PullOptions) {
  const hex = digestHex(r.digest);
  mkdirSync(home.rootfs, { recursive: true });
  for (const n of readdirSync(home.rootfs)) if (n.startsWith(`.tmp-${hex}-`)) removeTree(join(home.rootfs, n)); // left by a killed pull
  const progress = new PullProgress(name, r.layers, { quiet: opts.quiet });
  const missing = r.layers.filter((l) => !hasBlob(home, l.digest, l.size));
  let downloaded = 0;
  for (const l of new Set(missing)) downloaded += l.size;
  progress.start(missing.length, downloaded);

  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const limit = Math.max(1, opts.concurrency ?? 3);
  let running = 0;
  const queue: (() => void)[] = [];
  const slot = async () => {
    if (running >= limit) await new Promise<void>((res) => queue.push(res));
    running++;
  };
  const release = () => {
    running--;
    queue.shift()?.();
  };
  const tDownload = performance.now();
  let downloadEnd = tDownload;
  const fetchOne = async (i: number) => {
    const layer = r.layers[i]!;
    await slot();
    try {
      const fresh = await fetchLayer(home, client, layer, {
        signal,
        onStart: () => progress.set(i, "downloading"),
        onBytes: (n) => progress.add(i, n),
        onReset: () => progress.reset(i),
      });
      progress.set(i, fresh ? "downloaded" : "cached");
      downloadEnd = performance.now();
      return fresh;
    } finally {
      release();
    }
  };
  const fetches = r.layers.map((_, i) => fetchOne(i));
  for (const f of fetches) f.catch(() => {}); // awaited below, in order; no unhandled rejections meanwhile

  const tmp = join(home.rootfs, `.tmp-${hex}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  let unpackMs = 0;
  let unpacked = 0;
  try {
    for (let round = 0; ; round++) {
      mkdirSync(tmp, { mode: 0o755 });
      const unpacker = new Unpacker(tmp);
      unpackMs = 0;
      try {
        for (let i = 0; i < r.layers.length; i++) {
          const fresh = await fetches[i]!;
          const before = unpacker.stats.bytes;
          progress.unpacking(i, () => unpacker.stats.bytes - before);
          const t = performance.now();
          await applyLayer(home, r.layers[i]!, unpacker, !fresh);
          unpackMs += performance.now() - t;
          progress.set(i, "done");
        }
        unpacker.finish();
        unpacked = unpacker.stats.bytes;
        if (unpacker.stats.skippedDevices) log.debug(`${name}: skipped ${unpacker.stats.skippedDevices} device node(s) (needs root)`);
        break;
      } catch (e) {
        if (!(e instanceof CorruptBlob) || round > 0) throw e;
        // A stored blob went bad on disk: drop it, fetch it again, unpack from scratch.
        log.warn(`the stored layer ${e.digest.slice(0, 19)} is damaged; downloading it again`);
        removeBlob(home, e.digest);
        removeTree(tmp);
        const i = r.layers.findIndex((l) => l.digest === e.digest);
        fetches[i] = fetchOne(i);
        fetches[i]!.catch(() => {});
      }
    }
    const dest = rootfsDir(home, r.digest);
    if (existsSync(dest)) removeTree(dest); // an old rootfs without its marker is incomplete
    renameSync(tmp, dest);
  } catch (e) {
    stop.abort();
    progress.finish();
    removeTree(tmp);
    throw e;
  }
  const downloadMs = downloadEnd - tDownload;
  progress.finish(
    downloaded
      ? `pulled ${name} ${formatBytes(downloaded)} in ${formatSeconds(downloadMs)}, unpacked ${formatBytes(unpacked)} in ${formatSeconds(unpackMs)}`
      : `unpacked ${name} ${formatBytes(unpacked)} in ${formatSeconds(unpackMs)} (layers were already here)`,
  );
  return { unpacked, downloadMs, unpackMs };
}
