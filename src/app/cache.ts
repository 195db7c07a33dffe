/**
 * Use cases of `silo cache` and `silo clean`: reports, gc, compression and cleaning of SILO_HOME, built
 * on the planners in src/cache. Every destructive command first makes a plan (a list of actions); its
 * --dry-run prints that plan, and the real run executes exactly that plan.
 */
import { homePaths, type HomePaths } from "../core/paths.ts";

/** A compressed rootfs needed by a run: unpack it, then hand it out as localImage() would. */
export async function restoreImage(digest: string, home: HomePaths = homePaths()) {
  const { localImage, rootfsDir } = await import("../image/local.ts");
  const { restoreDir } = await import("../cache/compress.ts");
  return (await restoreDir(rootfsDir(home, digest))) ? localImage(digest, home) : null;
}
