import { chmodSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Write a file by temp file + rename, so readers see the old or the new content, never half. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Delete a directory tree that may hold read-only directories (an unpacked image has 0555 ones, a
 * sandbox's overlay upper may too), which an unprivileged owner cannot empty until they are writable.
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch {
    makeWritable(path);
  }
  rmSync(path, { recursive: true, force: true });
}

function makeWritable(p: string) {
  let st;
  try {
    st = lstatSync(p);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  try {
    chmodSync(p, 0o700);
  } catch {
    // not ours: rm will say so
  }
  for (const e of readdirSync(p)) makeWritable(join(p, e));
}

/** Removes one run directory later; see startReaper. */
export interface Reaper {
  /** Remove it now (in the background). */
  release(): void;
}

/**
 * A process that removes `dir` once silo releases it or exits (killed or not: its stdin, which silo
 * holds, reaches EOF either way). Start it while a sandbox runs, so the end of a run pays no spawn; the
 * removal itself happens in the background, usually after silo has gone.
 */
export function startReaper(dir: string): Reaper | null {
  try {
    const proc = Bun.spawn(["/bin/sh", "-c", REAPER_SH, "silo-reaper", dir], {
      env: { PATH: "/usr/bin:/bin" },
      stdin: "pipe",
      stdout: "ignore",
      stderr: "ignore",
    });
    proc.unref();
    const stdin = proc.stdin as unknown as import("bun").FileSink;
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        try {
          stdin.end();
        } catch {
          // it is gone: the next silo's cleanStaleRuns removes the directory
        }
      },
    };
  } catch {
    return null;
  }
}

/** The reaper's script: wait for EOF, open overlay work dirs (mode 000) where there are any, remove. */
export const REAPER_SH = 'read -r _; chmod 700 "$1/work/work" "$1/work" "$1/w/work" 2>/dev/null; exec rm -rf -- "$1"';
