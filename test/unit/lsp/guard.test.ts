/**
 * The server -> editor guard (THREATS.md invariants 1 and 2: the language server is the attacker's; the
 * editor must not open, write or watch host paths outside the project because the server said so).
 * One test per message type that carries URIs; every URI is normalised before the check.
 */
import { describe, expect, test } from "bun:test";
import { createGuard, createServerFilter, fileUriPath, normalizePath, REQUEST_FAILED } from "../../../src/lsp/guard.ts";
import { createRewriter } from "../../../src/lsp/rewrite.ts";

const ROOT = "/home/u/proj";
const IN = `file://${ROOT}`;
// A project whose `link` is a symlink the sandbox planted, pointing at /root.
const realpath = (p: string) => {
  if (p === `${ROOT}/link` || p.startsWith(`${ROOT}/link/`)) return `/root${p.slice(`${ROOT}/link`.length)}`;
  if (p === ROOT || p.startsWith(`${ROOT}/src`) || ["/", "/home", "/home/u", "/root"].includes(p)) return p;
  return null;
};
const guard = () => createGuard({ roots: [ROOT], protectedPaths: [".vscode", "silo.toml", ".git/hooks"], realpath });
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Outside spellings of a path, after normalisation: all must be refused. */
const OUTSIDE = [
  "file:///root/.bashrc",
  `${IN}/../../../root/.bashrc`,
  `${IN}/%2e%2e/%2E%2E/%2e%2e/root/.bashrc`,
  `${IN}/src/..%2F..%2F..%2F..%2Froot/.bashrc`,
  `${IN}/src/..%5C..%5C..%5C..%5Croot/.bashrc`,
  "file:////root/.bashrc",
  "file://evil-host/share/x",
  "FILE:///etc/shadow",
  "file://localhost/etc/shadow",
  `${IN}/a%00b`,
  `${IN}/%zz`,
  "/etc/shadow",
  "command:workbench.action.terminal.sendSequence",
  "vscode://file/etc/shadow",
];

describe("normalisation", () => {
  test("fileUriPath decodes, resolves `..`, `.`, `//` and `\\`; refuses other hosts, NUL, bad escapes", () => {
    expect(fileUriPath(`${IN}/%2e%2e/x`)).toBe("/home/u/x");
    expect(fileUriPath("file://localhost/a//b/./c")).toBe("/a/b/c");
    expect(fileUriPath("file:///a/b%5C..%5C..%5Cc")).toBe("/c");
    expect(fileUriPath("file://h/x")).toBeNull();
    expect(fileUriPath("file:///a%00")).toBeNull();
    expect(fileUriPath("file:///a%zz")).toBeNull();
    expect(normalizePath("/../../x")).toBe("/x");
  });
  for (const uri of OUTSIDE)
    test(`outside: ${JSON.stringify(uri)}`, () => {
      expect(guard().allows(uri)).not.toBeNull();
    });
  test("inside, and the safe schemes (not as edit targets)", () => {
    const g = guard();
    for (const uri of [`${IN}/src/a.ts`, `${IN}/src/../b.ts`, `file://localhost${ROOT}/a`, "https://x/doc", "untitled:Untitled-1"]) expect(g.allows(uri)).toBeNull();
    expect(g.allows("https://x/doc", "edit")).not.toBeNull();
    expect(g.allows(`${IN}-other/a.ts`)).not.toBeNull(); // shares a prefix, not a segment
  });
});

describe("workspace/applyEdit (server request)", () => {
  const edit = (e: unknown) => ({ jsonrpc: "2.0", id: 7, method: "workspace/applyEdit", params: { label: "x", edit: e } });
  const refusedWith = (msg: unknown) => {
    const v = guard().check(msg);
    expect(v.kind).toBe("refuse");
    return (v as { toServer: Record<string, unknown> & { result: { applied: boolean } } }).toServer;
  };
  for (const uri of OUTSIDE) {
    test(`documentChanges create / rename / delete / textDocumentEdit of ${uri}`, () => {
      for (const dc of [
        { kind: "create", uri },
        { kind: "rename", oldUri: `${IN}/a.ts`, newUri: uri },
        { kind: "rename", oldUri: uri, newUri: `${IN}/a.ts` },
        { kind: "delete", uri, options: { recursive: true } },
        { textDocument: { uri, version: 1 }, edits: [{ range: {}, newText: "x" }] },
      ]) {
        const r = refusedWith(edit({ documentChanges: [{ textDocument: { uri: `${IN}/ok.ts`, version: 1 }, edits: [] }, dc] }));
        expect(r as unknown).toEqual({ jsonrpc: "2.0", id: 7, result: { applied: false, failureReason: expect.stringContaining("silo: refused") } });
      }
    });
    test(`changes keyed by ${uri}`, () => {
      expect(refusedWith(edit({ changes: { [`${IN}/ok.ts`]: [], [uri]: [{ range: {}, newText: "x" }] } })).result.applied).toBe(false);
    });
  }
  test("an edit through a symlink the project planted, or of a protected path, is refused", () => {
    for (const uri of [`${IN}/link/.bashrc`, `${IN}/link/new-dir/x`, `${IN}/.vscode/tasks.json`, `${IN}/silo.toml`, `${IN}/.git/hooks/pre-commit`, `${IN}/.git/config`, `${IN}/src/../.git/config`, `${IN}/x.code-workspace`])
      expect(refusedWith(edit({ documentChanges: [{ kind: "create", uri }] })).result.applied).toBe(false);
  });
  test("an edit inside the project passes (and is not changed)", () => {
    const msg = edit({ documentChanges: [{ kind: "create", uri: `${IN}/src/new.ts` }], changes: { [`${IN}/src/a.ts`]: [] } });
    expect(guard().check(msg)).toEqual({ kind: "pass", changed: false });
  });
});

describe("other server requests", () => {
  test("window/showDocument outside: {success:false}", () => {
    for (const uri of ["file:///etc/shadow", `${IN}/../../../etc/shadow`, `${IN}/link/.ssh/id_rsa`]) {
      const v = guard().check({ jsonrpc: "2.0", id: 3, method: "window/showDocument", params: { uri, takeFocus: true } });
      expect(v).toEqual({ kind: "refuse", why: expect.any(String), toServer: { jsonrpc: "2.0", id: 3, result: { success: false } } });
    }
    expect(guard().check({ jsonrpc: "2.0", id: 3, method: "window/showDocument", params: { uri: "https://example.com", external: true } }).kind).toBe("pass");
  });
  test("workspace/configuration with an outside scopeUri: RequestFailed", () => {
    const v = guard().check({ jsonrpc: "2.0", id: 4, method: "workspace/configuration", params: { items: [{ scopeUri: "file:///root", section: "x" }] } });
    expect(v).toEqual({ kind: "refuse", why: expect.any(String), toServer: { jsonrpc: "2.0", id: 4, error: { code: REQUEST_FAILED, message: expect.any(String) } } });
  });
  test("client/registerCapability: absolute or `..` watcher globs, outside baseUri, absolute document selector patterns", () => {
    const reg = (registerOptions: unknown) => ({ jsonrpc: "2.0", id: 5, method: "client/registerCapability", params: { registrations: [{ id: "1", method: "workspace/didChangeWatchedFiles", registerOptions }] } });
    for (const w of ["/root/.ssh/**", "../**", "~/.aws/*", { baseUri: "file:///root", pattern: "**" }, { baseUri: { uri: "file:///etc", name: "x" }, pattern: "*" }])
      expect(guard().check(reg({ watchers: [{ globPattern: w }] })).kind).toBe("refuse");
    expect(guard().check(reg({ documentSelector: [{ language: "ts", pattern: "/etc/**" }] })).kind).toBe("refuse");
    expect(guard().check(reg({ watchers: [{ globPattern: "**/*.ts" }, { globPattern: { baseUri: `${IN}/src`, pattern: "*.ts" } }] })).kind).toBe("pass");
  });
});

describe("notifications and responses", () => {
  test("textDocument/publishDiagnostics for an outside document is dropped", () => {
    expect(guard().check({ jsonrpc: "2.0", method: "textDocument/publishDiagnostics", params: { uri: "file:///etc/passwd", diagnostics: [] } }).kind).toBe("drop");
  });
  test("publishDiagnostics: relatedInformation outside is removed, the diagnostic stays", () => {
    const msg = {
      jsonrpc: "2.0",
      method: "textDocument/publishDiagnostics",
      params: {
        uri: `${IN}/a.ts`,
        diagnostics: [{ message: "m", relatedInformation: [{ location: { uri: "file:///usr/lib/node_modules/typescript/lib/lib.d.ts" }, message: "r1" }, { location: { uri: `${IN}/b.ts` }, message: "r2" }] }],
      },
    };
    expect(guard().check(msg)).toEqual({ kind: "pass", changed: true });
    expect(msg.params.diagnostics[0]!.relatedInformation.map((r) => r.message)).toEqual(["r2"]);
  });
  test("a notification naming an outside path elsewhere is dropped ($/progress, telemetry)", () => {
    expect(guard().check({ jsonrpc: "2.0", method: "$/progress", params: { token: 1, value: { kind: "report", uri: "file:///root" } } }).kind).toBe("drop");
    expect(guard().check({ jsonrpc: "2.0", method: "$/progress", params: { token: 1, value: { kind: "report", message: "file:///root is just text" } } }).kind).toBe("pass");
  });
  test("textDocument/definition: Location[] and LocationLink[] entries into the image are removed; a single Location becomes an error", () => {
    const list = { jsonrpc: "2.0", id: 9, result: [{ uri: "file:///usr/lib/python3.11/os.py", range: {} }, { uri: `${IN}/a.py`, range: {} }, { targetUri: `${IN}/../x`, targetRange: {} }] };
    expect(guard().check(list).kind).toBe("pass");
    expect(list.result).toEqual([{ uri: `${IN}/a.py`, range: {} }]);
    const single = guard().check({ jsonrpc: "2.0", id: 9, result: { uri: "file:///usr/lib/python3.11/os.py", range: {} } });
    expect(single).toEqual({ kind: "drop", why: expect.any(String), toClient: { jsonrpc: "2.0", id: 9, error: { code: REQUEST_FAILED, message: expect.any(String) } } });
  });
  test("textDocument/rename: a WorkspaceEdit answer with an outside change is refused whole", () => {
    const v = guard().check({ jsonrpc: "2.0", id: 2, result: { changes: { [`${IN}/a.ts`]: [], "file:///root/.bashrc": [] } } });
    expect(v.kind).toBe("drop");
  });
  test("textDocument/codeAction: the one action whose edit leaves the project is removed, the others stay", () => {
    const msg = { jsonrpc: "2.0", id: 2, result: [{ title: "ok", edit: { changes: { [`${IN}/a.ts`]: [] } } }, { title: "evil", edit: { documentChanges: [{ textDocument: { uri: `${IN}/a.ts` }, edits: [] }, { kind: "create", uri: `${IN}/.vscode/tasks.json` }] } }] };
    expect(guard().check(msg).kind).toBe("pass");
    expect(msg.result.map((a) => a.title)).toEqual(["ok"]);
  });
  test("documentLink targets, workspace/symbol locations, diagnostic relatedDocuments, codeDescription.href", () => {
    const links = { jsonrpc: "2.0", id: 1, result: [{ range: {}, target: "command:evil" }, { range: {}, target: "https://docs" }, { range: {}, target: "file:///etc/shadow" }] };
    guard().check(links);
    expect(links.result.map((l) => l.target)).toEqual(["https://docs"]);
    const syms = { jsonrpc: "2.0", id: 1, result: [{ name: "a", location: { uri: "file:///usr/x.py" } }, { name: "b", location: { uri: `${IN}/b.py` } }] };
    guard().check(syms);
    expect(syms.result.map((s) => s.name)).toEqual(["b"]);
    const report = { jsonrpc: "2.0", id: 1, result: { kind: "full", items: [], relatedDocuments: { "file:///etc/x": {}, [`${IN}/a`]: {} } } };
    guard().check(report);
    expect(Object.keys(report.result.relatedDocuments)).toEqual([`${IN}/a`]);
    const href = { jsonrpc: "2.0", method: "textDocument/publishDiagnostics", params: { uri: `${IN}/a`, diagnostics: [{ message: "x", codeDescription: { href: "file:///etc/shadow" } }, { message: "y", codeDescription: { href: "https://docs" } }] } };
    guard().check(href);
    expect(href.params.diagnostics.map((d) => d.message)).toEqual(["y"]);
  });
  test("a batch (array) or a bare value is dropped", () => {
    expect(guard().check([{ jsonrpc: "2.0", method: "window/showDocument", id: 1, params: { uri: "file:///etc/shadow" } }]).kind).toBe("drop");
    expect(guard().check("x").kind).toBe("drop");
  });
});

describe("createServerFilter (guest URIs, re-encoding)", () => {
  const filter = () => createServerFilter(createRewriter({ hostRoot: ROOT }), guard());
  test("a guest URI with `..` after /workspace is mapped, then refused", () => {
    const r = filter()(enc.encode(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "window/showDocument", params: { uri: "file:///workspace/../root/.bashrc" } })));
    expect(r instanceof Uint8Array).toBe(false);
    expect(JSON.parse(dec.decode((r as { toServer: Uint8Array }).toServer))).toEqual({ jsonrpc: "2.0", id: 1, result: { success: false } });
  });
  test("a \\u-escaped key is seen; duplicate keys are re-encoded as checked", () => {
    const esc = filter()(enc.encode('{"jsonrpc":"2.0","id":1,"method":"window/showDocument","params":{"\\u0075ri":"file:///etc/shadow"}}'));
    expect(esc instanceof Uint8Array).toBe(false);
    const dup = filter()(enc.encode(`{"jsonrpc":"2.0","method":"textDocument/publishDiagnostics","params":{"uri":"file:///etc/x","uri":"file:///workspace/a.ts","diagnostics":[]}}`));
    expect(JSON.parse(dec.decode(dup as Uint8Array)).params.uri).toBe(`${IN}/a.ts`);
    expect(dec.decode(dup as Uint8Array)).not.toContain("/etc/x");
  });
  test("after initialize, messages without URI or command keys pass byte for byte; non-JSON with a key is dropped", () => {
    const rewriter = createRewriter({ hostRoot: ROOT });
    const f = createServerFilter(rewriter, guard());
    rewriter.toGuest(enc.encode(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { processId: 1, rootUri: IN, capabilities: {} } })));
    f(enc.encode('{"jsonrpc":"2.0","id":0,"result":{"capabilities":{}}}'));
    const body = enc.encode('{"jsonrpc":"2.0","id":1,"result":{"contents":"x"}}');
    expect(f(body)).toBe(body);
    expect(f(enc.encode('{"uri": nope'))).toEqual({ dropped: "a body that is not JSON" });
  });
});
