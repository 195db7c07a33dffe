/**
 * What a language server may tell the editor (THREATS.md: the server is the attacker's). Pure, apart from
 * the realpath lookups it is given.
 *
 * Every message from the server is parsed (after rewrite.ts mapped /workspace back to the host root) and
 * every URI in it is normalised (percent-decoding, `\` as a separator, `.`, `..`, `//`) before it is
 * compared with the project root on segment boundaries. Allowed: `file:` inside the project, and the
 * schemes that name no host file (`http`, `https`, `mailto`, `untitled`). Anything else is *outside*:
 * another host path, a `file://host/` share, an editor `command:` link, a malformed escape, NUL.
 *
 * What happens to a message that names something outside:
 * - a request from the server (`workspace/applyEdit`, `window/showDocument`, `workspace/configuration`,
 *   `client/registerCapability`, ...) is refused whole and never reaches the editor; the server gets the
 *   protocol's failure (`{applied:false}`, `{success:false}`) or a RequestFailed error;
 * - an edit (`changes`, `documentChanges`) is never applied in part: inside a response it removes the
 *   array element that holds the whole edit (one code action), else the response becomes an error;
 *   edits must also stay inside after resolving symlinks, and leave protected paths (`.git`, `silo.toml`,
 *   editor configs) alone: the editor writes as the user, outside the sandbox's read-only binds;
 * - information (a definition, a reference, a related diagnostic location, a document link) outside the
 *   project is removed from its list, so a definition inside the image's stdlib (`/usr/lib/...`) is not
 *   offered as a host path the editor would open; a notification whose subject is outside is dropped.
 * File watcher and document selector globs must be relative (an absolute glob would have the editor watch,
 * and report into the sandbox, host files).
 */
import { URI_KEYS, URI_MAP_KEYS, type Rewriter } from "./rewrite.ts";

/** Extra keys whose string value is opened by editors as a URI: Diagnostic `codeDescription.href`. */
const LINK_KEYS: ReadonlySet<string> = new Set(["href"]);
/** Keys holding a WorkspaceEdit's file changes: what the editor writes to disk. */
const EDIT_KEYS: ReadonlySet<string> = new Set(["changes", "documentChanges"]);
/** Glob strings the editor resolves itself: FileSystemWatcher `globPattern`, DocumentFilter/RelativePattern `pattern`. */
const GLOB_KEYS: ReadonlySet<string> = new Set(["globPattern", "pattern"]);
const SAFE_SCHEMES: ReadonlySet<string> = new Set(["http", "https", "mailto", "untitled"]);
/** Project paths an edit from the server may not touch (in addition to the caller's list). */
const ALWAYS_PROTECTED = [".git"];

/** JSON-RPC RequestFailed (LSP 3.17). */
export const REQUEST_FAILED = -32803;

export interface GuardOptions {
  /** Spellings of the project root on the host (absolute); the first is its real path. */
  roots: string[];
  /** Project-relative paths an edit may not create, change, rename or delete (e.g. `.vscode`, `silo.toml`). */
  protectedPaths?: readonly string[];
  /** realpath(3) of an existing path, null when it does not exist (tests inject a fake). */
  realpath?: (p: string) => string | null;
}

export type Verdict =
  | { kind: "pass"; changed: boolean }
  /** A notification dropped, or a response to the editor replaced (`toClient`). */
  | { kind: "drop"; why: string; toClient?: object }
  /** A request from the server refused: `toServer` answers it. */
  | { kind: "refuse"; why: string; toServer: object };

/** `info`: shown or offered; `open`: the editor opens it on the server's say; `edit`: the editor writes it. */
export type Mode = "info" | "open" | "edit";

interface Finding {
  why: string;
  /** The smallest array element or map entry that holds it (and, for an edit, the whole edit). */
  at: { container: unknown[] | Record<string, unknown>; key: number | string } | null;
  edit: boolean;
}

export interface Guard {
  /** Check (and trim) one parsed server -> editor message, already rewritten to host paths. */
  check(msg: unknown): Verdict;
  /** Why this URI may not go to the editor (null: it may). `open`: the editor acts on it (symlinks resolved); `edit`: it writes it. */
  allows(uri: string, mode?: Mode): string | null;
}

export function createGuard(opts: GuardOptions): Guard {
  const roots = opts.roots.map(normalizePath);
  const realRoot = roots[0]!;
  const realpath = opts.realpath ?? defaultRealpath;
  let realRootResolved: string | undefined;
  const resolvedRoot = () => (realRootResolved ??= realpath(realRoot) ?? realRoot);
  const protectedRel = [...ALWAYS_PROTECTED, ...(opts.protectedPaths ?? [])].map((p) => normalizePath(`/${p}`).slice(1));

  function allows(uri: string, mode: Mode = "info"): string | null {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
    let path: string | null;
    if (scheme === undefined) path = uri.startsWith("/") ? normalizePath(uri) : null; // editors read a bare path as file:
    else if (scheme === "file") path = fileUriPath(uri);
    else return SAFE_SCHEMES.has(scheme) && mode !== "edit" ? null : `the ${scheme}: URI ${clip(uri)}`;
    if (path === null) return `the malformed URI ${clip(uri)}`;
    const root = roots.find((r) => below(path!, r));
    if (root === undefined) return `${clip(path)}, outside the project`;
    if (mode === "info") return null;
    const rel = path.slice(root.length + 1);
    // A `*.code-workspace` at the root is an editor's workspace file too (app/protect.ts quarantines new ones).
    const isProtected = (r: string) =>
      mode === "edit" && (protectedRel.some((p) => r === p || r.startsWith(`${p}/`)) || (!r.includes("/") && r.endsWith(".code-workspace")));
    if (isProtected(rel)) return `${clip(path)}, a protected path`;
    // The editor writes through symlinks the project (that is, the sandbox) planted: resolve what exists.
    const real = realpathOfPrefix(`${realRoot}${rel ? `/${rel}` : ""}`, realpath);
    if (real === null || !below(real, resolvedRoot())) return `${clip(path)}, which leads outside the project (${real ? clip(real) : "?"})`;
    if (isProtected(real.slice(resolvedRoot().length + 1))) return `${clip(path)}, a protected path`;
    return null;
  }

  function globIssue(glob: string): string | null {
    if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(glob)) return allows(glob);
    const g = glob.replaceAll("\\", "/");
    if (g.startsWith("/") || g.startsWith("~") || g.split("/").includes("..") || g.includes("\0")) return `the glob ${clip(glob)}, not relative to the project`;
    return null;
  }

  /** The mode of URIs outside edits in the message being checked: a server request makes the editor act. */
  let baseMode: Mode = "info";

  function scan(node: unknown, out: Finding[], at: Finding["at"], edit: boolean) {
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        if (item && typeof item === "object") scan(item, out, edit ? at : { container: node, key: i }, edit);
      });
      return;
    }
    const obj = node as Record<string, unknown>;
    // A WorkspaceEdit is one unit: below it, findings point at the element holding the whole edit.
    const inEdit = edit || Object.keys(obj).some((k) => EDIT_KEYS.has(k));
    for (const key in obj) {
      const value = obj[key];
      if (typeof value === "string") {
        let why: string | null = null;
        if (URI_KEYS.has(key) || LINK_KEYS.has(key)) why = allows(value, inEdit && !LINK_KEYS.has(key) ? "edit" : baseMode);
        else if (GLOB_KEYS.has(key)) why = globIssue(value);
        if (why) out.push({ why, at, edit: inEdit });
      } else if (value && typeof value === "object") {
        if (URI_MAP_KEYS.has(key) && !Array.isArray(value)) {
          const map = value as Record<string, unknown>;
          const strictMap = inEdit && EDIT_KEYS.has(key);
          for (const k of Object.keys(map)) {
            const why = allows(k, strictMap ? "edit" : baseMode);
            if (why) out.push({ why, at: strictMap ? at : { container: map, key: k }, edit: strictMap });
          }
        }
        scan(value, out, at, inEdit);
      }
    }
  }

  function check(msg: unknown): Verdict {
    // LSP has no batches, and a bare value is no message: neither reaches the editor.
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) return { kind: "drop", why: "a message that is not a JSON-RPC object" };
    const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown };
    const findings: Finding[] = [];
    const isRequest = typeof m.method === "string" && m.id !== undefined && m.id !== null;
    const isNotification = typeof m.method === "string" && !isRequest;
    baseMode = isRequest ? "open" : "info";
    if (m.params && typeof m.params === "object") scan(m.params, findings, null, false);
    if (!isRequest && !isNotification && m.result && typeof m.result === "object") scan(m.result, findings, null, false);
    if (findings.length === 0) return { kind: "pass", changed: false };
    const why = findings[0]!.why;

    if (isRequest) return { kind: "refuse", why: `${m.method} names ${why}`, toServer: refusal(m.method as string, m.id, why) };
    if (findings.some((f) => f.at === null)) {
      if (isNotification) return { kind: "drop", why: `${m.method} names ${why}` };
      return {
        kind: "drop",
        why: `a response names ${why}`,
        toClient: { jsonrpc: "2.0", id: m.id, error: { code: REQUEST_FAILED, message: `silo: the language server's answer named ${why}; refused` } },
      };
    }
    removeAll(findings.map((f) => f.at!));
    return { kind: "pass", changed: true };
  }

  return { check, allows };
}

/** The answer a refused server request gets: its protocol's failure result where it has one, else an error. */
function refusal(method: string, id: unknown, why: string): object {
  const reason = `silo: refused: it names ${why}`;
  if (method === "workspace/applyEdit") return { jsonrpc: "2.0", id, result: { applied: false, failureReason: reason } };
  if (method === "window/showDocument") return { jsonrpc: "2.0", id, result: { success: false } };
  return { jsonrpc: "2.0", id, error: { code: REQUEST_FAILED, message: reason } };
}

/** Remove array elements (highest index first, so the others keep theirs) and map entries. */
function removeAll(places: NonNullable<Finding["at"]>[]) {
  const byArray = new Map<unknown[], Set<number>>();
  for (const p of places) {
    if (Array.isArray(p.container)) {
      const s = byArray.get(p.container) ?? new Set<number>();
      s.add(p.key as number);
      byArray.set(p.container, s);
    } else delete (p.container as Record<string, unknown>)[p.key as string];
  }
  for (const [arr, idx] of byArray) for (const i of [...idx].sort((a, b) => b - a)) arr.splice(i, 1);
}

/**
 * The normalised absolute path of a `file:` URI, or null when it names none (another host's share, a
 * malformed escape, NUL). Query and fragment are not part of the path.
 */
export function fileUriPath(uri: string): string | null {
  const m = /^file:(?:\/\/([^/?#]*))?([^?#]*)/i.exec(uri);
  if (!m) return null;
  const authority = (m[1] ?? "").toLowerCase();
  if (authority !== "" && authority !== "localhost") return null;
  let path: string;
  try {
    path = decodeURIComponent(m[2]!);
  } catch {
    return null;
  }
  if (!path.startsWith("/") || path.includes("\0")) return null;
  return normalizePath(path);
}

/** `.`, `..` and empty segments resolved, `\` read as a separator (as an editor on Windows would). */
export function normalizePath(p: string): string {
  const out: string[] = [];
  for (const seg of p.replaceAll("\\", "/").split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

const below = (p: string, root: string) => p === root || root === "/" || p.startsWith(`${root}/`);

/** realpath of the longest existing prefix of `p`, with the rest appended (a file an edit creates). */
function realpathOfPrefix(p: string, realpath: (p: string) => string | null): string | null {
  const segs = p.split("/").filter(Boolean);
  for (let n = segs.length; n >= 0; n--) {
    const real = realpath(`/${segs.slice(0, n).join("/")}`);
    if (real !== null) return normalizePath([real, ...segs.slice(n)].join("/"));
  }
  return null;
}

function defaultRealpath(p: string): string | null {
  try {
    return (require("node:fs") as typeof import("node:fs")).realpathSync(p);
  } catch {
    return null;
  }
}

const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s);

/** What the proxy does with one server -> editor body: forward these bytes, or drop it (and maybe answer). */
export type ServerBodyResult = Uint8Array | { dropped: string; toServer?: Uint8Array; toClient?: Uint8Array };

/**
 * The server -> editor transform: rewrite /workspace to the host root, then guard. A body that may name a
 * URI (any key the guard reads, or a `\u` escape that could spell one) is parsed, checked and sent on
 * re-encoded, so the editor parses exactly what was checked (no duplicate keys, no parser differences);
 * others are forwarded as they are.
 */
export function createServerFilter(rewriter: Pick<Rewriter, "rewriteMessage">, guard: Guard): (body: Uint8Array) => ServerBodyResult {
  return (body) => {
    const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (!MARKERS.some((m) => view.indexOf(m) >= 0)) return body;
    let msg: unknown;
    try {
      msg = JSON.parse(view.toString("utf8"));
    } catch {
      return { dropped: "a body that is not JSON" };
    }
    rewriter.rewriteMessage(msg, "toHost");
    const v = guard.check(msg);
    if (v.kind === "refuse") return { dropped: v.why, toServer: encoder.encode(JSON.stringify(v.toServer)) };
    if (v.kind === "drop") return { dropped: v.why, toClient: v.toClient ? encoder.encode(JSON.stringify(v.toClient)) : undefined };
    return encoder.encode(JSON.stringify(msg));
  };
}

/** Substrings of every key the guard reads (`uri"` and `Uri"` end in `ri"`), and JSON's `\u` escape. */
const MARKERS = ['ri"', '"target"', '"href"', 'hanges"', 'relatedDocuments"', 'attern"', "\\u"].map((m) => Buffer.from(m));
const encoder = new TextEncoder();
