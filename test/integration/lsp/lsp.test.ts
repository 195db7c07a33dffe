/**
 * End to end: a real typescript-language-server (installed in the node fixture image) driven through
 * the built `dist/silo lsp node` by a real LSP client (vscode-jsonrpc). Needs the fixture registry
 * (scripts/fixtures/build.sh) and bubblewrap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from "vscode-jsonrpc/node";
import type { Diagnostic, Location, LocationLink, PublishDiagnosticsParams } from "vscode-languageserver-protocol";
import { makeHome, repoRoot, runSilo, siloBin, tmp } from "../../helpers/silo.ts";

const LIB = `export function greet(name: string): string {\n  return "hello " + name;\n}\n`;
// Line 1: a deliberate type error. Line 2: a call whose definition is in lib.ts.
const MAIN = `import { greet } from "./lib";\nconst n: number = greet("x");\nconsole.log(greet("y"), n, Math.PI);\n`;

interface Session {
  proc: ChildProcess;
  conn: MessageConnection;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Start `silo lsp node` in `cwd` and connect a JSON-RPC client to its stdio. */
function startSession(home: string, cwd: string): Session {
  const proc = spawn(siloBin, ["lsp", "node"], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const exit = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.listen();
  return { proc, conn, stderr: () => err, exit };
}

describe("silo lsp node (typescript-language-server in the sandbox)", () => {
  let home: string;
  let root: string;
  let s: Session;
  const diagnostics = new Map<string, Diagnostic[]>();
  let declared: string[] = [];

  beforeAll(async () => {
    expect(existsSync(siloBin)).toBe(true);
    home = makeHome();
    // A space in the project path: the editor sends percent-encoded URIs (file:///.../my%20proj/...).
    root = join(tmp("silo-lsp-"), "my proj");
    mkdirSync(join(root, "src"), { recursive: true });
    writeFileSync(join(root, "silo.toml"), "");
    writeFileSync(join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "commonjs" } }));
    writeFileSync(join(root, "src/lib.ts"), LIB);
    writeFileSync(join(root, "src/main.ts"), MAIN);
    const install = await runSilo(["install", "node"], { home, cwd: root });
    expect({ code: install.exitCode, stderr: install.stderr }).toEqual({ code: 0, stderr: expect.any(String) });

    s = startSession(home, join(root, "src"));
    s.conn.onNotification("textDocument/publishDiagnostics", (p: PublishDiagnosticsParams) => diagnostics.set(p.uri, p.diagnostics));
    // Server-to-client requests the client must answer for the session to proceed.
    s.conn.onRequest("workspace/configuration", (p: { items: unknown[] }) => p.items.map(() => null));
    s.conn.onRequest("client/registerCapability", () => null);
    s.conn.onRequest("window/workDoneProgress/create", () => null);
  }, 300_000);

  afterAll(() => {
    s?.proc.kill("SIGKILL");
  });

  const uriOf = (rel: string) => pathToFileURL(join(root, rel)).href;

  test("initialize with the host root (processId of this process)", async () => {
    expect(uriOf("src/main.ts")).toContain("my%20proj");
    const result = (await s.conn.sendRequest("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(root).href,
      rootPath: root,
      workspaceFolders: [{ uri: pathToFileURL(root).href, name: "my proj" }],
      capabilities: {
        textDocument: { publishDiagnostics: { relatedInformation: true }, definition: { linkSupport: true }, synchronization: {}, codeLens: {} },
        workspace: { configuration: true, workspaceFolders: true },
      },
    })) as { capabilities: { definitionProvider?: unknown; executeCommandProvider: { commands: string[] } } };
    expect(result.capabilities.definitionProvider).toBeTruthy();
    declared = result.capabilities.executeCommandProvider.commands;
    await s.conn.sendNotification("initialized", {});
  }, 120_000);

  test("didOpen a file with a type error: diagnostics come back for the HOST uri", async () => {
    await s.conn.sendNotification("textDocument/didOpen", {
      textDocument: { uri: uriOf("src/main.ts"), languageId: "typescript", version: 1, text: MAIN },
    });
    for (let i = 0; i < 600 && !diagnostics.get(uriOf("src/main.ts"))?.length; i++) await Bun.sleep(100);
    expect([...diagnostics.keys()]).toContain(uriOf("src/main.ts"));
    const diags = diagnostics.get(uriOf("src/main.ts"))!;
    expect(diags.map((d) => d.message).join("\n")).toContain("Type 'string' is not assignable to type 'number'");
    expect(diags[0]!.range.start.line).toBe(1);
    for (const uri of diagnostics.keys()) expect(uri).not.toContain("/workspace/");
  }, 90_000);

  test("go-to-definition resolves into lib.ts at its HOST path", async () => {
    const result = (await s.conn.sendRequest("textDocument/definition", {
      textDocument: { uri: uriOf("src/main.ts") },
      position: { line: 2, character: 13 }, // greet in console.log(greet("y"), ...)
    })) as (Location | LocationLink)[] | Location;
    const first = Array.isArray(result) ? result[0]! : result;
    const uri = "targetUri" in first ? first.targetUri : first.uri;
    expect(uri).toBe(uriOf("src/lib.ts"));
    expect(existsSync(fileURLToPath(uri))).toBe(true);
    const range = "targetUri" in first ? first.targetSelectionRange : first.range;
    expect(range.start.line).toBe(0);
  }, 60_000);

  test("a definition inside the image (lib.d.ts) is not offered to the editor as a host path", async () => {
    const result = (await s.conn.sendRequest("textDocument/definition", {
      textDocument: { uri: uriOf("src/main.ts") },
      position: { line: 2, character: 34 }, // PI in Math.PI
    })) as (Location | LocationLink)[];
    // The server answered with the image's /usr/.../typescript/lib/lib.es5.d.ts; the proxy removed it (src/lsp/guard.ts).
    expect(result).toEqual([]);
    expect(s.stderr()).not.toMatch(/^error/m);
  }, 60_000);

  test("commands: the server's declared ones and its reference code lens (editor.action.showReferences) reach the editor", async () => {
    expect(declared).toContain("_typescript.organizeImports");
    expect(declared.every((c) => c.startsWith("_typescript.") || c.startsWith("typescript."))).toBe(true);
    await s.conn.sendNotification("workspace/didChangeConfiguration", { settings: { typescript: { referencesCodeLens: { enabled: true, showOnAllFunctions: true } } } });
    await s.conn.sendNotification("textDocument/didOpen", { textDocument: { uri: uriOf("src/lib.ts"), languageId: "typescript", version: 1, text: LIB } });
    const lenses = (await s.conn.sendRequest("textDocument/codeLens", { textDocument: { uri: uriOf("src/lib.ts") } })) as { range: unknown; data?: unknown }[];
    expect(lenses.length).toBeGreaterThan(0);
    const lens = (await s.conn.sendRequest("codeLens/resolve", lenses[0])) as { command?: { title: string; command: string; arguments: [string, unknown, Location[]] } };
    // greet is imported and called twice in main.ts: a real UI command, its URIs mapped to the host.
    expect(lens.command).toEqual({ title: expect.stringMatching(/^\d+ references$/), command: "editor.action.showReferences", arguments: [uriOf("src/lib.ts"), expect.any(Object), expect.any(Array)] });
    expect(lens.command!.arguments[2].length).toBeGreaterThanOrEqual(2);
    for (const l of lens.command!.arguments[2]) expect(l.uri).toBe(uriOf("src/main.ts"));
  }, 60_000);

  test("shutdown + exit end silo lsp with the server's exit code", async () => {
    await s.conn.sendRequest("shutdown");
    await s.conn.sendNotification("exit");
    s.proc.stdin!.end();
    expect(await s.exit).toBe(0);
    // stdout carried only LSP frames (vscode-jsonrpc would have reported anything else); stderr has no silo error.
    expect(s.stderr()).not.toMatch(/^error/m);
  }, 30_000);
});

/**
 * Install on first use: a registry entry whose server is NOT at its path in the image and whose `[lsp]
 * install` needs no network (npm --offline from tarballs packed from the image's own global packages: the
 * install sees nothing of the project). The first start installs into a captured layer; the second reuses it.
 */
describe("silo lsp: install on first use", () => {
  const PREFIX = "/opt/silo-test-tsls";

  async function initializeOnce(home: string, root: string): Promise<{ stderr: string; code: number | null }> {
    const s = startSession(home, root);
    s.conn.onRequest("workspace/configuration", (p: { items: unknown[] }) => p.items.map(() => null));
    s.conn.onRequest("client/registerCapability", () => null);
    s.conn.onRequest("window/workDoneProgress/create", () => null);
    const uri = pathToFileURL(root).href;
    const result = (await s.conn.sendRequest("initialize", { processId: process.pid, rootUri: uri, workspaceFolders: [{ uri, name: "p" }], capabilities: {} })) as {
      capabilities: { definitionProvider?: unknown };
      serverInfo?: { name?: string };
    };
    expect(result.capabilities.definitionProvider).toBeTruthy();
    await s.conn.sendNotification("initialized", {});
    await s.conn.sendRequest("shutdown");
    await s.conn.sendNotification("exit");
    s.proc.stdin!.end();
    const code = await s.exit;
    s.conn.dispose();
    return { stderr: s.stderr(), code };
  }

  test("the first start installs the server into a layer, the second reuses it", async () => {
    const home = makeHome();
    const root = tmp("silo-lsp-install-");
    writeFileSync(join(root, "silo.toml"), "");
    // npm tarballs (a package/ directory) of the image's own copies, installed offline under another prefix.
    const packAndInstall =
      "set -e; cd /tmp; for p in typescript typescript-language-server; do mkdir -p $p; cp -r /usr/local/lib/node_modules/$p $p/package; tar -czf $p.tgz -C $p package; done; " +
      `npm install --offline --ignore-scripts --no-audit --no-fund -g --prefix ${PREFIX} /tmp/typescript.tgz /tmp/typescript-language-server.tgz >&2`;
    // The registry entry as `silo registry update` would leave it, with a server the image does not have.
    const embedded = readFileSync(join(repoRoot, "registry/node.toml"), "utf8").replace(/\n\[lsp\][\s\S]*?(?=\n\[|$)/, "\n");
    mkdirSync(join(home, "registry/current"), { recursive: true });
    writeFileSync(
      join(home, "registry/current/node.toml"),
      `${embedded}\n[lsp]\ncommand = ["${PREFIX}/bin/typescript-language-server", "--stdio"]\n` +
        `install = ["sh", "-c", ${JSON.stringify(packAndInstall)}]\n`,
    );
    const install = await runSilo(["install", "node"], { home, cwd: root });
    expect({ code: install.exitCode, stderr: install.stderr }).toEqual({ code: 0, stderr: expect.any(String) });

    const first = await initializeOnce(home, root);
    expect(first.stderr).toContain("installing node's language server");
    expect(first.code).toBe(0);
    const layers = readdirSync(join(home, "builds/.lsp/node"));
    expect(layers.length).toBe(1);
    expect(existsSync(join(home, "builds/.lsp/node", layers[0]!, PREFIX.slice(1), "bin/typescript-language-server"))).toBe(true);

    const second = await initializeOnce(home, root);
    expect(second.stderr).not.toContain("installing");
    expect(second.code).toBe(0);
  }, 300_000);
});

describe("silo lsp: no network", () => {
  test("the language server's sandbox has no proxy and no route out, though `silo run` of the same tool has", async () => {
    const home = makeHome();
    const root = tmp("silo-lsp-net-");
    writeFileSync(join(root, "silo.toml"), "");
    // The same node entry, with a server command that first reports what network it was given.
    const report = "echo PROXY=${HTTPS_PROXY:-none} >&2; cat /proc/net/route >&2; exec typescript-language-server --stdio";
    const embedded = readFileSync(join(repoRoot, "registry/node.toml"), "utf8").replace(/\n\[lsp\][\s\S]*?(?=\n\[|$)/, "\n");
    mkdirSync(join(home, "registry/current"), { recursive: true });
    writeFileSync(join(home, "registry/current/node.toml"), `${embedded}\n[lsp]\ncommand = ["sh", "-c", ${JSON.stringify(report)}]\n`);
    const install = await runSilo(["install", "node"], { home, cwd: root });
    expect({ code: install.exitCode, stderr: install.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    // Reachable in a plain run: the registry's allowlist (registry.npmjs.org) gives node a proxy.
    const run = await runSilo(["run", "node", "-e", "console.log(process.env.HTTPS_PROXY ?? 'none')"], { home, cwd: root });
    expect({ code: run.exitCode, stderr: run.stderr }).toEqual({ code: 0, stderr: expect.any(String) }); // stderr shown on failure
    expect(run.stdout.trim()).not.toBe("none");

    const s = startSession(home, root);
    const uri = pathToFileURL(root).href;
    await s.conn.sendRequest("initialize", { processId: null, rootUri: uri, capabilities: {} });
    await s.conn.sendRequest("shutdown");
    await s.conn.sendNotification("exit");
    s.proc.stdin!.end();
    expect(await s.exit).toBe(0);
    const err = s.stderr();
    expect(err).toContain("PROXY=none");
    // /proc/net/route: the header line only, no interface with a route (loopback has none there).
    const routes = err.split("\n").filter((l) => /^\w+\s+[0-9A-F]{8}\s+[0-9A-F]{8}/.test(l));
    expect(routes).toEqual([]);
    expect(err).toContain("Iface");
  }, 300_000);
});
