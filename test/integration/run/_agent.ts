// Servers for the agent end-to-end test, all on this machine's loopback (no internet in tests): a static
// npm registry (packument JSON + the tarball `npm pack` made), and git's smart HTTP protocol over HTTPS
// (`git http-backend` as a CGI behind Bun.serve with a certificate made here) that wants a token.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmp } from "../../helpers/silo.ts";

/**
 * The address the servers listen on: loopback, but not `localhost`/`127.0.0.1`, which silo's NO_PROXY
 * sends to the sandbox's own loopback. 127.0.0.2 goes through the proxy, which reaches it only when it
 * is listed exactly (a private address: THREATS.md invariant 7).
 */
export const SERVER_ADDR = "127.0.0.2";

/**
 * A real npm CLI package: `silo-agent` stands in for an AI agent's CLI (claude-code is one npm package
 * with a `bin`). It keeps state in ~/.silo-agent and runs git the way an agent does, as a child process.
 */
export const AGENT_JS = `#!/usr/bin/env node
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const state = path.join(require("node:os").homedir(), ".silo-agent");
const memory = path.join(state, "memory.txt");
const git = (...a) => execFileSync("git", a, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
  case "--version":
    console.log("silo-agent " + require("../package.json").version);
    break;
  case "remember":
    fs.mkdirSync(state, { recursive: true });
    fs.appendFileSync(memory, args.join(" ") + "\\n");
  // falls through
  case "recall":
    process.stdout.write(fs.existsSync(memory) ? fs.readFileSync(memory, "utf8") : "(nothing)\\n");
    break;
  case "commit":
    if (!fs.existsSync(".git")) git("init", "-q", "-b", "main");
    fs.writeFileSync("agent.txt", args.join(" ") + "\\n");
    git("add", "agent.txt");
    git("commit", "-q", "-m", args.join(" "));
    console.log(git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%s"));
    break;
  case "push":
    git("push", "-q", args[0], "HEAD:refs/heads/main");
    console.log("pushed");
    break;
  case "env":
    console.log(Object.keys(process.env).filter((k) => k.startsWith("GIT_")).sort().join(" "));
    console.log(git("config", "--list", "--show-origin") || "(no git config)");
    break;
  case "npm-view":
    console.log(execFileSync("npm", ["view", args[0], "version"], { encoding: "utf8" }).trim());
    break;
  default:
    console.error("usage: silo-agent --version|remember TEXT|recall|commit MSG|push URL|env|npm-view NAME");
    process.exit(2);
}
`;

/** `npm pack` of the agent package: the tarball's path, name and version. */
export function packAgent(): { tarball: string; name: string; version: string } {
  const dir = tmp("silo-agent-pkg-");
  const name = "silo-test-agent";
  const version = "1.0.0";
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version, description: "a CLI standing in for an agent", bin: { "silo-agent": "bin/agent.js" }, license: "MIT" }));
  mkdirSync(join(dir, "bin"));
  writeFileSync(join(dir, "bin/agent.js"), AGENT_JS, { mode: 0o755 });
  const out = tmp("silo-agent-packed-");
  const r = spawnSync("npm", ["pack", "--silent", "--pack-destination", out], { cwd: dir, encoding: "utf8", env: { ...process.env, npm_config_cache: join(out, ".npm") } });
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const tgz = readdirSync(out).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack wrote no tarball: ${r.stdout}`);
  return { tarball: join(out, tgz), name, version };
}

/** A static npm registry: GET /<name> is the packument, GET /<name>/-/<file>.tgz the tarball. Records paths. */
export function npmRegistry(pkg: { tarball: string; name: string; version: string }) {
  const bytes = readFileSync(pkg.tarball);
  const file = `${pkg.name}-${pkg.version}.tgz`;
  const requests: string[] = [];
  let base = "";
  const server = Bun.serve({
    hostname: SERVER_ADDR,
    port: 0,
    fetch(req): Response {
      const path = new URL(req.url).pathname;
      requests.push(`${req.method} ${path}`);
      if (path === `/${pkg.name}`) {
        const manifest = JSON.parse(spawnSync("tar", ["-xzOf", pkg.tarball, "package/package.json"], { encoding: "utf8" }).stdout);
        const dist = {
          tarball: `${base}/${pkg.name}/-/${file}`,
          shasum: createHash("sha1").update(bytes).digest("hex"),
          integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
        };
        return Response.json({
          name: pkg.name,
          "dist-tags": { latest: pkg.version },
          versions: { [pkg.version]: { ...manifest, _id: `${pkg.name}@${pkg.version}`, dist } },
        });
      }
      if (path === `/${pkg.name}/-/${file}`) return new Response(bytes, { headers: { "content-type": "application/octet-stream" } });
      return new Response("not found", { status: 404 });
    },
  });
  base = `http://${SERVER_ADDR}:${server.port}`;
  return { url: `${base}/`, requests, stop: () => server.stop(true) };
}

/** A self-signed certificate for an IP address (git checks it against GIT_SSL_CAINFO). */
export function makeIpCert(dir: string, ip: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = spawnSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
    "-subj", `/CN=${ip}`, "-addext", `subjectAltName=IP:${ip}`,
  ]);
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

/**
 * git over HTTPS: Bun.serve with TLS in front of `git http-backend` (CGI), serving the bare repositories
 * under `root`. Every request needs `Authorization: Basic` with user `x-access-token` and this token
 * (GitHub's form for a token); without it, 401 and a Basic challenge, as a real forge answers.
 */
export function gitHttpsServer(root: string, token: string, tls: { cert: string; key: string }) {
  const seen: { path: string; auth: "none" | "bad" | "ok" }[] = [];
  const expected = `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`;
  const server = Bun.serve({
    hostname: SERVER_ADDR,
    port: 0,
    tls: { cert: readFileSync(tls.cert, "utf8"), key: readFileSync(tls.key, "utf8") },
    async fetch(req) {
      const url = new URL(req.url);
      const auth = req.headers.get("authorization");
      seen.push({ path: url.pathname, auth: auth === null ? "none" : auth === expected ? "ok" : "bad" });
      if (auth !== expected) return new Response("authentication required\n", { status: 401, headers: { "WWW-Authenticate": 'Basic realm="silo-test"' } });
      const body = new Uint8Array(await req.arrayBuffer());
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers.get("content-type") ?? "",
        CONTENT_LENGTH: String(body.length),
        REMOTE_USER: "x-access-token",
        REMOTE_ADDR: "127.0.0.1",
        GIT_CONFIG_NOSYSTEM: "1",
      };
      const enc = req.headers.get("content-encoding");
      if (enc) env.HTTP_CONTENT_ENCODING = enc;
      const proto = req.headers.get("git-protocol");
      if (proto) env.GIT_PROTOCOL = proto;
      const cgi = spawnSync("git", ["http-backend"], { env, input: body, maxBuffer: 64 << 20 });
      const out = cgi.stdout;
      const sep = out.indexOf("\r\n\r\n");
      const headEnd = sep >= 0 ? sep : out.indexOf("\n\n");
      const head = out.subarray(0, headEnd).toString("latin1");
      const rest = out.subarray(headEnd + (sep >= 0 ? 4 : 2));
      let status = 200;
      const headers = new Headers();
      for (const line of head.split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number.parseInt(v, 10);
        else headers.append(k, v);
      }
      return new Response(rest, { status, headers });
    },
  });
  return { url: `https://${SERVER_ADDR}:${server.port}`, seen, stop: () => server.stop(true) };
}
