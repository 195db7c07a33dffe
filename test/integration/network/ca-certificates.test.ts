// `[network] caCertificates` (issue 13, item 1) through dist/silo: a TLS server on the host's loopback whose
// certificate a CA made here signed (what a TLS-intercepting egress shows a client), reached through the
// egress proxy by python (urllib), pip, git (python image) and npm (node image). Without the CA each fails
// with a certificate error (the positive control); with it in the global silo.toml each succeeds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixtureRegistry, makeProject, runSilo, tmp, type SiloResult } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";
import { makeCaAndCert } from "./_helpers.ts";

afterAll(cleanUp);

const WHEEL = "tinypkg-0.1-py3-none-any.whl";
/** Clients skip the proxy for `localhost` (NO_PROXY): unset, it goes through the proxy as a remote host would. */
const NO_NO_PROXY_PY = `import os\nfor k in ("no_proxy", "NO_PROXY"): os.environ.pop(k, None)\n`;

describe("[network] caCertificates", () => {
  let home: string;
  let proj: string;
  const dir = tmp("silo-ca-");
  const pki = makeCaAndCert(dir, ["localhost"]);
  let wheel: Uint8Array = new Uint8Array();
  let port = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(pki.cert, "utf8"), key: readFileSync(pki.key, "utf8") },
    fetch(req): Response {
      const path = new URL(req.url).pathname;
      if (path === "/hello") return new Response("hello over tls");
      if (path === "/simple/tinypkg/") return new Response(`<html><body><a href="/files/${WHEEL}">${WHEEL}</a></body></html>`, { headers: { "content-type": "text/html" } });
      if (path === `/files/${WHEEL}`) return new Response(wheel);
      if (path === "/tinypkg")
        return Response.json({ name: "tinypkg", "dist-tags": { latest: "0.3.1" }, versions: { "0.3.1": { name: "tinypkg", version: "0.3.1", dist: { tarball: `https://localhost:${port}/t.tgz` } } } });
      return new Response("not here", { status: 404 });
    },
  });
  port = server.port!;
  const url = `https://localhost:${port}`;

  /** The global silo.toml: the fixture mirror, `localhost` allowed for every tool, and these lines. */
  const setGlobal = (network: string, more = "") =>
    writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${fixtureRegistry}"\n${more}[network]\n${network}[network.proxy]\nallow = ["localhost"]\n`);
  const withCa = (more = "") => setGlobal(`caCertificates = [${JSON.stringify(pki.ca)}]\n`, more);

  const pythonClients = `${NO_NO_PROXY_PY}import sys, json, subprocess, urllib.request
out = {}
try:
    out["urllib"] = urllib.request.urlopen("${url}/hello", timeout=20).read().decode()
except Exception as e:
    out["urllib"] = "error: " + str(getattr(e, "reason", e))
p = subprocess.run([sys.executable, "-m", "pip", "download", "tinypkg", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
    "--retries", "0", "--timeout", "20", "--index-url", "${url}/simple/", "-d", "/tmp/dl"], capture_output=True, text=True)
out["pip"] = [p.returncode, sorted(os.listdir("/tmp/dl")) if os.path.isdir("/tmp/dl") else [], p.stdout + p.stderr]
g = subprocess.run(["git", "ls-remote", "${url}/repo.git"], capture_output=True, text=True)
out["git"] = g.stderr.strip()
print(json.dumps(out))
`;
  const npmClient =
    `for (const k of ["no_proxy", "NO_PROXY"]) delete process.env[k];` +
    `const r = require("child_process").spawnSync("npm", ["view", "tinypkg", "version", "--registry", "${url}/", "--fetch-retries=0", "--prefer-online", "--cache", "/tmp/npm-cache"], { encoding: "utf8" });` +
    `console.log(JSON.stringify({ code: r.status, out: r.stdout.trim(), err: r.stderr }));`;

  const python = async () => JSON.parse(ok(await runSilo(["run", "python", "-c", pythonClients], { home, cwd: proj })).stdout) as { urllib: string; pip: [number, string[], string]; git: string };
  const npm = async () => JSON.parse(ok(await runSilo(["run", "node", "-e", npmClient], { home, cwd: proj })).stdout) as { code: number; out: string; err: string };

  beforeAll(async () => {
    home = await installedHome("python@3.11-slim", "node@22-slim");
    proj = makeProject("");
    // A wheel pip will take, made by the image's own python (no host python needed).
    const make = `import zipfile
with zipfile.ZipFile("/workspace/${WHEEL}", "w") as z:
    z.writestr("tinypkg/__init__.py", "")
    z.writestr("tinypkg-0.1.dist-info/METADATA", "Metadata-Version: 2.1\\nName: tinypkg\\nVersion: 0.1\\n")
    z.writestr("tinypkg-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    z.writestr("tinypkg-0.1.dist-info/RECORD", "")
`;
    ok(await runSilo(["run", "python", "-c", make], { home, cwd: proj }));
    wheel = new Uint8Array(readFileSync(join(proj, WHEEL)));
  }, 300_000);
  afterAll(() => void server.stop(true));

  test("the server answers on the host with the CA, and refuses a client without it", async () => {
    expect(await (await fetch(`${url}/hello`, { tls: { ca: readFileSync(pki.ca, "utf8") } })).text()).toBe("hello over tls");
    await expect(fetch(`${url}/hello`)).rejects.toThrow();
  });

  test("positive control: without caCertificates, urllib, pip, git and npm in the sandbox fail on the certificate", async () => {
    setGlobal("");
    const py = await python();
    expect(py.urllib).toContain("CERTIFICATE_VERIFY_FAILED");
    expect(py.pip[0]).not.toBe(0);
    expect(py.pip[2]).toContain("CERTIFICATE_VERIFY_FAILED");
    expect(py.git).toMatch(/SSL certificate problem|server certificate verification failed/);
    const js = await npm();
    expect(js.code).not.toBe(0);
    expect(js.err).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN/);
  }, 300_000);

  test("with the CA in the global silo.toml, urllib, pip, git and npm all reach the server", async () => {
    withCa();
    const py = await python();
    expect(py.urllib).toBe("hello over tls");
    expect([py.pip[0], py.pip[1]]).toEqual([0, [WHEEL]]);
    // TLS succeeded: the server's own 404 is what git reports.
    expect(py.git).not.toContain("SSL");
    expect(py.git).toContain("not found");
    const js = await npm();
    expect([js.code, js.out]).toEqual([0, "0.3.1"]);
  }, 300_000);

  test("the variables name the bundle, which is the image's plus the CA, bound read-only; [env] wins; the file is reused", async () => {
    withCa(`[env]\nPIP_CERT = "/workspace/mine.pem"\n`);
    const code = `import json, os, ssl
names = ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "CARGO_HTTP_CAINFO"]
text = open("/etc/ssl/certs/ca-certificates.crt").read()
ro = [l.split()[4] for l in open("/proc/self/mountinfo") if l.split()[4] == "/etc/ssl/certs/ca-certificates.crt" and "ro" in l.split()[5].split(",")]
try:
    open("/etc/ssl/certs/ca-certificates.crt", "a").close(); w = "writable"
except OSError as e:
    w = type(e).__name__
print(json.dumps({"env": {n: os.environ.get(n) for n in names}, "certs": text.count("BEGIN CERTIFICATE"), "ca": ${JSON.stringify(readFileSync(pki.ca, "utf8").split("\n")[1])} in text, "ro": ro, "write": w}))
`;
    const first = JSON.parse(ok(await runSilo(["run", "python", "-c", code], { home, cwd: proj })).stdout);
    const bundle = "/etc/ssl/certs/ca-certificates.crt";
    expect(first.env).toEqual({
      SSL_CERT_FILE: bundle, NODE_EXTRA_CA_CERTS: bundle, REQUESTS_CA_BUNDLE: bundle, PIP_CERT: "/workspace/mine.pem",
      CURL_CA_BUNDLE: bundle, GIT_SSL_CAINFO: bundle, CARGO_HTTP_CAINFO: bundle,
    });
    expect(first.certs).toBeGreaterThan(100); // the image's own CAs are still there
    expect(first.ca).toBe(true);
    expect(first.ro).toEqual([bundle]);
    expect(first.write).toBe("OSError");
    // One generated bundle per image (python, node) and its marker; a second run writes nothing.
    const caDir = join(home, "state", "ca");
    const before = readdirSync(caDir).sort().map((f) => `${f} ${statSync(join(caDir, f)).mtimeMs}`);
    expect(before.filter((f) => f.includes(".pem ")).length).toBe(2);
    ok(await runSilo(["run", "python", "-c", "pass"], { home, cwd: proj }));
    expect(readdirSync(caDir).sort().map((f) => `${f} ${statSync(join(caDir, f)).mtimeMs}`)).toEqual(before);
  }, 300_000);

  test("an image without a bundle (busybox) gets one holding just the CA, at the Debian path", async () => {
    withCa();
    ok(await runSilo(["install", "--quiet", "bb", "--image", "docker.io/library/busybox:latest"], { home }));
    ok(await runSilo(["shim", "add", "bb", "sh"], { home }));
    const r = ok(await runSilo(["run", "--shim", "sh", "bb", "-c", 'echo "$SSL_CERT_FILE $NODE_EXTRA_CA_CERTS"; grep -c "BEGIN CERTIFICATE" "$SSL_CERT_FILE"'], { home, cwd: proj }));
    expect(r.stdout.trim().split("\n")).toEqual(["/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt", "1"]);
  }, 300_000);

  test("a bad entry is a one-line error naming the file and the config line; nothing runs", async () => {
    const cases: [string, string][] = [
      [join(dir, "missing.pem"), "does not exist"],
      [pki.key, "holds no PEM CERTIFICATE block"],
      [dir, "is not a regular file"],
    ];
    const der = join(dir, "ca.der");
    Bun.spawnSync(["openssl", "x509", "-in", pki.ca, "-outform", "der", "-out", der]);
    cases.push([der, "is DER, not PEM"]);
    for (const [file, why] of cases) {
      setGlobal(`caCertificates = [${JSON.stringify(pki.ca)},\n  ${JSON.stringify(file)}]\n`);
      const r: SiloResult = await runSilo(["run", "python", "-c", "print('ran')"], { home, cwd: proj });
      expect(r.exitCode).toBe(125);
      expect(r.stdout).toBe("");
      expect(r.stderr.split("\n")[0]).toContain(`${join(home, "silo.toml")}:5: [network] caCertificates: ${file} ${why}`);
      expect(r.stderr).not.toContain("    at ");
    }
    setGlobal(`caCertificates = ["ca.pem"]\n`);
    const rel = await runSilo(["run", "python", "-c", "print('ran')"], { home, cwd: proj });
    expect(rel.exitCode).toBe(125);
    expect(rel.stderr).toContain("silo.toml:4:1: network.caCertificates[0]: `ca.pem` is not an absolute path (or ~/path)");
  }, 300_000);

  test("silo doctor names a host CA the images lack and prints the line to add; once added, it no longer does", async () => {
    setGlobal("");
    const env = { NODE_EXTRA_CA_CERTS: pki.ca };
    const before = ok(await runSilo(["doctor"], { home, env }));
    const lines = before.stdout.split("\n");
    const at = lines.findIndex((l) => l.startsWith("ca "));
    expect(lines[at]).toContain("that the images of bb, node, python do not");
    expect(lines[at + 1]).toContain(pki.ca);
    expect(before.stdout).toContain(`fix: in the [network] table of ${join(home, "silo.toml")}, set:`);
    const fix = lines.find((l) => l.trim().startsWith("caCertificates = ["))!.trim();
    expect(fix).toContain(JSON.stringify(pki.ca));
    // The printed line, as printed, is valid configuration that clears the finding.
    setGlobal(`${fix}\n`);
    const after = ok(await runSilo(["doctor"], { home, env }));
    expect(after.stdout.split("\n").filter((l) => l.startsWith("ca ") || l.startsWith("             (")).join("\n")).not.toContain(pki.ca);
  }, 300_000);
});
