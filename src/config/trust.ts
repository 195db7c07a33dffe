import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../core/fs.ts";
import type { HomePaths } from "../core/paths.ts";
import { trustRecordPath } from "./locate.ts";
import { WIDENING_KEYS, type SiloConfig } from "./schema.ts";

const sha256 = (s: string | Uint8Array) => new Bun.CryptoHasher("sha256").update(s).digest("hex");

export { trustRecordPath };

export type TrustState = "trusted" | "untrusted" | "changed";

/** `trusted` only when this exact content was trusted; `changed` when an older content was. */
export function trustState(home: HomePaths, configFile: string): TrustState {
  const rec = trustRecordPath(home, configFile);
  if (!existsSync(rec)) return "untrusted";
  try {
    const { hash } = JSON.parse(readFileSync(rec, "utf8")) as { hash: string };
    return hash === sha256(readFileSync(configFile)) ? "trusted" : "changed";
  } catch {
    return "untrusted";
  }
}

export function trust(home: HomePaths, configFile: string): string {
  const hash = sha256(readFileSync(configFile));
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
