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
 * Remove `dir` in the background once it is released, or when silo exits, killed or not. One reaper
 * process serves a whole silo process (a sandbox's run dir and its network's socket dir share it): it
 * reads `+ dir` (remember) and `- dir` (remove now) lines on its stdin, and at EOF, which silo's death
 * also gives, removes every directory it was told of. Start it while a sandbox runs, so the end of a run
 * pays no spawn. null when it cannot start (the next silo removes leftovers: bwrap/plan.ts cleanStaleRuns).
 */
export function startReaper(dir: string): Reaper | null {
  const sink = reaperSink();
  if (!sink || !tell(sink, `+ ${dir}`)) return null;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      tell(sink, `- ${dir}`);
    },
  };
}

let sink: import("bun").FileSink | null | undefined;

function reaperSink(): import("bun").FileSink | null {
  if (sink !== undefined) return sink;
  try {
    const proc = Bun.spawn(["/bin/sh", "-c", REAPER_SH, "silo-reaper"], {
      env: { PATH: "/usr/bin:/bin" },
      stdin: "pipe",
      stdout: "ignore",
      stderr: "ignore",
    });
    proc.unref();
    sink = proc.stdin as unknown as import("bun").FileSink;
  } catch {
    sink = null;
  }
  return sink;
}

function tell(s: import("bun").FileSink, line: string): boolean {
  try {
    s.write(`${line}\n`);
    s.flush();
    return true;
  } catch {
    return false; // it is gone
  }
}

/**
 * The reaper's script. Paths never hold a newline (checkSpec refuses them). Overlay work dirs are left
 * mode 000 by the kernel: opened first.
 */
export const REAPER_SH = `set -f
rm_dir() { chmod 700 "$1/work/work" "$1/work" "$1/w/work" 2>/dev/null; rm -rf -- "$1"; }
all=
while IFS= read -r line; do
  case $line in
    "+ "*) all="$all\${line#+ }
" ;;
    "- "*) rm_dir "\${line#- }" ;;
  esac
done
printf '%s' "$all" | while IFS= read -r d; do [ -n "$d" ] && rm_dir "$d"; done`;
