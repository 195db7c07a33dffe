/**
 * A tiny typed-schema checker: enough to name the path of every problem, suggest the closest known key,
 * and say what type was expected. (zod would do, but costs start-up and gives worse "did you mean".)
 */
export type Schema =
  | { kind: "string"; desc?: string; check?: (v: string) => string | null }
  | { kind: "number"; desc?: string; int?: boolean; min?: number }
  | { kind: "boolean"; desc?: string }
  | { kind: "array"; of: Schema; desc?: string }
  | { kind: "object"; fields: Record<string, Schema>; desc?: string }
  | { kind: "record"; of: Schema; desc?: string; keyCheck?: (k: string) => string | null }
  | { kind: "union"; of: Schema[]; desc: string };

export const str = (check?: (v: string) => string | null): Schema => ({ kind: "string", check });
export const num = (o: { int?: boolean; min?: number } = {}): Schema => ({ kind: "number", ...o });
export const bool = (): Schema => ({ kind: "boolean" });
export const arr = (of: Schema): Schema => ({ kind: "array", of });
export const obj = (fields: Record<string, Schema>): Schema => ({ kind: "object", fields });
export const rec = (of: Schema, keyCheck?: (k: string) => string | null): Schema => ({ kind: "record", of, keyCheck });
export const union = (desc: string, ...of: Schema[]): Schema => ({ kind: "union", of, desc });

export interface SchemaIssue {
  /** Dotted path, e.g. `overrides.python.network.proxy.allow[2]`. */
  path: string;
  message: string;
  /** The key as written, for locating it in the file. */
  key?: string;
}

export function describe(s: Schema): string {
  switch (s.kind) {
    case "array":
      return `an array of ${describe(s.of).replace(/^an? /, "")}s`;
    case "object":
    case "record":
      return "a table";
    case "union":
      return s.desc;
    default:
      return `a ${s.kind}`;
  }
}

const typeOf = (v: unknown) =>
  Array.isArray(v) ? "array" : v === null ? "null" : v instanceof Date ? "date" : typeof v === "object" ? "table" : typeof v;

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

export function checkSchema(value: unknown, schema: Schema, path = ""): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const bad = (expected: string) =>
    issues.push({ path, message: `${path || "value"}: expected ${expected}, got ${typeOf(value)} ${preview(value)}` });
  switch (schema.kind) {
    case "string":
      if (typeof value !== "string") bad("a string");
      else if (schema.check) {
        const msg = schema.check(value);
        if (msg) issues.push({ path, message: `${path}: ${msg}` });
      }
      break;
    case "number":
      if (typeof value !== "number" || Number.isNaN(value)) bad(schema.int ? "an integer" : "a number");
      else if (schema.int && !Number.isInteger(value)) bad("an integer");
      else if (schema.min !== undefined && value < schema.min)
        issues.push({ path, message: `${path}: must be at least ${schema.min}, got ${value}` });
      break;
    case "boolean":
      if (typeof value !== "boolean") bad("true or false");
      break;
    case "array":
      if (!Array.isArray(value)) bad(describe(schema));
      else value.forEach((v, i) => issues.push(...checkSchema(v, schema.of, `${path}[${i}]`)));
      break;
    case "object":
      if (typeOf(value) !== "table") bad("a table");
      else
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          const field = schema.fields[k];
          if (!field) {
            const near = closest(k, Object.keys(schema.fields));
            issues.push({
              path: join(path, k),
              key: k,
              message: `unknown key \`${join(path, k)}\`${near ? ` (did you mean \`${join(path, near)}\`?)` : ""}`,
            });
          } else issues.push(...checkSchema(v, field, join(path, k)));
        }
      break;
    case "record":
      if (typeOf(value) !== "table") bad("a table");
      else
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          const msg = schema.keyCheck?.(k);
          if (msg) issues.push({ path: join(path, k), key: k, message: `${join(path, k)}: ${msg}` });
          issues.push(...checkSchema(v, schema.of, join(path, k)));
        }
      break;
    case "union": {
      if (schema.of.some((s) => checkSchema(value, s, path).length === 0)) break;
      // One alternative of the value's own shape (a table, a list): its problems say more than "expected ...".
      const shaped = schema.of.filter((s) => kindOf(s) === typeOf(value));
      if (shaped.length === 1) issues.push(...checkSchema(value, shaped[0]!, path));
      else bad(schema.desc);
      break;
    }
  }
  return issues;
}

const kindOf = (s: Schema) => (s.kind === "object" || s.kind === "record" ? "table" : s.kind);

function preview(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? "" : `(${s.length > 40 ? s.slice(0, 37) + "..." : s})`;
}

/** The known key within edit distance ⌊len/3⌋ (at least 1), a prefix match, or one that differs only by case. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    if (c.toLowerCase() === word.toLowerCase()) return c;
    if (word.length >= 4 && c.toLowerCase().startsWith(word.toLowerCase())) return c;
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
