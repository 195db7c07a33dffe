/**
 * THREATS.md invariant 3: widening needs trust of those exact bytes. `[network] caCertificates` makes every
 * TLS client in the sandbox trust a CA (and brings a host file in): a project file's entry applies only once
 * that file is trusted; untrusted or changed since, it is ignored with the usual warning.
 * An image is the attacker's too ("an image from a registry the user chose"): its bundle path may be a
 * symlink to a host file, which silo must not read into the generated bundle (the bundle is read beneath
 * the image's rootfs, core/beneath.ts).
 *
 * Positive controls first: the same project file, trusted, does make the sandbox trust the CA; and a plain
 * read of the image's bundle path on the host does reach the planted host file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixtureRegistry, makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";
import { makeCaAndCert } from "../network/_helpers.ts";

afterAll(cleanUp);

describe("[network] caCertificates and trust", () => {
  let home: string;
  const dir = tmp("silo-ca-sec-");
  const pki = makeCaAndCert(dir, ["localhost"]);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(pki.cert, "utf8"), key: readFileSync(pki.key, "utf8") },
    fetch: () => new Response("hello over tls"),
  });
  afterAll(() => void server.stop(true));
  const TOML = `[network]\ncaCertificates = [${JSON.stringify(pki.ca)}]\n`;
  // urllib through the proxy (NO_PROXY would send `localhost` around it), and what the sandbox was given.
  const probe = `import os, json, urllib.request
for k in ("no_proxy", "NO_PROXY"): os.environ.pop(k, None)
try:
    got = urllib.request.urlopen("https://localhost:${server.port}/", timeout=20).read().decode()
except Exception as e:
    got = "error: " + str(getattr(e, "reason", e))
binds = [l.split()[4] for l in open("/proc/self/mountinfo") if "ca-certificates.crt" in l.split()[4]]
print(json.dumps({"got": got, "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE"), "binds": binds}))
`;
  const run = async (cwd: string) => {
    const r = ok(await runSilo(["run", "python", "-c", probe], { home, cwd }));
    return { ...(JSON.parse(r.stdout) as { got: string; SSL_CERT_FILE: string | null; binds: string[] }), stderr: r.stderr };
  };

  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    // `localhost` is allowed by the trusted global file; caCertificates is the only thing the project adds.
    writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${fixtureRegistry}"\n[network.proxy]\nallow = ["localhost"]\n`);
  }, 300_000);

  test("positive control: a trusted project's caCertificates makes the sandbox trust the CA", async () => {
    const proj = makeProject(TOML);
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const r = await run(proj);
    expect(r.got).toBe("hello over tls");
    expect(r.SSL_CERT_FILE).toBe("/etc/ssl/certs/ca-certificates.crt");
    expect(r.binds).toEqual(["/etc/ssl/certs/ca-certificates.crt"]);
  }, 300_000);

  test("untrusted, the same caCertificates is ignored with the warning: nothing bound, the CA not trusted", async () => {
    const proj = makeProject(TOML);
    const r = await run(proj);
    expect(r.stderr).toContain(`${join(proj, "silo.toml")} is not trusted; ignoring network.caCertificates.`);
    expect(r.got).toContain("CERTIFICATE_VERIFY_FAILED");
    expect(r.SSL_CERT_FILE).toBeNull();
    expect(r.binds).toEqual([]);
  }, 300_000);

  test("added to a trusted file after `silo trust`, it is ignored until trusted again", async () => {
    const proj = makeProject("[env]\nA = \"1\"\n");
    ok(await runSilo(["trust"], { home, cwd: proj }));
    writeFileSync(join(proj, "silo.toml"), `[env]\nA = "1"\n${TOML}`);
    const r = await run(proj);
    expect(r.stderr).toContain("changed since you trusted it; ignoring network.caCertificates.");
    expect(r.got).toContain("CERTIFICATE_VERIFY_FAILED");
    expect(r.binds).toEqual([]);
  }, 300_000);

  test("an image whose bundle is a symlink to a host file: the host file never enters the generated bundle", async () => {
    const secret = join(dir, "host-secret.pem");
    // Shaped as a bundle, so a reader that followed the link would take it whole.
    writeFileSync(secret, `HOST-SECRET-MARKER\n${readFileSync(pki.ca, "utf8")}`);
    const digest = readdirSync(join(home, "rootfs")).find((f) => f.endsWith(".json") && readFileSync(join(home, "rootfs", f), "utf8").includes("python:3.11-slim"))!;
    const certs = join(home, "rootfs", digest.replace(/\.json$/, ""), "etc/ssl/certs");
    const bundle = join(certs, "ca-certificates.crt");
    // The rootfs's files are hard links shared with other homes: replace the entry, never write through it.
    chmodSync(certs, 0o755);
    rmSync(bundle);
    symlinkSync(secret, bundle);
    // Positive control: read on the host, the image's bundle path is the host file.
    expect(readFileSync(bundle, "utf8")).toContain("HOST-SECRET-MARKER");

    // Bundles made for this image before (a rootfs never changes under its digest; this test changed it).
    rmSync(join(home, "state", "ca"), { recursive: true, force: true });
    writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "${fixtureRegistry}"\n[network]\ncaCertificates = [${JSON.stringify(pki.ca)}]\n`);
    const proj = makeProject();
    const code = `import os, json
f = os.environ["SSL_CERT_FILE"]
print(json.dumps({"file": f, "text": open(f).read()}))
`;
    const r = JSON.parse(ok(await runSilo(["run", "python", "-c", code], { home, cwd: proj })).stdout) as { file: string; text: string };
    // No bundle inside the image: the generated file holds the configured CA alone, at silo's own path.
    expect(r.file).toBe("/run/silo/ca-certificates.crt");
    expect(r.text).not.toContain("HOST-SECRET-MARKER");
    expect(r.text.match(/BEGIN CERTIFICATE/g)?.length).toBe(1);
    for (const f of readdirSync(join(home, "state", "ca"))) expect(readFileSync(join(home, "state", "ca", f), "utf8")).not.toContain("HOST-SECRET-MARKER");
  }, 300_000);
});
