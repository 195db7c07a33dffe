/**
 * pullImage: ref → verified blobs → a ready rootfs under SILO_HOME/rootfs/<manifest hex>.
 * Top-level imports stay light (`silo run` imports this module for localImage); the registry client,
 * unpacker and database load inside pullImage.
 */
import { homePaths, type HomePaths } from "../core/paths.ts";
import { localImage, type ImageConfig } from "./local.ts";

export { localImage, removeRootfs, listRootfs, rootfsLastUsed } from "./local.ts";
export { exportExt4 } from "./ext4.ts";
export type { ImageConfig };

export interface PullOptions {
  home?: HomePaths;
  /** `[images.mirrors]` of the global silo.toml. */
  mirrors?: Record<string, string | string[]>;
  /** `[images] insecure` of the global silo.toml. */
  insecure?: string[];
  /** `os/arch[/variant]`; default this machine's (`linux/amd64`, `linux/arm64`). */
  platform?: string;
  quiet?: boolean;
  signal?: AbortSignal;
  /** Docker config.json for credentials (tests); default `$DOCKER_CONFIG` or `~/.docker/config.json`. */
  dockerConfig?: string;
  /** Request timeout and retry tuning (tests); see ClientOptions. */
  timeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
  /** Parallel layer downloads (default 3). */
  concurrency?: number;
}

export interface PulledImage {
  /** Canonical ref as pulled: `docker.io/library/python:3.11-slim`. */
  ref: string;
  /** Manifest digest of the chosen platform (the rootfs key). */
  digest: string;
  /** Absolute, complete rootfs directory. */
  rootfs: string;
  config: ImageConfig;
  sizes: { download: number; unpacked: number };
  /** Where the time went (ms), for `--debug` and the benchmark. Zero when nothing had to be done. */
  timings?: { resolve: number; download: number; unpack: number; total: number };
  /** True when the rootfs already existed and nothing was downloaded. */
  cached?: boolean;
}

/** Pull `ref` (tag or digest) for one platform and unpack it, unless that rootfs is already here. */
export async function pullImage(ref: string, opts: PullOptions = {}): Promise<PulledImage> {
  const { runPull } = await import("./pull-run.ts");
  return runPull(ref, { ...opts, home: opts.home ?? homePaths() });
}

export const hasImage = (digest: string, home: HomePaths = homePaths()) => localImage(digest, home) !== null;
