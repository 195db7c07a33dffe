/**
 * Minimal JSON-with-comments editing, for `silo ide`: VS Code's and Zed's settings.json allow `//` and
 * `/* *\/` comments and trailing commas, and a user's file must survive a merge with its comments and
 * formatting. `setJsoncValue` replaces or inserts one member by key path and leaves every other byte as it
 * was (comments inside the replaced value itself are the only loss). Pure.
 */

export class JsoncError extends Error {
  override name = "JsoncError";
}

interface Member {
  key: string;
  keyStart: number;
  value: Node;
}
type Node =
  | { kind: "object"; start: number; end: number; members: Member[] }
  | { kind: "other"; start: number; end: number };

/** Parse JSON with comments and trailing commas into a plain value. */
export function parseJsonc(text: string): unknown {
  if (text.trim() === "") return undefined;
  new Parser(text).parseDocument(); // for an error with a line number
  return JSON.parse(stripJsonc(text));
}

/**
 * Set `path` (keys of nested objects) to `value` in a JSONC document. Missing objects on the way are
 * created; a member that exists is replaced in place. `comment` is written above a member this call
 * inserts (never on replace, so repeated runs don't stack comments).
 */
export function setJsoncValue(text: string, path: string[], value: unknown, comment?: string): string {
  if (path.length === 0) throw new JsoncError("empty key path");
  if (text.trim() === "") return `{\n${serialize(nest(path.slice(1), value), "  ", "  ", path[0]!, comment)}\n}\n`;
  const unit = detectIndent(text);
  const root = new Parser(text).parseDocument();
  if (root.kind !== "object") throw new JsoncError("the settings file is not a JSON object");
  let node = root;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    const member = node.members.find((m) => m.key === key);
    const last = i === path.length - 1;
    if (member && !last && member.value.kind === "object") {
      node = member.value;
      continue;
    }
    const v = last ? value : nest(path.slice(i + 1), value);
    if (member) {
      const indent = lineIndent(text, member.value.start);
      return text.slice(0, member.value.start) + stringify(v, unit, indent) + text.slice(member.value.end);
    }
    return insertMember(text, node, key, v, unit, comment);
  }
  return text; // unreachable: the loop returns
}

function nest(path: string[], value: unknown): unknown {
  return path.reduceRight((v, k) => ({ [k]: v }), value);
}

function insertMember(text: string, obj: Extract<Node, { kind: "object" }>, key: string, value: unknown, unit: string, comment?: string) {
  const closeIndent = lineIndent(text, obj.end - 1);
  const span = text.slice(obj.start, obj.end);
  if (obj.members.length > 0 && !span.includes("\n")) {
    // A one-line object (`{ "a": 1 }`): re-serialize it whole rather than grow a ragged line.
    const merged = { ...(parseJsonc(span) as Record<string, unknown>), [key]: value };
    return text.slice(0, obj.start) + stringify(merged, unit, closeIndent) + text.slice(obj.end);
  }
  const last = obj.members.at(-1);
  if (!last) {
    const indent = closeIndent + unit;
    // After `{`; whatever the object held (comments only) stays below the new member.
    const at = obj.start + 1;
    const rest = text.slice(at, obj.end - 1);
    const tail = rest.trim() === "" ? `\n${closeIndent}` : rest.replace(/^[ \t]*\n?/, "\n");
    return text.slice(0, at) + "\n" + serialize(value, unit, indent, key, comment) + tail + text.slice(obj.end - 1);
  }
  const indent = lineIndent(text, last.keyStart);
  let at = last.value.end;
  let comma = ",";
  const after = skipSpaces(text, at);
  if (text[after] === ",") {
    at = after + 1;
    comma = "";
  }
  // Keep a comment that ends the last member's line on that line.
  const lineEnd = text.indexOf("\n", at);
  const restOfLine = text.slice(at, lineEnd < 0 ? text.length : lineEnd);
  if (/^\s*\/\/.*$/.test(restOfLine) || /^\s*\/\*.*\*\/\s*$/.test(restOfLine)) {
    return text.slice(0, last.value.end) + comma + text.slice(last.value.end, at + restOfLine.length) + "\n" + serialize(value, unit, indent, key, comment) + text.slice(at + restOfLine.length);
  }
  return text.slice(0, at) + comma + "\n" + serialize(value, unit, indent, key, comment) + text.slice(at);
}

/** `// comment\n<indent>"key": value` (no trailing newline). */
function serialize(value: unknown, unit: string, indent: string, key: string, comment?: string): string {
  const lines = comment ? comment.split("\n").map((l) => `${indent}// ${l}\n`).join("") : "";
  return `${lines}${indent}${JSON.stringify(key)}: ${stringify(value, unit, indent)}`;
}

/** JSON at `indent`, one level per `unit`; a small array or object stays on one line, as people write them. */
function stringify(value: unknown, unit: string, indent: string): string {
  const inline = stringifyInline(value);
  if (value === null || typeof value !== "object" || inline.length + indent.length <= 100) return inline;
  const inner = indent + unit;
  const items = Array.isArray(value)
    ? value.map((v) => inner + stringify(v, unit, inner))
    : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${stringify(v, unit, inner)}`);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  return items.length ? `${open}\n${items.join(",\n")}\n${indent}${close}` : `${open}${close}`;
}

/** `{ "a": [1, 2] }`: one line, with the spacing people type. */
function stringifyInline(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(stringifyInline).join(", ")}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length ? `{ ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${stringifyInline(v)}`).join(", ")} }` : "{}";
}

function lineIndent(text: string, pos: number): string {
  const lineStart = text.lastIndexOf("\n", pos - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

function detectIndent(text: string): string {
  const m = /\n([ \t]+)["}\]]/.exec(text);
  return m ? m[1]! : "  ";
}

function skipSpaces(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return i;
}

/** Remove comments and trailing commas (outside strings), for JSON.parse. */
export function stripJsonc(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const end = stringEnd(text, i);
      out += text.slice(i, end);
      i = end - 1;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) throw new JsoncError("unterminated /* comment");
      i = end + 1;
      out += " ";
    } else if (c === "," && "}]".includes(text[nextSignificant(text, i + 1)] ?? "")) {
      // a trailing comma: drop it
    } else out += c;
  }
  return out;
}

/** Index of the first character at or after `i` that is neither whitespace nor inside a comment. */
function nextSignificant(text: string, i: number): number {
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text[i] === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (text[i] === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
    } else return i;
  }
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i + 1;
  }
  throw new JsoncError("unterminated string");
}

/** Recursive descent over JSONC, recording the spans of object members; arrays and scalars are skipped. */
class Parser {
  private i = 0;
  constructor(private readonly text: string) {}

  parseDocument(): Node {
    const node = this.value();
    this.trivia();
    if (this.i < this.text.length) this.fail("unexpected text after the end");
    return node;
  }

  private value(): Node {
    this.trivia();
    const start = this.i;
    const c = this.text[this.i];
    if (c === "{") return this.object();
    if (c === "[") {
      this.i++;
      for (;;) {
        this.trivia();
        if (this.text[this.i] === "]") break;
        this.value();
        this.trivia();
        if (this.text[this.i] === ",") this.i++;
        else if (this.text[this.i] !== "]") this.fail("expected , or ]");
      }
      this.i++;
    } else if (c === '"') this.i = stringEnd(this.text, this.i);
    else {
      const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(this.text.slice(this.i, this.i + 64));
      if (!m) this.fail("expected a value");
      this.i += m![0].length;
    }
    return { kind: "other", start, end: this.i };
  }

  private object(): Node {
    const start = this.i++;
    const members: Member[] = [];
    for (;;) {
      this.trivia();
      if (this.text[this.i] === "}") break;
      if (this.text[this.i] !== '"') this.fail("expected a key");
      const keyStart = this.i;
      const keyEnd = stringEnd(this.text, this.i);
      const key = JSON.parse(this.text.slice(this.i, keyEnd)) as string;
      this.i = keyEnd;
      this.trivia();
      if (this.text[this.i] !== ":") this.fail("expected :");
      this.i++;
      members.push({ key, keyStart, value: this.value() });
      this.trivia();
      if (this.text[this.i] === ",") this.i++;
      else if (this.text[this.i] !== "}") this.fail("expected , or }");
    }
    this.i++;
    return { kind: "object", start, end: this.i, members };
  }

  private trivia() {
    const t = this.text;
    for (;;) {
      while (this.i < t.length && /\s/.test(t[this.i]!)) this.i++;
      if (t[this.i] === "/" && t[this.i + 1] === "/") {
        while (this.i < t.length && t[this.i] !== "\n") this.i++;
      } else if (t[this.i] === "/" && t[this.i + 1] === "*") {
        const end = t.indexOf("*/", this.i + 2);
        if (end < 0) this.fail("unterminated /* comment");
        this.i = end + 2;
      } else return;
    }
  }

  private fail(what: string): never {
    const line = this.text.slice(0, this.i).split("\n").length;
    throw new JsoncError(`${what} at line ${line}`);
  }
}
