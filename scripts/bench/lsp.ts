/**
 * LSP proxy overhead: the same client talks to a server directly and through the proxy (a separate
 * process running src/lsp/proxy.ts, as `silo lsp` does, minus the sandbox), and we compare.
 *  - echo: a tiny LSP server in Bun that answers every request with its params, so the numbers are the
 *    proxy's own cost (framing, the URI rewrite both ways, one extra pipe hop each way);
 *  - typescript-language-server on the host (installed under /tmp/lspbench on first run), hover requests.
 * Goal: <= 1 ms added at the median.
 *
 * Modes (used by the benchmark itself): `bun scripts/bench/lsp.ts echo` and `... proxy <server argv>`.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame, FrameReader } from "../../src/lsp/framing.ts";
import { median } from "./_util.ts";

const SELF = import.meta.path;
const TSLS_PREFIX = process.env.SILO_BENCH_TSLS ?? "/tmp/lspbench";
const enc = new TextEncoder();
const dec = new TextDecoder();

// --- the two helper processes --------------------------------------------------------------------

async function echoServer() {
  const frames = new FrameReader();
  const out = Bun.stdout.writer();
  for await (const chunk of Bun.stdin.stream()) {
    for (const body of frames.push(chunk)) {
      const msg = JSON.parse(dec.decode(body));
      if (msg.method === "exit") process.exit(0);
      if (msg.id === undefined) continue;
      const result = msg.method === "initialize" ? { capabilities: { hoverProvider: true } } : (msg.params ?? null);
      out.write(encodeFrame(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result })));
    }
    await out.flush();
  }
}

async function proxyProcess(argv: string[], root: string): Promise<number> {
  const { proxyLsp } = await import("../../src/lsp/proxy.ts");
  const { createRewriter } = await import("../../src/lsp/rewrite.ts");
  const child = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const rw = createRewriter({ hostRoot: root, guestRoot: root }); // same paths: the server runs on the host here
  return proxyLsp({
    client: { input: Bun.stdin.stream(), output: Bun.stdout.writer() },
    server: { stdin: child.stdin, stdout: child.stdout, exited: child.exited, kill: (s) => child.kill(s) },
    rewrite: rw,
  });
}

// --- the client ------------------------------------------------------------------------------------

class Client {
  private proc: Bun.Subprocess<"pipe", "pipe", "inherit">;
  private frames = new FrameReader();
  private waiting = new Map<number, (v: unknown) => void>();
  private nextId = 1;

  constructor(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
    this.proc = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "inherit", ...opts });
    void this.read();
  }
  private async read() {
    for await (const chunk of this.proc.stdout) {
      for (const body of this.frames.push(chunk)) {
        const msg = JSON.parse(dec.decode(body));
        if (msg.id !== undefined && msg.method === undefined) this.waiting.get(msg.id)?.(msg.result);
        else if (msg.id !== undefined) this.send({ jsonrpc: "2.0", id: msg.id, result: null }); // server->client requests
      }
    }
  }
  private send(msg: unknown) {
    this.proc.stdin.write(encodeFrame(enc.encode(JSON.stringify(msg))));
    this.proc.stdin.flush();
  }
  request(method: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    const p = new Promise((r) => this.waiting.set(id, r));
    this.send({ jsonrpc: "2.0", id, method, params });
    return p.finally(() => this.waiting.delete(id));
  }
  notify(method: string, params: unknown) {
    this.send({ jsonrpc: "2.0", method, params });
  }
  async close() {
    await this.request("shutdown", null).catch(() => {});
    this.notify("exit", null);
    this.proc.stdin.end();
    await Promise.race([this.proc.exited, Bun.sleep(3000)]);
    this.proc.kill();
  }
}

/** Time `n` requests on each client, interleaved (A B A B ...) so machine-load drift hits both alike. */
async function timeInterleaved(clients: Record<string, Client>, n: number, method: string, params: () => unknown) {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
  for (let i = 0; i < n; i++)
    for (const [name, c] of Object.entries(clients)) {
      const t = performance.now();
      await c.request(method, params());
      out[name]!.push(performance.now() - t);
    }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, median(v)])) as Record<string, number>;
}

const ms = (x: number) => `${x.toFixed(3)} ms`;

function report(label: string, t: Record<string, number>) {
  const d = t.direct!, p = t.proxied!;
  console.log(`${label}: direct ${ms(d)}, proxied ${ms(p)}, added ${ms(p - d)} at the median (ratio ${(p / d).toFixed(2)})`);
}

function makeProject(): { root: string; file: string; text: string } {
  const root = mkdtempSync(join(tmpdir(), "silo-lspbench-"));
  mkdirSync(join(root, "src"));
  const text = `export interface Point { x: number; y: number }\nexport function norm(p: Point): number {\n  return Math.hypot(p.x, p.y);\n}\nconst n = norm({ x: 3, y: 4 });\n`;
  writeFileSync(join(root, "src/a.ts"), text);
  writeFileSync(join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, noEmit: true } }));
  return { root, file: join(root, "src/a.ts"), text };
}

async function benchEcho(root: string) {
  const server = [process.execPath, SELF, "echo"];
  const uri = `file://${root}/src/a.ts`;
  const hover = () => ({ textDocument: { uri }, position: { line: 4, character: 11 } });
  const bigText = `// ${uri}\n` + "const s = 'the quick brown fox jumps over the lazy dog';\n".repeat(70_000); // ~4 MB
  const big = () => ({ textDocument: { uri, languageId: "typescript", version: 1, text: bigText } });
  const mb = (enc.encode(bigText).length * 2) / 1e6; // there and back
  const clients = { direct: new Client(server), proxied: new Client([process.execPath, SELF, "proxy", root, ...server]) };
  for (const c of Object.values(clients)) await c.request("initialize", { processId: null, rootUri: `file://${root}`, capabilities: {} });
  await timeInterleaved(clients, 300, "textDocument/hover", hover); // warm-up
  report("lsp echo server, 3000 hover round trips", await timeInterleaved(clients, 3000, "textDocument/hover", hover));
  await timeInterleaved(clients, 3, "custom/big", big);
  const t = await timeInterleaved(clients, 15, "custom/big", big);
  const d = mb / (t.direct! / 1000), p = mb / (t.proxied! / 1000);
  console.log(`lsp echo server, 4 MB message there and back: direct ${d.toFixed(0)} MB/s, proxied ${p.toFixed(0)} MB/s (ratio ${(d / p).toFixed(2)})`);
  for (const c of Object.values(clients)) await c.close();
}

async function ensureTsls(): Promise<string | null> {
  const bin = join(TSLS_PREFIX, "node_modules/.bin/typescript-language-server");
  if (existsSync(bin)) return bin;
  if (!Bun.which("npm") || !Bun.which("node")) return null;
  console.log(`installing typescript-language-server into ${TSLS_PREFIX} (once)...`);
  const p = Bun.spawnSync(["npm", "install", "--silent", "--prefix", TSLS_PREFIX, "typescript", "typescript-language-server"], { stdout: "ignore", stderr: "inherit" });
  return p.exitCode === 0 && existsSync(bin) ? bin : null;
}

async function benchTsls(proj: ReturnType<typeof makeProject>) {
  const bin = await ensureTsls();
  if (!bin) {
    console.log("lsp typescript-language-server: skipped (node/npm missing or the install failed)");
    return;
  }
  const uri = `file://${proj.file}`;
  const hover = () => ({ textDocument: { uri }, position: { line: 4, character: 11 } });
  const clients = { direct: new Client([bin, "--stdio"]), proxied: new Client([process.execPath, SELF, "proxy", proj.root, bin, "--stdio"]) };
  for (const c of Object.values(clients)) {
    await c.request("initialize", { processId: null, rootUri: `file://${proj.root}`, workspaceFolders: [{ uri: `file://${proj.root}`, name: "p" }], capabilities: {} });
    c.notify("initialized", {});
    c.notify("textDocument/didOpen", { textDocument: { uri, languageId: "typescript", version: 1, text: proj.text } });
  }
  await timeInterleaved(clients, 50, "textDocument/hover", hover);
  report("lsp typescript-language-server, 500 hovers", await timeInterleaved(clients, 500, "textDocument/hover", hover));
  for (const c of Object.values(clients)) await c.close();
}

/**
 * The product path: the same server in the same sandbox, reached by a plain pipe (`silo run node
 * typescript-language-server --stdio`, paths as the sandbox sees them) and through `silo lsp node`.
 * Needs dist/silo and the fixture registry (scripts/fixtures/build.sh).
 */
async function benchSandbox(proj: ReturnType<typeof makeProject>) {
  const silo = join(import.meta.dir, "../../dist/silo");
  const registry = process.env.SILO_TEST_REGISTRY ?? "http://127.0.0.1:5000";
  const up = await fetch(`${registry}/v2/`).then((r) => r.ok, () => false);
  if (!existsSync(silo) || !up) {
    console.log(`lsp in the sandbox: skipped (${!existsSync(silo) ? "no dist/silo: bun run build" : `no fixture registry at ${registry}`})`);
    return;
  }
  const home = mkdtempSync(join(tmpdir(), "silo-lspbench-home-"));
  writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${registry}"\n`);
  writeFileSync(join(proj.root, "silo.toml"), "");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home };
  const inst = Bun.spawnSync([silo, "install", "node"], { cwd: proj.root, env, stdout: "ignore", stderr: "pipe" });
  if (inst.exitCode !== 0) throw new Error(`silo install node: ${inst.stderr.toString()}`);
  const spawnIn = (argv: string[]) => new Client(argv, { cwd: proj.root, env });
  const clients = {
    direct: spawnIn([silo, "run", "--shim", "typescript-language-server", "node", "--stdio"]),
    proxied: spawnIn([silo, "lsp", "node"]),
  };
  const roots = { direct: "/workspace", proxied: proj.root };
  for (const [name, c] of Object.entries(clients)) {
    const root = roots[name as keyof typeof roots];
    await c.request("initialize", { processId: null, rootUri: `file://${root}`, capabilities: {} });
    c.notify("initialized", {});
    c.notify("textDocument/didOpen", { textDocument: { uri: `file://${root}/src/a.ts`, languageId: "typescript", version: 1, text: proj.text } });
  }
  // Each client asks about its own spelling of the file.
  const out: Record<string, number[]> = { direct: [], proxied: [] };
  for (let i = 0; i < 550; i++)
    for (const [name, c] of Object.entries(clients)) {
      const root = roots[name as keyof typeof roots];
      const t = performance.now();
      await c.request("textDocument/hover", { textDocument: { uri: `file://${root}/src/a.ts` }, position: { line: 4, character: 11 } });
      if (i >= 50) out[name]!.push(performance.now() - t);
    }
  report("lsp in the bwrap sandbox, 500 typescript-language-server hovers (silo run pipe vs silo lsp)", { direct: median(out.direct!), proxied: median(out.proxied!) });
  for (const c of Object.values(clients)) await c.close();
}

export default async function bench(): Promise<void> {
  const proj = makeProject();
  await benchEcho(proj.root);
  await benchTsls(proj);
  await benchSandbox(proj);
}

if (import.meta.main) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === "echo") await echoServer();
  else if (mode === "proxy") process.exitCode = await proxyProcess(rest.slice(1), rest[0]!);
  else await bench();
}
