// Shared pieces of the network integration tests: certificates, namespaces the tests create, servers on
// loopback, and a proxy running in its own process (so a test can kill it).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { NetworkSpec } from "../../../src/runner/spec.ts";

const here = import.meta.dir;

export interface Cmd {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string[], opts: { stdin?: string } = {}): Promise<Cmd> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin) });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** A self-signed certificate for the given names (SANs), made with openssl. */
export function makeCert(dir: string, names: string[]): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = spawnSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
    "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
  ]);
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

/** A network namespace with loopback only, running the sandbox relays for `spec`. */
export interface Namespace {
  pid: number;
  /** Run a command inside the namespace (network only; the filesystem is the host's). */
  exec(cmd: string[], opts?: { stdin?: string }): Promise<Cmd>;
  close(): Promise<void>;
}

/** argv that runs `cmd` in the user + network namespace of `pid` (works for root and unprivileged users). */
export const inNamespace = (pid: number, cmd: string[]) => ["nsenter", "-t", String(pid), "-U", "-n", "--preserve-credentials", "--", ...cmd];

export async function startNamespace(spec: NetworkSpec): Promise<Namespace> {
  const proc: Subprocess<"pipe", "pipe", "pipe"> = Bun.spawn(
    ["unshare", "--user", "--map-root-user", "--net", "--", process.execPath, join(here, "_ns.ts"), JSON.stringify(spec)],
    { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  const line = new TextDecoder().decode(value ?? new Uint8Array());
  if (!line.startsWith("ready")) {
    proc.kill();
    throw new Error(`namespace helper failed: ${line} ${await new Response(proc.stderr).text()}`);
  }
  return {
    pid: proc.pid,
    exec: (cmd, opts) => run(inNamespace(proc.pid, cmd), opts),
    async close() {
      proc.stdin.end();
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}

/** The egress proxy in its own process, so that a test can kill it. Resolves once it listens. */
export async function startProxyProcess(opts: { socketPath: string; allow: string[]; hosts: Record<string, string[]> }) {
  const proc = Bun.spawn([process.execPath, join(here, "_proxy.ts"), JSON.stringify(opts)], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value ?? new Uint8Array()).startsWith("ready")) throw new Error("proxy process failed to start");
  return proc;
}

/** An HTTP server on loopback that says who it is. */
export function helloServer(name: string, tls?: { cert: string; key: string }): { port: number; stop(force?: boolean): void } {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: tls ? { cert: Bun.file(tls.cert), key: Bun.file(tls.key) } : undefined,
    fetch: (req) => new Response(`${name} ${new URL(req.url).pathname}`),
  });
  return { port: server.port!, stop: (force) => void server.stop(force) };
}

/** Python-free raw clients: a one-line bun script, so they ignore every proxy variable. */
export const rawTcp = (host: string, port: number) => [
  process.execPath, "-e",
  `const net=require("node:net");const s=net.connect(${port},${JSON.stringify(host)});` +
    `s.on("connect",()=>{console.log("CONNECTED");process.exit(0)});s.on("error",e=>{console.log("ERR "+e.code);process.exit(1)});` +
    `setTimeout(()=>{console.log("TIMEOUT");process.exit(1)},3000)`,
];

/**
 * A CA and a server certificate it signed for `names` (SANs), made with openssl: what a TLS-intercepting
 * proxy's CA and the certificates it mints look like to a client.
 */
export function makeCaAndCert(dir: string, names: string[]): { ca: string; cert: string; key: string } {
  const ca = join(dir, "ca.pem");
  const caKey = join(dir, "ca-key.pem");
  const csr = join(dir, "server.csr");
  const cert = join(dir, "server.pem");
  const key = join(dir, "server-key.pem");
  const ext = join(dir, "server.ext");
  writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const args of [
    ["req", "-x509", ...ec, "-keyout", caKey, "-out", ca, "-days", "2", "-subj", "/CN=silo test intercepting CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ["req", ...ec, "-keyout", key, "-out", csr, "-subj", `/CN=${names[0]}`],
    ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext],
  ]) {
    const r = spawnSync("openssl", args);
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  }
  return { ca, cert, key };
}
