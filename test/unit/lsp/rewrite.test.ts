import { describe, expect, test } from "bun:test";
import { createRewriter, encodePath, mapPath, matchUriRoot, PATH_KEYS, URI_KEYS, URI_MAP_KEYS } from "../../../src/lsp/rewrite.ts";

const H = "/home/u/proj";
const HU = "file:///home/u/proj";
const G = "file:///workspace";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Rewrite a message object through the byte interface, as the proxy does. */
function through(rw: ReturnType<typeof createRewriter>, dir: "toGuest" | "toHost", msg: unknown): any {
  return JSON.parse(dec.decode(rw[dir](enc.encode(JSON.stringify(msg)))));
}
const fresh = () => createRewriter({ hostRoot: H });

describe("editor -> server (toGuest)", () => {
  test("initialize: rootUri, rootPath, workspaceFolders; processId becomes null and is remembered", () => {
    const rw = fresh();
    const out = through(rw, "toGuest", {
      jsonrpc: "2.0", id: 0, method: "initialize",
      params: { processId: 4242, rootUri: HU, rootPath: H, workspaceFolders: [{ uri: HU, name: "proj" }], capabilities: {} },
    });
    expect(out.params).toEqual({ processId: null, rootUri: G, rootPath: "/workspace", workspaceFolders: [{ uri: G, name: "proj" }], capabilities: {} });
    expect(rw.clientProcessId).toBe(4242);
  });

  test("processId is only touched in initialize", () => {
    const msg = { jsonrpc: "2.0", method: "custom/thing", params: { processId: 7 } };
    expect(through(fresh(), "toGuest", msg)).toEqual(msg);
  });

  test("didOpen: textDocument.uri rewritten, document text untouched even when it contains the root", () => {
    const text = `// see ${HU}/src/a.ts and ${H}/src/b.ts\nconst uri = "${HU}/x";\n`;
    const out = through(fresh(), "toGuest", {
      jsonrpc: "2.0", method: "textDocument/didOpen",
      params: { textDocument: { uri: `${HU}/src/a.ts`, languageId: "typescript", version: 1, text } },
    });
    expect(out.params.textDocument).toEqual({ uri: `${G}/src/a.ts`, languageId: "typescript", version: 1, text });
  });

  test("didChange text is untouched", () => {
    const change = { text: `${HU}/src/a.ts`, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } } };
    const out = through(fresh(), "toGuest", {
      jsonrpc: "2.0", method: "textDocument/didChange",
      params: { textDocument: { uri: `${HU}/a.ts`, version: 2 }, contentChanges: [change] },
    });
    expect(out.params.textDocument.uri).toBe(`${G}/a.ts`);
    expect(out.params.contentChanges).toEqual([change]);
  });

  test("a path that merely shares a prefix is not rewritten", () => {
    const out = through(fresh(), "toGuest", {
      jsonrpc: "2.0", id: 1, method: "initialize",
      params: { processId: null, rootUri: "file:///home/u/project2", rootPath: "/home/u/project2", workspaceFolders: [{ uri: "file:///home/u/proj2/x", name: "p" }] },
    });
    expect(out.params.rootUri).toBe("file:///home/u/project2");
    expect(out.params.rootPath).toBe("/home/u/project2");
    expect(out.params.workspaceFolders[0].uri).toBe("file:///home/u/proj2/x");
  });

  test("URIs outside the project and non-file URIs are left alone", () => {
    for (const uri of ["file:///etc/hosts", "untitled:Untitled-1", "https://example.com/home/u/proj/a.ts", "file:///home/u", "file:///home"]) {
      const msg = { jsonrpc: "2.0", method: "textDocument/didClose", params: { textDocument: { uri } } };
      expect(through(fresh(), "toGuest", msg)).toEqual(msg);
    }
  });

  test("the root itself, a trailing slash, a query and a fragment", () => {
    const rw = fresh();
    const uris = [HU, `${HU}/`, `${HU}?x=1`, `${HU}/a.ts#L3`];
    const out = through(rw, "toGuest", { jsonrpc: "2.0", id: 2, result: uris.map((uri) => ({ uri })) });
    expect(out.result.map((x: { uri: string }) => x.uri)).toEqual([G, `${G}/`, `${G}?x=1`, `${G}/a.ts#L3`]);
  });

  test("file-operation params: files[].uri and files[].oldUri/newUri", () => {
    const rw = fresh();
    const created = through(rw, "toGuest", { jsonrpc: "2.0", method: "workspace/didCreateFiles", params: { files: [{ uri: `${HU}/n.ts` }] } });
    expect(created.params.files).toEqual([{ uri: `${G}/n.ts` }]);
    const renamed = through(rw, "toGuest", {
      jsonrpc: "2.0", id: 3, method: "workspace/willRenameFiles",
      params: { files: [{ oldUri: `${HU}/a.ts`, newUri: `${HU}/b.ts` }] },
    });
    expect(renamed.params.files).toEqual([{ oldUri: `${G}/a.ts`, newUri: `${G}/b.ts` }]);
  });

  test("didChangeWatchedFiles: changes is an array of FileEvents, not a URI map", () => {
    const out = through(fresh(), "toGuest", {
      jsonrpc: "2.0", method: "workspace/didChangeWatchedFiles", params: { changes: [{ uri: `${HU}/a.ts`, type: 2 }] },
    });
    expect(out.params.changes).toEqual([{ uri: `${G}/a.ts`, type: 2 }]);
  });

  test("percent-encoded URIs: decoded for matching, remainder kept as spelled", () => {
    const rw = createRewriter({ hostRoot: "/home/u/my proj" });
    const out = through(rw, "toGuest", {
      jsonrpc: "2.0", method: "textDocument/didOpen",
      params: { textDocument: { uri: "file:///home/u/my%20proj/src/a%2Bb%20c.ts", text: "" } },
    });
    expect(out.params.textDocument.uri).toBe(`${G}/src/a%2Bb%20c.ts`);
    // Lowercase escapes and a non-ASCII root.
    const rw2 = createRewriter({ hostRoot: "/home/u/café" });
    expect(through(rw2, "toGuest", { id: 1, result: { uri: "file:///home/u/caf%c3%a9/x.ts" } }).result.uri).toBe(`${G}/x.ts`);
    // A malformed escape is not ours.
    expect(through(rw2, "toGuest", { id: 1, result: { uri: "file:///home/u/caf%E9/x.ts" } }).result.uri).toBe("file:///home/u/caf%E9/x.ts");
  });

  test("file://localhost/ is the same file", () => {
    expect(through(fresh(), "toGuest", { id: 1, result: { uri: "file://localhost/home/u/proj/a.ts" } }).result.uri).toBe(`${G}/a.ts`);
  });

  test("aliases: a symlinked spelling of the root maps too", () => {
    const rw = createRewriter({ hostRoot: "/private/tmp/p", hostAliases: ["/tmp/p"] });
    expect(through(rw, "toGuest", { id: 1, result: { uri: "file:///tmp/p/a.ts" } }).result.uri).toBe(`${G}/a.ts`);
    expect(through(rw, "toGuest", { id: 1, result: { uri: "file:///private/tmp/p/a.ts" } }).result.uri).toBe(`${G}/a.ts`);
  });

  test("responses to server requests: workspace/workspaceFolders and configuration scopeUri", () => {
    const out = through(fresh(), "toGuest", { jsonrpc: "2.0", id: 9, result: [{ uri: HU, name: "proj" }] });
    expect(out.result).toEqual([{ uri: G, name: "proj" }]);
  });

  test("unchanged messages are forwarded byte-for-byte", () => {
    const rw = fresh();
    const raw = enc.encode(`{"jsonrpc":"2.0","method":"textDocument/didChange",  "params":{"textDocument":{"uri":"file:///etc/x"}}}`);
    expect(rw.toGuest(raw)).toBe(raw);
    const noFile = enc.encode(`{"jsonrpc":"2.0","id":1,"method":"shutdown"}`);
    expect(rw.toGuest(noFile)).toBe(noFile);
    const notJson = enc.encode(`{"file: broken`);
    expect(rw.toGuest(notJson)).toBe(notJson);
  });
});

describe("server -> editor (toHost)", () => {
  test("publishDiagnostics: uri and relatedInformation locations; message text untouched", () => {
    const message = `Type 'string' is not assignable; see ${G}/src/b.ts`;
    const out = through(fresh(), "toHost", {
      jsonrpc: "2.0", method: "textDocument/publishDiagnostics",
      params: {
        uri: `${G}/src/a.ts`,
        diagnostics: [{ message, range: {}, relatedInformation: [{ location: { uri: `${G}/src/b.ts`, range: {} }, message: "here" }] }],
      },
    });
    expect(out.params.uri).toBe(`${HU}/src/a.ts`);
    expect(out.params.diagnostics[0].message).toBe(message);
    expect(out.params.diagnostics[0].relatedInformation[0].location.uri).toBe(`${HU}/src/b.ts`);
  });

  test("definition results: Location[] and LocationLink[]", () => {
    const rw = fresh();
    const loc = through(rw, "toHost", { jsonrpc: "2.0", id: 1, result: [{ uri: `${G}/a.ts`, range: {} }] });
    expect(loc.result[0].uri).toBe(`${HU}/a.ts`);
    const link = through(rw, "toHost", { jsonrpc: "2.0", id: 2, result: [{ targetUri: `${G}/b.ts`, targetRange: {}, targetSelectionRange: {} }] });
    expect(link.result[0].targetUri).toBe(`${HU}/b.ts`);
  });

  test("a definition outside the project (inside the image) stays a guest URI", () => {
    const msg = { jsonrpc: "2.0", id: 1, result: [{ uri: "file:///usr/lib/node_modules/typescript/lib/lib.dom.d.ts", range: {} }] };
    expect(through(fresh(), "toHost", msg)).toEqual(msg);
    const near = { jsonrpc: "2.0", id: 1, result: { uri: "file:///workspace2/a.ts" } };
    expect(through(fresh(), "toHost", near)).toEqual(near);
  });

  test("WorkspaceEdit.changes keys and documentChanges with create/rename/delete", () => {
    const out = through(fresh(), "toHost", {
      jsonrpc: "2.0", id: 5, method: "workspace/applyEdit",
      params: {
        edit: {
          changes: { [`${G}/a.ts`]: [{ range: {}, newText: `${G}/literal` }], "file:///etc/x": [] },
          documentChanges: [
            { textDocument: { uri: `${G}/a.ts`, version: 1 }, edits: [{ range: {}, newText: "x" }] },
            { kind: "create", uri: `${G}/new.ts` },
            { kind: "rename", oldUri: `${G}/old.ts`, newUri: `${G}/renamed.ts` },
            { kind: "delete", uri: `${G}/gone.ts` },
          ],
        },
      },
    });
    expect(Object.keys(out.params.edit.changes)).toEqual([`${HU}/a.ts`, "file:///etc/x"]);
    expect(out.params.edit.changes[`${HU}/a.ts`][0].newText).toBe(`${G}/literal`);
    expect(out.params.edit.documentChanges).toEqual([
      { textDocument: { uri: `${HU}/a.ts`, version: 1 }, edits: [{ range: {}, newText: "x" }] },
      { kind: "create", uri: `${HU}/new.ts` },
      { kind: "rename", oldUri: `${HU}/old.ts`, newUri: `${HU}/renamed.ts` },
      { kind: "delete", uri: `${HU}/gone.ts` },
    ]);
  });

  test("relatedDocuments keys, scopeUri, baseUri, DocumentLink target", () => {
    const rw = fresh();
    const report = through(rw, "toHost", { id: 1, result: { kind: "full", items: [], relatedDocuments: { [`${G}/b.ts`]: { kind: "full", items: [] } } } });
    expect(Object.keys(report.result.relatedDocuments)).toEqual([`${HU}/b.ts`]);
    const cfg = through(rw, "toHost", { id: 2, method: "workspace/configuration", params: { items: [{ scopeUri: `${G}/a.ts`, section: "ts" }] } });
    expect(cfg.params.items[0].scopeUri).toBe(`${HU}/a.ts`);
    const watch = through(rw, "toHost", {
      id: 3, method: "client/registerCapability",
      params: { registrations: [{ id: "w", method: "workspace/didChangeWatchedFiles", registerOptions: { watchers: [{ globPattern: { baseUri: G, pattern: "**/*.ts" } }] } }] },
    });
    expect(watch.params.registrations[0].registerOptions.watchers[0].globPattern.baseUri).toBe(HU);
    const link = through(rw, "toHost", { id: 4, result: [{ range: {}, target: `${G}/README.md` }] });
    expect(link.result[0].target).toBe(`${HU}/README.md`);
  });

  test("the editor's spelling of the root comes back (learned from what it sent)", () => {
    const rw = createRewriter({ hostRoot: "/home/u/my proj" });
    // Before learning: VS Code-style encoding of the host root.
    expect(through(rw, "toHost", { id: 1, result: { uri: `${G}/a.ts` } }).result.uri).toBe("file:///home/u/my%20proj/a.ts");
    through(rw, "toGuest", { id: 0, method: "initialize", params: { processId: 1, rootUri: "file:///home/u/my%20proj" } });
    expect(through(rw, "toHost", { id: 1, result: { uri: `${G}/b.ts` } }).result.uri).toBe("file:///home/u/my%20proj/b.ts");
    const rw2 = createRewriter({ hostRoot: "/home/u/my proj" });
    through(rw2, "toGuest", { id: 0, method: "initialize", params: { processId: 1, rootUri: "file:///home/u/my proj" } });
    expect(through(rw2, "toHost", { id: 1, result: { uri: `${G}/a%20b.ts` } }).result.uri).toBe("file:///home/u/my proj/a%20b.ts");
  });

  test("a round trip is the identity for project URIs", () => {
    const rw = fresh();
    const msg = { id: 1, result: { uri: `${HU}/src/deep/x%23y.ts` } };
    expect(through(rw, "toHost", through(rw, "toGuest", msg))).toEqual(msg);
  });
});

describe("helpers", () => {
  test("matchUriRoot respects segment boundaries", () => {
    const segs = ["home", "u", "proj"];
    expect(matchUriRoot("file:///home/u/proj/a", segs)).toBe("file:///home/u/proj".length);
    expect(matchUriRoot("file:///home/u/project2/a", segs)).toBe(-1);
    expect(matchUriRoot("file:///home/u/pro", segs)).toBe(-1);
    expect(matchUriRoot("file:/home/u/proj", segs)).toBe(-1);
  });

  test("mapPath respects segment boundaries", () => {
    expect(mapPath("/home/u/proj/a", H, "/workspace")).toBe("/workspace/a");
    expect(mapPath("/home/u/proj", H, "/workspace")).toBe("/workspace");
    expect(mapPath("/home/u/project2", H, "/workspace")).toBeUndefined();
  });

  test("encodePath encodes like VS Code", () => {
    expect(encodePath("/home/u/my proj/a+b(1)")).toBe("/home/u/my%20proj/a%2Bb%281%29");
  });

  test("the rewritten key sets are explicit", () => {
    expect([...URI_KEYS].sort()).toEqual(["baseUri", "newUri", "oldUri", "rootUri", "scopeUri", "target", "targetUri", "uri"]);
    expect([...PATH_KEYS]).toEqual(["rootPath"]);
    expect([...URI_MAP_KEYS].sort()).toEqual(["changes", "relatedDocuments"]);
  });
});

describe("hostile input", () => {
  test("a __proto__ key in a URI map stays an entry", () => {
    const raw = `{"id":1,"result":{"changes":{"__proto__":[],"file:///workspace/a.ts":[]}}}`;
    const out = JSON.parse(dec.decode(fresh().toHost(enc.encode(raw))));
    expect(Object.keys(out.result.changes)).toEqual(["__proto__", "file:///home/u/proj/a.ts"]);
  });
});
