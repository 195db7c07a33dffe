/**
 * Host path <-> guest path rewriting for LSP messages. Pure (the only state is what the rewriter learns
 * about the editor: its URI spelling of the project root and its PID).
 *
 * The message is parsed and walked; only string values under the keys below are rewritten, and only
 * when they lie inside the mapped root on a path-segment boundary (`/home/u/proj` maps, `/home/u/project2`
 * does not). Document text (`didOpen.text`, `didChange.contentChanges[].text`, hover markdown, diagnostic
 * messages) is never touched, unlike a raw string replace.
 *
 * Also the first argument of `editor.action.showReferences` (a reference code lens: the editor opens it).
 * Not rewritten, on purpose: `workspace/executeCommand` `arguments` and `initializationOptions`/settings
 * (server-specific shapes; a path there stays a host path), and paths outside the project (a definition in
 * the image's `/usr/lib/node_modules/...` comes back as a guest URI the editor cannot open).
 */

/** Keys whose string value is a URI: LSP `uri` everywhere (TextDocumentIdentifier, Location, PublishDiagnostics,
 * CreateFile/DeleteFile, FileEvent, files[] of file-operation params, WorkspaceFolder, CallHierarchyItem...),
 * LocationLink `targetUri`, RenameFile `oldUri`/`newUri`, InitializeParams `rootUri`, ConfigurationItem `scopeUri`,
 * RelativePattern `baseUri`, DocumentLink `target`. */
export const URI_KEYS: ReadonlySet<string> = new Set(["uri", "targetUri", "oldUri", "newUri", "rootUri", "scopeUri", "baseUri", "target"]);
/** Keys whose string value is a file-system path: InitializeParams `rootPath` (deprecated, still sent). */
export const PATH_KEYS: ReadonlySet<string> = new Set(["rootPath"]);
/** Keys whose value is an object keyed BY URI: WorkspaceEdit `changes`, DocumentDiagnosticReport `relatedDocuments`. */
export const URI_MAP_KEYS: ReadonlySet<string> = new Set(["changes", "relatedDocuments"]);

export const GUEST_ROOT = "/workspace";

export interface RewriterOptions {
  /** Project root on the host (absolute, no trailing slash needed). */
  hostRoot: string;
  /** Other spellings of the same directory the editor may use (e.g. the path before realpath). */
  hostAliases?: string[];
  /** Where the project is mounted in the sandbox (default `/workspace`). */
  guestRoot?: string;
}

export interface Rewriter {
  /** Editor -> server: one message body in, the body to forward out (the same bytes when nothing changed). */
  toGuest(body: Uint8Array): Uint8Array;
  /** Server -> editor. */
  toHost(body: Uint8Array): Uint8Array;
  /** Rewrite a parsed message in place; true when anything changed. */
  rewriteMessage(msg: unknown, direction: "toGuest" | "toHost"): boolean;
  /** The editor's PID from `initialize`, before it was replaced by null (the sandbox cannot see host PIDs). */
  readonly clientProcessId: number | null;
  /** The id of the editor's first `initialize` request (undefined until seen): its answer declares the server's commands. */
  readonly initializeId: unknown;
}

const encoder = new TextEncoder();

export function createRewriter(opts: RewriterOptions): Rewriter {
  const host = normalizeRoot(opts.hostRoot);
  const hostRoots = [host, ...(opts.hostAliases ?? []).map(normalizeRoot).filter((a) => a !== host)];
  const guest = normalizeRoot(opts.guestRoot ?? GUEST_ROOT);
  const hostSegs = hostRoots.map(segmentsOf);
  const guestSegs = segmentsOf(guest);
  const guestUri = `file://${encodePath(guest)}`;
  /** The editor's own spelling of the root URI (e.g. `file:///home/u/my%20proj`), learned from what it sends. */
  let hostUri: string | null = null;
  let clientProcessId: number | null = null;
  let initializeId: unknown;

  const uriToGuest = (uri: string): string | undefined => {
    for (const segs of hostSegs) {
      const at = matchUriRoot(uri, segs);
      if (at < 0) continue;
      hostUri ??= uri.slice(0, at);
      return guestUri + uri.slice(at);
    }
    return undefined;
  };
  const uriToHost = (uri: string): string | undefined => {
    const at = matchUriRoot(uri, guestSegs);
    return at < 0 ? undefined : (hostUri ?? `file://${encodePath(host)}`) + uri.slice(at);
  };
  const pathToGuest = (p: string): string | undefined => {
    for (const root of hostRoots) {
      const r = mapPath(p, root, guest);
      if (r !== undefined) return r;
    }
    return undefined;
  };
  const pathToHost = (p: string) => mapPath(p, guest, host);

  function rewriteMessage(msg: unknown, direction: "toGuest" | "toHost"): boolean {
    if (!msg || typeof msg !== "object") return false;
    let changed = false;
    if (direction === "toGuest") {
      const m = msg as { id?: unknown; method?: unknown; params?: { processId?: unknown } };
      if (m.method === "initialize" && initializeId === undefined && (typeof m.id === "number" || typeof m.id === "string")) initializeId = m.id;
      // A host PID makes servers watch (and exit on) a process they cannot see from the sandbox's pid namespace.
      if (m.method === "initialize" && m.params && typeof m.params === "object" && "processId" in m.params) {
        if (typeof m.params.processId === "number") clientProcessId = m.params.processId;
        if (m.params.processId !== null) changed = true;
        m.params.processId = null;
      }
      return walk(msg, uriToGuest, pathToGuest) || changed;
    }
    return walk(msg, uriToHost, pathToHost);
  }

  const rewriteBody = (body: Uint8Array, direction: "toGuest" | "toHost"): Uint8Array => {
    // Fast path: every rewritable value is a file: URI, except rootPath and processId, which only occur in
    // initialize (whose params always carry the processId key). Most traffic (didChange, completion) skips the parse.
    const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (view.indexOf("file:") < 0 && (direction === "toHost" || view.indexOf("processId") < 0)) return body;
    let msg: unknown;
    try {
      msg = JSON.parse(view.toString("utf8"));
    } catch {
      return body; // not JSON: forward as is and let the other side complain
    }
    return rewriteMessage(msg, direction) ? encoder.encode(JSON.stringify(msg)) : body;
  };

  return {
    toGuest: (body) => rewriteBody(body, "toGuest"),
    toHost: (body) => rewriteBody(body, "toHost"),
    rewriteMessage,
    get clientProcessId() {
      return clientProcessId;
    },
    get initializeId() {
      return initializeId;
    },
  };
}

/** Walk a parsed message; rewrite the values of URI_KEYS/PATH_KEYS and the keys of URI_MAP_KEYS objects. */
function walk(node: unknown, mapUri: (s: string) => string | undefined, mapPathFn: (s: string) => string | undefined): boolean {
  let changed = false;
  if (Array.isArray(node)) {
    for (const item of node) if (item && typeof item === "object" && walk(item, mapUri, mapPathFn)) changed = true;
    return changed;
  }
  const obj = node as Record<string, unknown>;
  // A reference code lens's `editor.action.showReferences` opens its first argument, a URI under no key.
  if (obj.command === "editor.action.showReferences" && Array.isArray(obj.arguments) && typeof obj.arguments[0] === "string") {
    const r = mapUri(obj.arguments[0]);
    if (r !== undefined) {
      obj.arguments[0] = r;
      changed = true;
    }
  }
  for (const key in obj) {
    const value = obj[key];
    if (typeof value === "string") {
      const r = URI_KEYS.has(key) ? mapUri(value) : PATH_KEYS.has(key) ? mapPathFn(value) : undefined;
      if (r !== undefined) {
        obj[key] = r;
        changed = true;
      }
    } else if (value && typeof value === "object") {
      if (URI_MAP_KEYS.has(key) && !Array.isArray(value)) {
        const remapped = remapKeys(value as Record<string, unknown>, mapUri);
        if (remapped) {
          obj[key] = remapped;
          changed = true;
        }
      }
      if (walk(obj[key], mapUri, mapPathFn)) changed = true;
    }
  }
  return changed;
}

/** A copy of `obj` with its URI keys mapped (order kept), or null when no key changed. */
function remapKeys(obj: Record<string, unknown>, mapUri: (s: string) => string | undefined) {
  let changed = false;
  // No prototype: a `__proto__` key (a file named so) stays an entry instead of becoming the prototype.
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) {
    const r = mapUri(k);
    if (r !== undefined) changed = true;
    out[r ?? k] = v;
  }
  return changed ? out : null;
}

/**
 * If `uri` is a `file:` URI at or below the root whose decoded path segments are `segs`, the index in
 * `uri` where the part below the root starts (`/...`, `?...`, `#...` or the end); else -1.
 * Segments are compared after percent-decoding, so `my%20proj` matches `my proj`; the caller keeps
 * the remainder exactly as the sender spelled it.
 */
export function matchUriRoot(uri: string, segs: readonly string[]): number {
  if (!uri.startsWith("file://")) return -1;
  let i = 7;
  if (uri.startsWith("localhost/", i)) i += 9; // file://localhost/path is the same file
  if (uri[i] !== "/") return -1;
  for (const seg of segs) {
    if (uri[i] !== "/") return -1;
    let j = i + 1;
    while (j < uri.length && uri[j] !== "/" && uri[j] !== "?" && uri[j] !== "#") j++;
    const raw = uri.slice(i + 1, j);
    let decoded: string;
    try {
      decoded = raw.includes("%") ? decodeURIComponent(raw) : raw;
    } catch {
      return -1; // malformed escape: not ours to touch
    }
    if (decoded !== seg) return -1;
    i = j;
  }
  return i;
}

/** Map a path at or below `from` to the same place below `to`, on a segment boundary; else undefined. */
export function mapPath(p: string, from: string, to: string): string | undefined {
  if (p === from) return to;
  if (from === "/") return p.startsWith("/") ? (to === "/" ? p : to + p) : undefined;
  if (p.startsWith(from) && p[from.length] === "/") return to + p.slice(from.length);
  return undefined;
}

/** Percent-encode an absolute path the way VS Code does: everything but unreserved characters and `/`. */
export function encodePath(p: string): string {
  return p
    .split("/")
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join("/");
}

function normalizeRoot(p: string): string {
  const trimmed = p.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

function segmentsOf(root: string): string[] {
  return root === "/" ? [] : root.slice(1).split("/");
}
