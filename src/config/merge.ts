import { createDefu } from "defu";

/** Lists that name one thing (a command line, a shim set) replace rather than append when merged. */
const REPLACE = new Set(["command", "install", "postInstall", "shims", "available", "cache"]);

/**
 * defu with silo's list rules: first argument wins, tables merge deeply, most lists union (a project
 * adds allowed hosts to the registry's), and the REPLACE lists are taken whole from the winning layer.
 */
export const mergeConfig = createDefu((obj, key, value) => {
  if (!Array.isArray(value)) return false;
  const cur = (obj as Record<string, unknown>)[key as string];
  // defu calls us with obj holding the lower-priority layer and value from the higher one.
  if (REPLACE.has(key as string)) {
    (obj as Record<string, unknown>)[key as string] = value;
    return true;
  }
  if (Array.isArray(cur)) {
    const seen = new Set(value.map((v: unknown) => JSON.stringify(v)));
    (obj as Record<string, unknown>)[key as string] = [...value, ...cur.filter((v) => !seen.has(JSON.stringify(v)))];
    return true;
  }
  return false;
});

/** Flatten to `a.b.c` → leaf value (arrays are leaves), for provenance and `config show`. */
export function flatten(o: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (o && typeof o === "object" && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = o;
  return out;
}
