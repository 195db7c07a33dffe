// The bearer-token flow end to end against the real docker-registry: a second instance of it, configured
// for token auth over the fixture storage (read-only), with the token realm served by this test (JWTs
// signed with a throwaway key whose certificate the registry trusts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, randomUUID, sign } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pullImage } from "../../../src/image/pull.ts";
import { tmp } from "../../helpers/silo.ts";
import { freshHome, removeHomes } from "./_registry.ts";

const STORAGE = join(process.env.SILO_FIXTURE_CACHE || "/var/cache/silo-fixtures", "registry", "storage");
const SERVICE = "silo-test-registry";
const ISSUER = "silo-test-issuer";
const USER = { username: "silo", password: "s3cret" };
const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

const dir = tmp("silo-token-registry-");
let registry: ReturnType<typeof Bun.spawn> | undefined;
let tokenServer: ReturnType<typeof Bun.serve> | undefined;
let registryUrl = "";
const issued: { scope: string | null; user: string | null }[] = [];

async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

beforeAll(async () => {
  const ssl = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=silo-test-token-issuer"]);
  if (ssl.exitCode !== 0) throw new Error(`openssl: ${ssl.stderr}`);
  const key = createPrivateKey(readFileSync(join(dir, "key.pem")));
  const certDer = readFileSync(join(dir, "cert.pem"), "utf8").replace(/-----[^-]+-----|\s/g, "");

  tokenServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      const auth = req.headers.get("authorization");
      const user = auth?.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString() : null;
      issued.push({ scope: url.searchParams.get("scope"), user });
      if (user !== `${USER.username}:${USER.password}`) return new Response("bad credentials", { status: 401 });
      const [type, name, actions] = (url.searchParams.get("scope") ?? "").split(":");
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [certDer] }));
      const claims = b64url(
        JSON.stringify({ iss: ISSUER, sub: USER.username, aud: url.searchParams.get("service"), exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access: type ? [{ type, name, actions: actions!.split(",") }] : [] }),
      );
      const sig = b64url(sign("RSA-SHA256", Buffer.from(`${header}.${claims}`), key));
      return Response.json({ token: `${header}.${claims}.${sig}`, expires_in: 300 });
    },
  });

  const port = await freePort();
  registryUrl = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "config.yml"),
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${STORAGE}
  maintenance:
    readonly:
      enabled: true
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
auth:
  token:
    realm: http://127.0.0.1:${tokenServer.port}/token
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${join(dir, "cert.pem")}
`,
  );
  registry = Bun.spawn(["docker-registry", "serve", join(dir, "config.yml")], { stdout: "ignore", stderr: "pipe" });
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${registryUrl}/v2/`).catch(() => null);
    if (r) return;
    await Bun.sleep(100);
  }
  throw new Error(`the token-auth registry did not start: ${await new Response(registry.stderr as ReadableStream).text()}`);
});

afterAll(() => {
  registry?.kill();
  tokenServer?.stop(true);
  removeHomes();
});

describe("docker-registry with token auth", () => {
  test("it refuses anonymous requests with a Bearer challenge (control)", async () => {
    const r = await fetch(`${registryUrl}/v2/library/busybox/manifests/latest`);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain(`Bearer realm="http://127.0.0.1:${tokenServer!.port}/token",service="${SERVICE}"`);
  });

  test("silo gets a token with the credentials from Docker's config.json and pulls", async () => {
    const cfg = join(dir, "docker-config.json");
    writeFileSync(cfg, JSON.stringify({ auths: { [registryUrl.replace("http://", "")]: { auth: Buffer.from(`${USER.username}:${USER.password}`).toString("base64") } } }));
    issued.length = 0;
    const home = freshHome();
    const r = await pullImage(`${registryUrl.replace("http://", "")}/library/busybox:latest`, { home, quiet: true, dockerConfig: cfg });
    expect(readFileSync(join(r.rootfs, "etc/passwd"), "utf8")).toContain("root:x:0:0");
    expect(issued).toEqual([{ scope: "repository:library/busybox:pull", user: "silo:s3cret" }]);
  });

  test("without credentials the token service says no, and silo says why", async () => {
    let err: (Error & { hint?: string }) | undefined;
    try {
      await pullImage(`${registryUrl.replace("http://", "")}/library/busybox:latest`, { home: freshHome(), quiet: true, dockerConfig: join(dir, "none.json") });
    } catch (e) {
      err = e as Error & { hint?: string };
    }
    expect(err?.message).toContain("401 unauthorized");
    expect(err?.hint).toContain("docker login");
  });
});
