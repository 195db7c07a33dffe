/**
 * Where configuration lives, with nothing heavy imported: the resolved-config cache (app/context.ts) needs
 * these two answers on every run, and the TOML parser, schema and trust logic only when it misses.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { HomePaths } from "../core/paths.ts";

/** The nearest silo.toml at or above `cwd`, or null. */
export function findProjectConfig(cwd: string): string | null {
  let dir = resolve(cwd);
  for (;;) {
    const file = join(dir, "silo.toml");
    if (existsSync(file)) return file;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

const sha256 = (s: string | Uint8Array) => new Bun.CryptoHasher("sha256").update(s).digest("hex");

/** Where the trust record of one silo.toml lives: keyed by its path, holding the hash of the trusted content. */
export function trustRecordPath(home: HomePaths, configFile: string): string {
  return join(home.trust, `${sha256(configFile).slice(0, 32)}.json`);
}
