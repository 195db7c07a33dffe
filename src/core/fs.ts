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
