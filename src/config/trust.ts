import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../core/fs.ts";
import type { HomePaths } from "../core/paths.ts";
import { readTrustedHash, sha256, trustRecordPath } from "./locate.ts";
import { WIDENING_KEYS, type SiloConfig } from "./schema.ts";

export { trustRecordPath };

export type TrustState = "trusted" | "untrusted" | "changed";

/**
 * `trusted` only when the content whose sha256 is `hash` was trusted; `changed` when an older content was.
 * Callers hash the very bytes they parse (locate.ts readProjectConfig): one read, never a second look.
 */
export function trustStateOf(home: HomePaths, configFile: string, hash: string): TrustState {
  const trusted = readTrustedHash(home, configFile);
  return trusted === null ? "untrusted" : trusted === hash ? "trusted" : "changed";
}

/** The trust state of the file as it is on disk now (tests, and callers that only report it). */
export function trustState(home: HomePaths, configFile: string): TrustState {
  return trustStateOf(home, configFile, sha256(readFileSync(configFile)));
}

/** Remember `hash` (of bytes the caller read and showed or wrote) as the trusted content of `configFile`. */
export function trust(home: HomePaths, configFile: string, hash = sha256(readFileSync(configFile))): string {
  writeFileAtomic(trustRecordPath(home, configFile), JSON.stringify({ path: configFile, hash, at: new Date().toISOString() }));
  return hash;
}

export function untrust(home: HomePaths, configFile: string): boolean {
  const rec = trustRecordPath(home, configFile);
  const had = existsSync(rec);
  rmSync(rec, { force: true });
  return had;
}

/**
 * Remove every widening setting from an untrusted project config. Returns the paths it removed, as
 * written in the file, so one warning can name them. Narrowing settings (deny, exclude, env) stay.
 */
export function stripWidening(config: SiloConfig): { config: SiloConfig; ignored: string[] } {
  const copy = structuredClone(config) as Record<string, unknown>;
  const ignored: string[] = [];
  for (const pattern of WIDENING_KEYS) removePath(copy, pattern.split("."), "", ignored);
  return { config: copy as SiloConfig, ignored };
}

function removePath(node: Record<string, unknown>, parts: string[], prefix: string, out: string[]) {
  const [head, ...rest] = parts;
  if (head === undefined || node === null || typeof node !== "object") return;
  const keys = head === "*" ? Object.keys(node) : [head];
  for (const k of keys) {
    if (!(k in node)) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    if (rest.length === 0) {
      const v = node[k];
      // An empty list or `false` widens nothing; only report what would have taken effect.
      if (!(v === false || (Array.isArray(v) && v.length === 0))) out.push(path);
      delete node[k];
    } else removePath(node[k] as Record<string, unknown>, rest, path, out);
  }
}
