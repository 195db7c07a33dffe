/**
 * THREATS.md invariant 3 (widening needs trust of those exact bytes: "which command runs") for
 * `[overrides.<tool>.lsp]` (issue 13 item 3). The override runs another language server than the
 * registry's: its `install` goes into the shared per-image layer, its `command` is the one started, its
 * `env` is the server's. The positive control is the trusted file: the override's server starts (a real
 * typescript-language-server installed by the override under another prefix, answering a real LSP
 * initialize). The same bytes untrusted: command and install are ignored with the usual warning, the
 * registry's server answers, and nothing is installed.
 *
 * A real alternative server: no python language server (pylsp, ruff) is available offline here, so the
 * override installs node's server from tarballs packed in the install sandbox (no network) to its own
 * prefix and starts it through a wrapper that reports the environment it got.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { makeProject, runSilo, siloBin } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

const PREFIX = "/opt/silo-alt-tsls";
const PACK_AND_INSTALL =
  "set -e; cd /tmp; for p in typescript typescript-language-server; do mkdir -p $p; cp -r /usr/local/lib/node_modules/$p $p/package; tar -czf $p.tgz -C $p package; done; " +
  `npm install --offline --ignore-scripts --no-audit --no-fund -g --prefix ${PREFIX} /tmp/typescript.tgz /tmp/typescript-language-server.tgz >&2`;
// The override's server announces itself through a module its install wrote and its env preloads.
const MARK = `console.error("LSP-OVERRIDE-STARTED mark=" + process.env.LSP_MARK)`;
const INSTALL = `${PACK_AND_INSTALL}; printf '%s\\n' '${MARK}' > ${PREFIX}/mark.js`;
const override = (env: string) =>
  `[overrides.node.lsp]\ncommand = ["${PREFIX}/bin/typescript-language-server", "--stdio"]\n` +
  `install = ["sh", "-c", ${JSON.stringify(INSTALL)}]\nenv = ${env}\n`;
const OVERRIDE = override(`{ LSP_MARK = "from-silo-toml", NODE_OPTIONS = "--require ${PREFIX}/mark.js" }`);

let home: string;
beforeAll(async () => {
  home = await installedHome("node@22-slim");
}, 600_000);
afterAll(cleanUp);

/** `silo lsp node` in `cwd`: initialize, shutdown, exit; the server's name, silo's stderr, the exit code. */
async function initializeOnce(cwd: string): Promise<{ stderr: string; code: number | null }> {
  const proc = spawn(siloBin, ["lsp", "node"], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.listen();
  conn.onRequest("workspace/configuration", (p: { items: unknown[] }) => p.items.map(() => null));
  conn.onRequest("client/registerCapability", () => null);
  conn.onRequest("window/workDoneProgress/create", () => null);
  const uri = pathToFileURL(cwd).href;
  const init = (await conn.sendRequest("initialize", { processId: process.pid, rootUri: uri, workspaceFolders: [{ uri, name: "p" }], capabilities: {} })) as {
    capabilities: { definitionProvider?: unknown };
  };
  expect(init.capabilities.definitionProvider).toBeTruthy();
  await conn.sendNotification("initialized", {});
  await conn.sendRequest("shutdown");
  await conn.sendNotification("exit");
  proc.stdin!.end();
  const code = await exit;
  conn.dispose();
  return { stderr, code };
}

describe("[overrides.<tool>.lsp]", () => {
  test("trusted (the positive control): its install and its command run, with its env", async () => {
    const proj = makeProject(OVERRIDE, { "tsconfig.json": "{}" });
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const r = await initializeOnce(proj);
    expect(r.stderr).toContain("installing node's language server (once): sh -c");
    expect(r.stderr).toContain("LSP-OVERRIDE-STARTED mark=from-silo-toml");
    expect(r.code).toBe(0);
    const layers = readdirSync(join(home, "builds/.lsp/node"));
    expect(layers.length).toBe(1);
    expect(existsSync(join(home, "builds/.lsp/node", layers[0]!, PREFIX.slice(1), "bin/typescript-language-server"))).toBe(true);
  }, 300_000);

  test("untrusted: command and install are ignored with a warning; the registry's server runs", async () => {
    const before = existsSync(join(home, "builds/.lsp/node")) ? readdirSync(join(home, "builds/.lsp/node")) : [];
    // Another install command than the trusted project's: it would need a layer of its own.
    // (Its env still applies, as [env] does: a preload the image lacks is left out here.)
    const proj = makeProject(override(`{ LSP_MARK = "untrusted" }`).replace("--no-fund", "--no-fund --loglevel=error"), { "tsconfig.json": "{}" });
    const r = await initializeOnce(proj);
    expect(r.stderr).toContain("ignoring overrides.node.lsp.command, overrides.node.lsp.install");
    expect(r.stderr).not.toContain("LSP-OVERRIDE-STARTED");
    expect(r.stderr).not.toContain("installing");
    expect(r.code).toBe(0);
    const after = existsSync(join(home, "builds/.lsp/node")) ? readdirSync(join(home, "builds/.lsp/node")) : [];
    expect(after).toEqual(before);
  }, 300_000);

  test("an unknown key under it is a config error naming the file (125)", async () => {
    const proj = makeProject(`[overrides.node.lsp]\ncomand = ["pylsp"]\n`);
    const r = await runSilo(["lsp", "node"], { home, cwd: proj });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain(`${proj}/silo.toml:2:1: unknown key \`overrides.node.lsp.comand\` (did you mean \`overrides.node.lsp.command\`?)`);
  });
});
