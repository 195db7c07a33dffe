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
 *
 * Commands: an editor runs the `command` of a completion item (on accept), a code lens or code action (on
 * click), an inlay hint label part, or a client-command request, by id, whatever the id is
 * (`workbench.action.terminal.sendSequence` types into the user's terminal). A server may name only the
 * commands it declared (`executeCommandProvider.commands` in its initialize result, or a dynamic
 * `workspace/executeCommand` registration): the editor's LSP client registers those and sends them back to
 * the server (`workspace/executeCommand`). Ids in the editor's own namespaces are never taken as declared;
 * UI_COMMANDS are the few client-side ids servers use that only show UI. Any other Command is taken away:
 * its holder's `command` key is deleted (completion item, code lens, inlay hint part); a code action or a
 * bare Command in a list is removed; a request or notification made of one is refused or dropped.
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
/** Names an edit may not touch at any depth: a nested repository's `.git` (in addition to the caller's list). */
const ALWAYS_PROTECTED_NAMES = [".git"];
/**
 * Client-side command ids a server may name without declaring them: each only shows the editor's own UI.
 * - `editor.action.triggerSuggest`: opens the completion list (servers attach it to completions that end
 *   in a trigger, e.g. a `.` or an import path);
 * - `editor.action.triggerParameterHints`: opens signature help (attached to function completions);
 * - `editor.action.showReferences`: a peek view of locations (reference code lenses); its string
 *   arguments (the document URI) must be allowed as `open`, and its locations are checked as URIs are.
 */
const UI_COMMANDS: ReadonlySet<string> = new Set(["editor.action.triggerSuggest", "editor.action.triggerParameterHints", "editor.action.showReferences"]);
/** VS Code's own command namespaces (and `setContext`): never a server's, even when it declares them. */
const EDITOR_NAMESPACE = /^_?(workbench|editor|vscode|notebook|terminal|files|debug|extensions?|setContext)(\.|$)/;

/** JSON-RPC RequestFailed (LSP 3.17). */
export const REQUEST_FAILED = -32803;

export interface GuardOptions {
  /** Spellings of the project root on the host (absolute); the first is its real path. */
  roots: string[];
  /** Project-relative paths an edit may not create, change, rename or delete (e.g. `.vscode`, `silo.toml`). */
  protectedPaths?: readonly string[];
  /**
   * Names protected at any depth (`.envrc`, `.vscode`; with a `/`, a name inside a directory of that name:
   * `.vim/coc-settings.json`); `*.code-workspace` files are protected at any depth whatever this says.
   */
  protectedNames?: readonly string[];
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
  /**
   * Take the commands the server declares in its initialize result (`capabilities.executeCommandProvider
   * .commands`): ids in the editor's namespaces are removed from the list (the editor would register them
   * over its own); the others may be named from then on. True when the result was changed.
   */
  declareCommands(initializeResult: unknown): boolean;
}

export function createGuard(opts: GuardOptions): Guard {
  const roots = opts.roots.map(normalizePath);
  const realRoot = roots[0]!;
  const realpath = opts.realpath ?? defaultRealpath;
  let realRootResolved: string | undefined;
  const resolvedRoot = () => (realRootResolved ??= realpath(realRoot) ?? realRoot);
  const protectedRel = [...ALWAYS_PROTECTED, ...(opts.protectedPaths ?? [])].map((p) => normalizePath(`/${p}`).slice(1));
  const protectedNames = [...ALWAYS_PROTECTED_NAMES, ...(opts.protectedNames ?? [])].map((n) => normalizePath(`/${n}`).slice(1).split("/"));
  /** A protected name at any depth: its segments appear in a row in `rel`'s, or a segment is a `*.code-workspace`. */
  const hasProtectedName = (rel: string) => {
    const segs = rel.split("/");
    return segs.some((seg, i) => seg.endsWith(".code-workspace") || protectedNames.some((n) => n.every((s, j) => segs[i + j] === s)));
  };
  /** Command ids the server may name: what it declared, less the editor's namespaces. */
  const declared = new Set<string>();

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
    // A `*.code-workspace` is an editor's workspace file too (app/protect.ts quarantines new ones at the root).
    const isProtected = (r: string) => mode === "edit" && (protectedRel.some((p) => r === p || r.startsWith(`${p}/`)) || hasProtectedName(r));
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

  /** Why the editor may not run this Command (`{title, command, arguments}`); null: it may. */
  function commandIssue(cmd: Record<string, unknown>): string | null {
    const id = cmd.command as string;
    if (declared.has(id)) return null;
    if (!UI_COMMANDS.has(id)) return `the command ${clip(JSON.stringify(id))}, which the server did not declare`;
    const args = Array.isArray(cmd.arguments) ? cmd.arguments : [];
    for (const a of args) if (typeof a === "string" && allows(a, "open")) return `the command ${id} on ${clip(a)}`;
    return null;
  }

  function scan(node: unknown, out: Finding[], at: Finding["at"], edit: boolean, holder?: Record<string, unknown>) {
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        if (item && typeof item === "object") scan(item, out, edit ? at : { container: node, key: i }, edit);
      });
      return;
    }
    const obj = node as Record<string, unknown>;
    // A WorkspaceEdit is one unit: below it, findings point at the element holding the whole edit.
    const inEdit = edit || Object.keys(obj).some((k) => EDIT_KEYS.has(k));
    if (typeof obj.command === "string") {
      const why = commandIssue(obj);
      // Under a completion item, code lens or inlay hint part, only the command goes; a code action (titled) goes whole.
      if (why && holder && !(typeof holder.title === "string" && at?.container[at.key as never] === holder))
        out.push({ why, at: { container: holder, key: "command" }, edit: false });
      else if (why) out.push({ why, at, edit: false });
    }
    for (const key in obj) {
      const value = obj[key];
      if (typeof value === "string") {
        let why: string | null = null;
        if (URI_KEYS.has(key) || LINK_KEYS.has(key)) why = allows(value, inEdit && !LINK_KEYS.has(key) ? "edit" : baseMode);
        else if (GLOB_KEYS.has(key)) why = globIssue(value);
        if (why) out.push({ why, at, edit: inEdit });
      } else if (key === "command" && value && typeof value === "object" && !Array.isArray(value)) {
        scan(value, out, at, inEdit, obj);
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
    if (findings.length === 0) {
      if (isRequest && m.method === "client/registerCapability") declareRegistered(m.params);
      return { kind: "pass", changed: false };
    }
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

  /** Keep the server's ids of a command list, less the editor's namespaces (in place); true when any was removed. */
  function takeCommands(holder: unknown): boolean {
    const h = holder as { commands?: unknown } | null;
    if (!h || typeof h !== "object" || !Array.isArray(h.commands)) return false;
    const kept = h.commands.filter((c): c is string => typeof c === "string" && !EDITOR_NAMESPACE.test(c));
    for (const c of kept) declared.add(c);
    const changed = kept.length !== h.commands.length;
    h.commands = kept;
    return changed;
  }

  function declareCommands(result: unknown): boolean {
    const caps = (result as { capabilities?: { executeCommandProvider?: unknown } } | null)?.capabilities;
    return caps && typeof caps === "object" ? takeCommands(caps.executeCommandProvider) : false;
  }

  /** A `workspace/executeCommand` registration the editor is about to make: its commands go to the server too. */
  function declareRegistered(params: unknown) {
    const regs = (params as { registrations?: unknown } | null)?.registrations;
    if (!Array.isArray(regs)) return;
    for (const r of regs) if (r && typeof r === "object" && r.method === "workspace/executeCommand") takeCommands(r.registerOptions);
  }

  return { check, allows, declareCommands };
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
export function createServerFilter(rewriter: Pick<Rewriter, "rewriteMessage" | "initializeId">, guard: Guard): (body: Uint8Array) => ServerBodyResult {
  // Until the answer to the editor's initialize, every body is parsed: a response with that id sent before
  // the editor's request reached the server may be the one the editor took, and then nothing is declared.
  let initialized = false;
  const earlyIds = new Set<unknown>();
  return (body) => {
    const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (initialized && !MARKERS.some((m) => view.indexOf(m) >= 0)) return body;
    let msg: unknown;
    try {
      msg = JSON.parse(view.toString("utf8"));
    } catch {
      return { dropped: "a body that is not JSON" };
    }
    rewriter.rewriteMessage(msg, "toHost");
    // The answer to the editor's initialize (the first with its id, as the editor takes it) declares the server's commands.
    const m = msg as { id?: unknown; method?: unknown; result?: unknown } | null;
    if (!initialized && m && typeof m === "object" && m.method === undefined) {
      if (m.id !== undefined && m.id === rewriter.initializeId) {
        initialized = true;
        if (!earlyIds.has(m.id)) guard.declareCommands(m.result);
      } else if (earlyIds.add(m.id).size > 1000) initialized = true; // a server that floods answers declares nothing
    }
    const v = guard.check(msg);
    if (v.kind === "refuse") return { dropped: v.why, toServer: encoder.encode(JSON.stringify(v.toServer)) };
    if (v.kind === "drop") return { dropped: v.why, toClient: v.toClient ? encoder.encode(JSON.stringify(v.toClient)) : undefined };
    return encoder.encode(JSON.stringify(msg));
  };
}

/**
 * Substrings of every key the guard reads (`uri"` and `Uri"` end in `ri"`; `"command"`, and `"commands"` of
 * an initialize result or a registration), and JSON's `\u` escape.
 */
const MARKERS = ['ri"', '"target"', '"href"', 'hanges"', 'relatedDocuments"', 'attern"', '"command"', '"commands"', "\\u"].map((m) => Buffer.from(m));
const encoder = new TextEncoder();
