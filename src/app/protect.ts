import { lstatSync, mkdirSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";

/**
 * Protected project paths that do not exist when a sandbox starts cannot be bound read-only (there is
 * nothing to bind, and a mount point would itself be created in the project). If the sandbox creates one
 * (an `.envrc` for direnv, a `.git/hooks/pre-commit` in a fresh `.git`), the host would run it later, so
 * it is moved out of the project into SILO_HOME/quarantine when the sandbox ends, and the user is told.
 */
export function missingPaths(root: string, paths: string[]): string[] {
  return paths.filter((p) => !exists(join(root, p)));
}

export function quarantineCreated(root: string, missing: string[], home: HomePaths, tool: string): string[] {
  const moved: string[] = [];
  let dest: string | undefined;
  for (const p of missing) {
    const src = join(root, p);
    if (!exists(src)) continue;
    dest ??= join(home.home, "quarantine", `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
    const to = join(dest, p);
    mkdirSync(dirname(to), { recursive: true });
    try {
      renameSync(src, to);
      moved.push(p);
    } catch (e) {
      log.warn(`${tool} created ${src}, a protected path, and silo could not move it away: ${(e as Error).message}; delete it before using this project`);
    }
  }
  if (moved.length)
    log.warn(`${tool} created protected path(s) ${moved.join(", ")} in the project; silo moved them to ${dest} (set [mount] writable to allow)`);
  return moved;
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
