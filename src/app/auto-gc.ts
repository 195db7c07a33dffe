/**
 * The daily automatic gc. `silo run` calls `maybeAutoGc` before its sandbox starts (a run handed over to
 * the driver's waiter never returns to silo's JavaScript): one stat of a stamp file, and at most once a
 * day a detached `silo cache gc --auto` that outlives this process, so the command is never delayed.
 * The first call in a fresh SILO_HOME only starts the clock.
 */
import { closeSync, mkdirSync, openSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import type { HomePaths } from "../core/paths.ts";

const DAY = 86_400_000;

export function maybeAutoGc(home: HomePaths, self: string[], now = Date.now()): boolean {
  const stamp = join(home.state, "gc.stamp");
  let last: number;
  try {
    last = statSync(stamp).mtimeMs;
  } catch {
    try {
      mkdirSync(home.state, { recursive: true });
      closeSync(openSync(stamp, "a"));
    } catch {}
    return false;
  }
  if (now - last < DAY || process.env.SILO_NO_AUTO_GC === "1") return false;
  try {
    // Claim the day first, so twenty shims finishing at once start one gc, not twenty.
    utimesSync(stamp, new Date(now), new Date(now));
    const proc = Bun.spawn([...self, "cache", "gc", "--auto"], {
      stdio: ["ignore", "ignore", "ignore"],
      env: { ...process.env, SILO_HOME: home.home },
      detached: true,
    });
    proc.unref();
    return true;
  } catch {
    return false;
  }
}
