import { lstatSync } from "node:fs";
import { join } from "node:path";
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

export async function quarantineCreated(root: string, missing: string[], home: HomePaths, tool: string): Promise<string[]> {
  const there = missing.filter((p) => exists(join(root, p)));
  if (!there.length) return [];
  const { quarantine } = await import("./quarantine.ts");
  return quarantine(home, { root, tool }, there.map((p) => ({ base: root, from: p, path: p, reason: "a protected path the sandbox created (set [mount] writable to allow)" })));
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
