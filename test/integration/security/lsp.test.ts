/**
 * THREATS.md invariants 1, 3 and 6 for `silo lsp`:
 * - the language server install sees nothing of the project that asked for it (no project `.venv` on
 *   PATH, no project env, no project files, no shared package cache), because its layer is shared by every
 *   project on the image; and at run time the layer is read-only;
 * - what the server tells the editor names nothing outside the project: `workspace/applyEdit`
 *   (create / rename / delete / text edits / `changes`), `window/showDocument`, `workspace/configuration`,
 *   `client/registerCapability` watchers, `textDocument/publishDiagnostics`, definitions into the image;
 * - the editor runs no command the server did not declare (invariant 1: `workbench.action.terminal.sendSequence`
 *   in a completion item, code lens, code action or `workspace/executeClientCommand` types into the user's
 *   terminal), even when it lists it among its own commands.
 * Positive controls first: a project sandbox really puts the project's `pip` first (what the installer used
 * to run), and the same hostile server piped straight to the editor (`silo run`) delivers every message.
 * The hostile server is a script speaking real LSP framing (_fake_ls.py): a real server does not send
 * these on demand.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { makeHome, repoRoot, runSilo, siloBin, tmp } from "../../helpers/silo.ts";
import { cleanUp, ok } from "../isolation/_helpers.ts";

afterAll(cleanUp);

const embeddedPython = () => readFileSync(join(repoRoot, "registry/python.toml"), "utf8").replace(/\n\[lsp\][\s\S]*?(?=\n\[|$)/, "\n");
/** A SILO_HOME with python installed from a registry entry (as `silo registry update` leaves it) with this `[lsp]`. */
async function homeWithLsp(lsp: string): Promise<string> {
  const home = makeHome();
  mkdirSync(join(home, "registry/current"), { recursive: true });
  writeFileSync(join(home, "registry/current/python.toml"), `${embeddedPython()}\n[lsp]\n${lsp}\n`);
  ok(await runSilo(["install", "python@3.11-slim"], { home }));
  return home;
}

describe("lsp install: nothing of the project", () => {
  const HOSTILE_PIP = `#!/bin/sh
echo HOSTILE-PIP-RAN >&2
mkdir -p /opt/silo-ls/bin
printf '#!/bin/sh\\necho PWNED >&2\\nexec cat >/dev/null\\n' > /opt/silo-ls/bin/server
chmod +x /opt/silo-ls/bin/server
`;
  const INSTALL = [
    'echo "INSTALL-PIP=$(command -v pip)" >&2',
    "pip install --no-index --find-links /nonexistent silo-fake-ls >/dev/null 2>&1 || true",
    "echo \"INSTALL-WS=[$(ls -A /workspace | tr '\\n' ' ')]\" >&2",
    'echo "INSTALL-ENV=[${PROJECT_ENV:-}${VIRTUAL_ENV:-}]" >&2',
    "echo \"INSTALL-CACHE=[$(ls -A /root/.cache/pip 2>/dev/null | tr '\\n' ' ')]\" >&2",
    "mkdir -p /opt/silo-ls/bin",
    "[ -e /opt/silo-ls/bin/server ] || printf '#!/bin/sh\\necho TAMPERED >> \"$0\" && echo SERVER-WROTE-ITS-FILE >&2\\necho HONEST-SERVER >&2\\nexec cat >/dev/null\\n' > /opt/silo-ls/bin/server",
    "chmod +x /opt/silo-ls/bin/server",
  ].join("; ");

  test("a project's .venv/bin/pip, env and files do not reach the shared LSP layer, which stays read-only", async () => {
    const home = await homeWithLsp(`command = ["/opt/silo-ls/bin/server"]\ninstall = ["sh", "-c", ${JSON.stringify(INSTALL)}]`);
    const proj = tmp("silo-proj-");
    writeFileSync(join(proj, "silo.toml"), 'env = { PROJECT_ENV = "from-project" }\n');
    mkdirSync(join(proj, ".venv/bin"), { recursive: true });
    writeFileSync(join(proj, ".venv/pyvenv.cfg"), "home = /usr/bin\n");
    writeFileSync(join(proj, ".venv/bin/pip"), HOSTILE_PIP);
    chmodSync(join(proj, ".venv/bin/pip"), 0o755);
    // What another project's sandbox could have left in the shared pip cache.
    mkdirSync(join(home, "cache/python/pip"), { recursive: true });
    writeFileSync(join(home, "cache/python/pip/poisoned-wheel"), "x");

    // Positive control: in a project sandbox (what the installer used to be) `pip` is the project's.
    const control = ok(
      await runSilo(["run", "python", "-c", "import shutil, subprocess; print(shutil.which('pip')); subprocess.run(['pip', 'install', 'x'])"], { home, cwd: proj }),
    );
    expect(control.stdout.trim()).toBe("/workspace/.venv/bin/pip");
    expect(control.stderr).toContain("HOSTILE-PIP-RAN");

    const r = await runSilo(["lsp", "python"], { home, cwd: proj, stdin: "" });
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("HONEST-SERVER") });
    expect(r.stderr).toContain("installing python's language server");
    expect(r.stderr).not.toContain("HOSTILE-PIP-RAN");
    expect(r.stderr).not.toContain("PWNED");
    expect(r.stderr).toMatch(/INSTALL-PIP=\/usr\/(local\/)?bin\/pip\n/);
    expect(r.stderr).toContain("INSTALL-WS=[]");
    expect(r.stderr).toContain("INSTALL-ENV=[]");
    expect(r.stderr).toContain("INSTALL-CACHE=[]");
    expect(r.stdout).toBe("");

    // The layer is in SILO_HOME, and the server's write to its own file (`echo tampered >> $0`) did not reach it.
    const layers = readdirSync(join(home, "builds/.lsp/python"));
    expect(layers.length).toBe(1);
    const server = readFileSync(join(home, "builds/.lsp/python", layers[0]!, "opt/silo-ls/bin/server"), "utf8");
    expect(server).toContain("HONEST-SERVER");
    // Inside, the write succeeded (into the run's throw-away upper layer); the host's layer is as installed.
    expect(r.stderr).toContain("SERVER-WROTE-ITS-FILE");
    expect(server.endsWith("exec cat >/dev/null\n")).toBe(true);
    expect(server).not.toContain("TAMPERED\n");
  }, 300_000);
});

const EVIL = "workbench.action.terminal.sendSequence";

interface Seen {
  requests: { method: string; params: any }[];
  notifications: { method: string; params: any }[];
  stderr: string;
  definition: unknown;
  /** Answers to completion, codeLens and codeAction, and the commands the server declared. */
  commands: { completion: any; codeLens: any; codeAction: any; declared: unknown };
  code: number | null;
}

/** Drive a server command (`silo lsp python` or the same server through `silo run`) as a naive editor that accepts everything. */
async function session(home: string, root: string, args: string[]): Promise<Seen> {
  const proc = spawn(siloBin, args, { cwd: root, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home }, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((r) => proc.on("exit", (c) => r(c)));
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  const seen: Seen = { requests: [], notifications: [], stderr: "", definition: null, commands: { completion: null, codeLens: null, codeAction: null, declared: null }, code: null };
  let done!: () => void;
  const doneP = new Promise<void>((r) => (done = r));
  conn.onRequest((method, params) => {
    seen.requests.push({ method, params });
    if (method === "workspace/applyEdit") return { applied: true };
    if (method === "window/showDocument") return { success: true };
    if (method === "workspace/configuration") return [null];
    return null;
  });
  conn.onNotification((method, params) => {
    seen.notifications.push({ method, params });
    if (method === "window/logMessage" && (params as { message: string }).message === "DONE") done();
  });
  conn.listen();
  const rootUri = pathToFileURL(root).href;
  // A silo that fails says so at once, instead of leaving the session waiting.
  const failed = exit.then((c) => Promise.reject(new Error(`silo exited (${c}) mid-session: ${stderr}`)));
  const init = (await Promise.race([failed, conn.sendRequest("initialize", { processId: null, rootUri, workspaceFolders: [{ uri: rootUri, name: "p" }], capabilities: {} })])) as any;
  seen.commands.declared = init.capabilities.executeCommandProvider.commands;
  await conn.sendNotification("initialized", {});
  await Promise.race([failed, doneP]);
  failed.catch(() => {});
  const doc = { textDocument: { uri: `${rootUri}/a.py` } };
  seen.definition = await conn.sendRequest("textDocument/definition", { ...doc, position: { line: 0, character: 0 } });
  seen.commands.completion = await conn.sendRequest("textDocument/completion", { ...doc, position: { line: 0, character: 0 } });
  seen.commands.codeLens = await conn.sendRequest("textDocument/codeLens", doc);
  seen.commands.codeAction = await conn.sendRequest("textDocument/codeAction", { ...doc, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } }, context: { diagnostics: [] } });
  await conn.sendRequest("shutdown");
  await conn.sendNotification("exit");
  proc.stdin!.end();
  seen.code = await exit;
  conn.dispose();
  seen.stderr = stderr;
  return seen;
}

describe("lsp proxy: server -> editor messages naming paths outside the project", () => {
  let home: string;
  let root: string;
  const setup = async () => {
    home ??= await homeWithLsp('command = ["python3", "/workspace/fake_ls.py"]');
    if (!root) {
      root = tmp("silo-lsp-hostile-");
      writeFileSync(join(root, "silo.toml"), "");
      writeFileSync(join(root, "a.py"), "import os\n");
      copyFileSync(join(import.meta.dir, "_fake_ls.py"), join(root, "fake_ls.py"));
    }
  };

  test("positive control: piped straight through (`silo run`), the editor gets every hostile message", async () => {
    await setup();
    const s = await session(home, root, ["run", "python", "/workspace/fake_ls.py"]);
    const edits = s.requests.filter((r) => r.method === "workspace/applyEdit");
    expect(edits.length).toBe(21);
    expect(JSON.stringify(edits)).toContain("file:///root/.bashrc");
    expect(s.requests.filter((r) => r.method === "window/showDocument").map((r) => r.params.uri)).toEqual(["file:///etc/shadow", "file:///workspace/../../etc/shadow"]);
    expect(s.notifications.some((n) => n.method === "textDocument/publishDiagnostics" && n.params.uri === "file:///etc/passwd")).toBe(true);
    expect(s.requests.map((r) => r.method)).toContain("client/registerCapability");
    // The terminal command reaches the editor in every place it would run it.
    expect(s.requests.find((r) => r.method === "workspace/executeClientCommand")?.params.command).toBe(EVIL);
    expect(s.commands.declared).toEqual(["fake.fix", EVIL]);
    expect(s.commands.completion.items.map((i: any) => i.command?.command)).toEqual([EVIL, "fake.fix"]);
    expect(s.commands.codeLens.map((l: any) => l.command?.command)).toEqual([EVIL, "fake.fix"]);
    expect(s.commands.codeAction.map((a: any) => a.command?.command ?? a.command)).toEqual([EVIL, EVIL, "fake.fix"]);
  }, 300_000);

  test("through `silo lsp`: none reaches the editor; the server is told no; project URIs still come through", async () => {
    await setup();
    const s = await session(home, root, ["lsp", "python"]);
    expect(s.code).toBe(0);
    // The naive editor was asked nothing.
    expect(s.requests).toEqual([]);
    const diags = s.notifications.filter((n) => n.method === "textDocument/publishDiagnostics");
    expect(diags).toEqual([
      { method: "textDocument/publishDiagnostics", params: { uri: `${pathToFileURL(root).href}/a.py`, diagnostics: [expect.objectContaining({ message: "inside", relatedInformation: [] })] } },
    ]);
    expect(s.definition).toEqual([{ uri: `${pathToFileURL(root).href}/lib.py`, range: expect.any(Object) }]);
    // The server got the protocol's refusal for each of its requests.
    const replies = new Map(
      s.stderr.split("\n").filter((l) => l.startsWith("REPLY ")).map((l) => JSON.parse(l.slice(6)) as { id: number; result?: any; error?: any }).map((m) => [m.id, m]),
    );
    for (let id = 100; id <= 120; id++) expect(replies.get(id)?.result).toEqual({ applied: false, failureReason: expect.stringContaining("silo: refused") });
    for (const id of [121, 122]) expect(replies.get(id)?.result).toEqual({ success: false });
    for (const id of [123, 124, 125]) expect(replies.get(id)?.error?.code).toBe(-32803);
    // Commands: only the one the server declared (and not in the editor's namespace) reaches the editor.
    expect(s.commands.declared).toEqual(["fake.fix"]);
    expect(s.commands.completion.items).toEqual([{ label: "evil" }, { label: "fix", command: expect.objectContaining({ command: "fake.fix" }) }]);
    expect(s.commands.codeLens).toEqual([{ range: expect.any(Object) }, { range: expect.any(Object), command: expect.objectContaining({ command: "fake.fix" }) }]);
    expect(s.commands.codeAction).toEqual([expect.objectContaining({ command: "fake.fix" })]);
    expect(JSON.stringify([s.requests, s.notifications, s.commands])).not.toContain(EVIL);
    expect(existsSync(join(root, ".vscode"))).toBe(false);
  }, 300_000);
});
