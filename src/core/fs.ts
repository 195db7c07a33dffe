import { accessSync, chmodSync, closeSync, constants, lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join } from "node:path";

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
 * reads `+ dir` (remember) and `- dir` (remove now) lines and, when silo is gone, removes every directory
 * it was told of. The bwrap driver's native stage brings its own (adoptReaper), which waits for silo's
 * process to end, whatever program it runs by then; else a /bin/sh one starts on first use, while a
 * sandbox runs (so the end of a run pays no spawn), and takes EOF on its stdin for silo's end. null when
 * it cannot start (the next silo removes leftovers: bwrap/plan.ts cleanStaleRuns).
 */
export function startReaper(dir: string): Reaper | null {
  const sink = reaperSink();
  if (!sink || !sink(`+ ${dir}`)) return null;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      sink(`- ${dir}`);
    },
  };
}

/** Writes one line to the reaper; false when it is gone. */
type Sink = (line: string) => boolean;
let sink: Sink | null | undefined;
let adopted = false;

/** Does this process use an adopted reaper (one that follows its pid, not only its socket)? */
export const hasAdoptedReaper = (): boolean => adopted;

/**
 * Use the reaper listening on `fd` (one end of a socket pair, which this process keeps open until it
 * exits) instead of starting one. The first reaper stays: a second one's descriptor is closed, which ends it.
 */
export function adoptReaper(fd: number): void {
  if (sink) return closeSync(fd);
  adopted = true;
  sink = (line) => {
    try {
      writeAll(fd, Buffer.from(`${line}\n`));
      return true;
    } catch {
      return false; // it is gone
    }
  };
}

/** Write everything to `fd`; a socket may be non-blocking and its reader not there yet. */
export function writeAll(fd: number, data: Uint8Array) {
  for (let off = 0; off < data.length; ) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Bun.sleepSync(1);
    }
  }
}

function reaperSink(): Sink | null {
  if (sink !== undefined) return sink;
  try {
    const proc = Bun.spawn(["/bin/sh", "-c", REAPER_SH, "silo-reaper"], {
      env: { PATH: "/usr/bin:/bin" },
      stdin: "pipe",
      stdout: "ignore",
      stderr: "ignore",
    });
    proc.unref();
    const stdin = proc.stdin as unknown as import("bun").FileSink;
    sink = (line) => {
      try {
        stdin.write(`${line}\n`);
        stdin.flush();
        return true;
      } catch {
        return false; // it is gone
      }
    };
  } catch {
    sink = null;
  }
  return sink;
}

/**
 * The reaper's script. Paths never hold a newline (checkSpec refuses them). Overlay work dirs are left
 * mode 000 by the kernel: opened first. It is in silo's process group: a Ctrl-C at the terminal, or a
 * SIGTERM/SIGHUP to the whole job, is not its end (EOF is, when silo ends; as the native stage's reaper).
 */
export const REAPER_SH = `set -f
trap '' INT QUIT HUP TERM
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

/** Whether a process with this pid exists (EPERM: it does, another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** `p` with every symlink resolved, or `p` itself when it cannot be (missing, no permission). */
export function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** `dev:ino` of what `p` resolves to (symlinks followed), or null when it cannot be stat'ed. */
function fileIdentity(p: string): string | null {
  try {
    const s = statSync(p);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/**
 * The first `name` on PATH that is an executable file and not silo's own binary (same device and inode: a
 * shim symlink, a hard link, a copy). `absoluteOnly`: skip relative entries (they would resolve in the project).
 */
export function findOtherOnPath(name: string, absoluteOnly = false): string | null {
  const self = fileIdentity(process.execPath);
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || (absoluteOnly && !isAbsolute(dir))) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile() && fileIdentity(p) !== self) return p;
    } catch {
      // not there, or not executable
    }
  }
  return null;
}
