// `[mount] exclude` patterns, gitignore-style, compiled once and matched against project-relative paths
// ("a/b/c", no leading slash).
//
// - A pattern without glob characters (`*`, `?`, `[`) is a path from the project root: `.env`,
//   `config/prod.json`, `/secrets`. It needs no walk of the tree, so ordinary configs cost nothing.
// - A glob follows .gitignore: without a slash it matches a name at any depth (`*.pem`); a leading or
//   inner slash anchors it at the project root (`/build/*.key`, `certs/*.pem`); `**` spans directories
//   (`**/.env`, `logs/**`, `a/**/b`); `*` and `?` never match `/`; `[a-z]`, `[!0-9]` are classes.
// - A trailing slash matches directories only (`secrets/`); `\` escapes the next character.
//
// Refused with a config error (never ignored): `!` negation (a project's file could un-hide what the
// global one hides, and hiding is all an exclude may do), `#` comments, `.`/`..` components, empty
// patterns, an unclosed `[`, a trailing `\`.

export interface ExcludePattern {
  /** As written in the config. */
  source: string;
  /** Directories only (a trailing slash). */
  dirOnly: boolean;
  /** Literal: the cleaned project-relative path; a glob: undefined. */
  path?: string;
  /** Glob: matches a whole project-relative path. */
  regex?: RegExp;
  /**
   * Glob: the literal directories before its first glob component (`certs` for `certs/*.pem`), where the
   * walk may start; "" when it may match anywhere.
   */
  base: string;
}

const GLOB = /[*?[]/;

/** null when `p` is a pattern silo supports, else why not (for the schema check's message). */
export function checkExcludePattern(p: string): string | null {
  try {
    parseExcludePattern(p);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Compile one pattern; throws an Error whose message names the pattern and the problem. */
export function parseExcludePattern(source: string): ExcludePattern {
  const bad = (why: string) => new Error(`\`${source}\` is not a supported exclude pattern: ${why}`);
  if (source.trim() === "") throw bad("it is empty");
  if (source.startsWith("!")) throw bad("`!` (negation) is not supported: list only what to hide");
  if (source.startsWith("#")) throw bad("`#` starts a comment in .gitignore; write `\\#` for a name that starts with #");
  if (/(^|[^\\])(\\\\)*\\$/.test(source)) throw bad("it ends with a lone `\\`");
  let body = source;
  const dirOnly = /\/$/.test(body);
  body = body.replace(/\/+$/, "");
  let anchored = false;
  if (body.startsWith("/") || body.startsWith("./")) {
    anchored = true;
    body = body.replace(/^(\.?\/)+/, "");
  }
  const comps = body.split("/").filter((c) => c !== "");
  if (comps.length === 0) throw bad("it names the project root itself");
  if (comps.some((c) => c === "." || c === "..")) throw bad("`.` and `..` are not allowed: patterns name paths inside the project");
  if (comps.length > 1) anchored = true;
  const isGlob = comps.some((c) => GLOB.test(c.replace(/\\./g, "")));
  if (!isGlob) return { source, dirOnly, path: comps.map(unescape).join("/"), base: "" };

  let re = anchored ? "^" : "^(?:[^/]*/)*";
  const base: string[] = [];
  let literalSoFar = anchored;
  comps.forEach((c, i) => {
    const last = i === comps.length - 1;
    if (literalSoFar && !last && !GLOB.test(c.replace(/\\./g, ""))) base.push(unescape(c));
    else literalSoFar = false;
    if (c === "**") re += last ? ".*" : "(?:[^/]*/)*";
    else re += segment(c, bad) + (last ? "" : "/");
  });
  return { source, dirOnly, regex: new RegExp(`${re}$`), base: base.join("/") };
}

/** Compile every pattern (the config check has already refused bad ones). */
export function parseExcludes(patterns: readonly string[]): ExcludePattern[] {
  return patterns.map(parseExcludePattern);
}

/** Does a glob pattern hide this project-relative path? */
export function matchesExclude(p: ExcludePattern, rel: string, isDir: boolean): boolean {
  if (p.dirOnly && !isDir) return false;
  return p.regex ? p.regex.test(rel) : p.path === rel;
}

const unescape = (s: string) => s.replace(/\\(.)/g, "$1");
const escapeRe = (ch: string) => ch.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** One path component (no slash) as a regex: `*`, `?`, `[...]`, `\x`. */
function segment(c: string, bad: (why: string) => Error): string {
  let out = "";
  for (let i = 0; i < c.length; i++) {
    const ch = c[i]!;
    if (ch === "\\") out += escapeRe(c[++i]!);
    else if (ch === "*") out += "[^/]*";
    else if (ch === "?") out += "[^/]";
    else if (ch === "[") {
      let j = i + 1;
      let cls = "";
      if (c[j] === "!" || c[j] === "^") {
        cls = "^/";
        j++;
      }
      // A `]` right after the opening (or its negation) is a member, as in fnmatch.
      if (c[j] === "]") {
        cls += "\\]";
        j++;
      }
      for (; j < c.length && c[j] !== "]"; j++) {
        if (c[j] === "\\" && j + 1 < c.length) cls += escapeRe(c[++j]!);
        else if (c[j] === "-") cls += "-";
        else cls += escapeRe(c[j]!);
      }
      if (j >= c.length) throw bad("a `[` is not closed");
      out += `[${cls}]`;
      i = j;
    } else out += escapeRe(ch);
  }
  return out;
}
