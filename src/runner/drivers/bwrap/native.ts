/**
 * The native set-up stage (native/silo-stage.c): embedded in the compiled silo by scripts/build.ts and
 * written once to SILO_HOME/libexec/<embedded name>, whose name carries a hash of its content, so an
 * upgraded silo never runs an older stage. Without it (running from source, a build without a C
 * compiler, SILO_STAGE=sh, a SILO_HOME where it cannot be written) the driver uses its /bin/sh stage. On a
 * noexec SILO_HOME the launch fails with a message that names SILO_STAGE=sh.
 */
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../../core/log.ts";

let cached: string | null | undefined;

let found: (Blob & { name: string }) | undefined | null = null;
/** The embedded stage (Bun.embeddedFiles makes its Blobs anew on each use: looked up once). */
const embedded = () =>
  process.env.SILO_STAGE === "sh"
    ? undefined
    : found !== null
      ? found
      : (found = Bun.embeddedFiles.find((f) => (f as Blob & { name?: string }).name?.startsWith("silo-stage")) as (Blob & { name: string }) | undefined);

const destination = (home: string, file: Blob & { name: string }) => join(home, "libexec", file.name.replace(/\.$/, ""));

/** Does this silo carry a native stage (and may use it)? Cheap: no disk access. */
export const hasNativeStage = () => embedded() !== undefined;

/** Path of the native stage, written out on first use; null when this silo has none (or SILO_STAGE=sh). */
export async function nativeStage(home: string): Promise<string | null> {
  if (cached !== undefined) return cached;
  cached = null;
  const file = embedded();
  if (!file) return null;
  const dest = destination(home, file);
  if (existsSync(dest)) return (cached = dest);
  const tmp = `${dest}.${process.pid}.tmp`;
  try {
    mkdirSync(join(home, "libexec"), { recursive: true, mode: 0o755 });
    writeFileSync(tmp, new Uint8Array(await file.arrayBuffer()), { mode: 0o755 });
    chmodSync(tmp, 0o755);
    renameSync(tmp, dest);
    return (cached = dest);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // never written
    }
    log.debug(`bwrap: cannot write the native stage to ${dest} (${(e as Error).message}); using the /bin/sh stage`);
    return null;
  }
}

/** The native stage's path if it is written out already (no writing: for `prewarm`, which must not wait). */
export function writtenNativeStage(home: string): string | null {
  if (cached !== undefined) return cached;
  const file = embedded();
  if (!file) return null;
  const dest = destination(home, file);
  return existsSync(dest) ? (cached = dest) : null;
}

/** For `silo doctor`: which stage sandboxes start with here. */
export async function stageDescription(home: string): Promise<string> {
  const p = await nativeStage(home);
  return p ? `native (${p})` : process.env.SILO_STAGE === "sh" ? "/bin/sh + unshare (SILO_STAGE=sh)" : "/bin/sh + unshare (this build has no native stage)";
}
