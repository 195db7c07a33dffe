import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { SiloError } from "../core/errors.ts";
import { tryLock, unlock } from "./native.ts";

/**
 * Run `fn` holding an exclusive flock on `path` (created if missing, never deleted: deleting lock files
 * races). The kernel drops the lock when its process dies, so a killed pull never wedges the next one.
 * The wait polls (a blocking flock would stall Bun's event loop) and calls `onWait` once.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: { signal?: AbortSignal; onWait?: () => void } = {}): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a", 0o644);
  try {
    let waited = false;
    let delay = 20;
    while (!tryLock(fd)) {
      if (opts.signal?.aborted) throw new SiloError("E_IMAGE", "image pull cancelled", undefined, 130);
      if (!waited) opts.onWait?.();
      waited = true;
      await Bun.sleep(delay);
      delay = Math.min(250, delay * 2);
    }
    try {
      return await fn();
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}
