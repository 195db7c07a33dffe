import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../core/fs.ts";

/**
 * Minimal, comment-preserving edits of a TOML file: set `key = value` in `[table]`, adding the table at the
 * end when missing. The result is re-parsed and checked; if the text edit did not land (the file spells the
 * table in another form), the document is rewritten whole (comments lost, said in the returned note).
 */
export async function setTomlValue(
  file: string,
  table: string[],
  key: string,
  update: (old: unknown) => unknown,
  /** The file's text as the caller already read it (one read: its trust was judged on these bytes). */
  text = existsSync(file) ? readFileSync(file, "utf8") : "",
): Promise<{ note?: string; written: string }> {
  const { parse, stringify } = await import("smol-toml");
  const doc = parse(text) as Record<string, unknown>;
  let node: Record<string, unknown> = doc;
  for (const t of table) node = (node[t] ??= {}) as Record<string, unknown>;
  const value = update(node[key]);
  if (value === undefined) delete node[key];
  else node[key] = value;

  const header = `[${table.map(tomlKey).join(".")}]`;
  const line = value === undefined ? "" : `${tomlKey(key)} = ${inline(stringify({ v: value }))}`;
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.trim() === header);
  let edited: string;
  if (start < 0) edited = value === undefined ? text : `${text.replace(/\n*$/, "")}${text.trim() ? "\n\n" : ""}${header}\n${line}\n`;
  else {
    let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
    if (end < 0) end = lines.length;
    const keyRe = new RegExp(`^\\s*["']?${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']?\\s*=`);
    const at = lines.findIndex((l, i) => i > start && i < end && keyRe.test(l));
    if (at >= 0) lines.splice(at, 1, ...(line ? [line] : []));
    else if (line) lines.splice(start + 1, 0, line);
    edited = lines.join("\n");
  }
  try {
    if (JSON.stringify(parse(edited)) === JSON.stringify(doc)) {
      writeFileAtomic(file, edited);
      return { written: edited };
    }
  } catch {
    /* fall through to a whole rewrite */
  }
  const whole = stringify(doc) + "\n";
  writeFileAtomic(file, whole);
  return { written: whole, note: `rewrote ${file} whole (its layout did not allow an in-place edit; comments were not kept)` };
}

const tomlKey = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k));
const inline = (s: string) => s.trim().replace(/^v = /, "");
