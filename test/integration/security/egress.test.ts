// THREATS.md invariant 7: egress is the allowlist, by name and by address. The proxy checks the destination
// it actually connects to (IP literal, Host header, absolute URI, TLS server name) and the port rules.
// Every attack is first shown to reach its target (directly, or through the proxy with a policy that opens
// it), then refused: on the proxy's own socket, and through dist/silo with python in a sandbox speaking raw
// sockets to the proxy relay (127.0.0.1:3128). Every target is a service on this machine's loopback.
//   1. hostPorts: hostAccess opens only the listed host ports, through the proxy as through the bridge.
//   2. Host: a plain-HTTP request reaches upstream with the Host of the checked target, not the client's.
//   3. IP literals: an address is reached only when listed (in any spelling the resolver reads); a deny
//      entry for a name is not bypassed by its address; a tunnel to an address carries no refused name.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { startEgressProxy, type EgressProxy, type EgressProxyOptions } from "../../../src/net/proxy.ts";
import { removeTree } from "../../../src/core/fs.ts";
import { makeHome, makeProject, runSilo, tmp, type SiloResult } from "../../helpers/silo.ts";
import { makeCert } from "../network/_helpers.ts";

/** A web server on loopback that serves one site, or "EVIL" when asked for evil.example.com (virtual hosting). */
function site(name: string) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const host = req.headers.get("host") ?? "";
      return new Response(`${host.startsWith("evil.example.com") ? "EVIL" : name} host=${host} path=${new URL(req.url).pathname}`);
    },
  });
  return { port: server.port!, stop: () => void server.stop(true) };
}

type Where = { unix: string } | { port: number; host?: string };

/** Send `request` on a fresh connection and read until the other side closes. */
function exchange(where: Where, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: NetSocket = "unix" in where ? netConnect(where.unix) : netConnect(where.port, where.host ?? "127.0.0.1");
    let got = "";
    s.on("connect", () => s.write(request));
    s.on("data", (d) => (got += d.toString("latin1")));
    s.on("close", () => resolve(got));
    s.on("error", reject);
    s.setTimeout(15000, () => s.destroy(new Error(`no answer to ${JSON.stringify(request.split("\r\n")[0])}`)));
  });
}

interface Answer {
  status: string;
  /** The proxy's machine-readable refusal header. */
  denied: string | null;
  body: string;
}

function parse(raw: string): Answer {
  const [head = "", ...rest] = raw.split("\r\n\r\n");
  const lines = head.split("\r\n");
  const denied = lines.find((l) => l.toLowerCase().startsWith("x-silo-denied:"));
  return { status: lines[0]!.split(" ")[1] ?? "", denied: denied ? denied.slice(denied.indexOf(":") + 1).trim() : null, body: rest.join("\r\n\r\n") };
}

/** A plain-HTTP request through the proxy, with the Host header the client chooses. */
async function get(proxy: Where, url: string, host = new URL(url).host): Promise<Answer> {
  return parse(await exchange(proxy, `GET ${url} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
}

/** CONNECT through the proxy, then (when the tunnel opens) a plain HTTP/1.0 request inside it. */
function tunnel(proxy: Where, target: string, path = "/tunnel"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s: NetSocket = "unix" in proxy ? netConnect(proxy.unix) : netConnect(proxy.port, "127.0.0.1");
    let got = "";
    let inside = false;
    s.on("connect", () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (!inside && got.startsWith("HTTP/1.1 200") && got.includes("\r\n\r\n")) {
        inside = true;
        got = "";
        s.write(`GET ${path} HTTP/1.0\r\nHost: tunnel\r\n\r\n`);
      }
    });
    s.on("close", () => resolve(inside ? { status: "200", denied: null, body: parse(got).body } : parse(got)));
    s.on("error", reject);
    s.setTimeout(15000, () => s.destroy(new Error(`no answer to CONNECT ${target}`)));
  });
}

/** CONNECT, then TLS with `servername` (none when null); resolves with the body or rejects. */
async function tlsTunnel(proxy: string, target: string, servername: string | null, ca: string): Promise<string> {
  const s = netConnect(proxy);
  await new Promise<void>((r, j) => s.once("connect", () => r()).once("error", j));
  s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const head = await new Promise<string>((r) => s.once("data", (d) => r(d.toString("latin1"))));
  if (!head.startsWith("HTTP/1.1 200")) throw new Error(head);
  return tlsGet({ socket: s }, servername, ca);
}

function tlsGet(conn: { socket: NetSocket } | { port: number }, servername: string | null, ca: string): Promise<string> {
  const tls = tlsConnect({
    ...("socket" in conn ? { socket: conn.socket } : { host: "127.0.0.1", port: conn.port }),
    ...(servername === null ? {} : { servername }),
    ca,
    checkServerIdentity: () => undefined, // the server's name is not what is under test here
  });
  return new Promise((resolve, reject) => {
    let body = "";
    tls.on("secureConnect", () => tls.write(`GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    tls.on("data", (d) => (body += d.toString()));
    tls.on("error", reject);
    tls.on("close", () => (body.includes("\r\n\r\n") ? resolve(body.slice(body.indexOf("\r\n\r\n") + 4)) : reject(new Error(`closed: ${JSON.stringify(body)}`))));
  });
}

const loopbackNames: Record<string, string[]> = { localhost: ["127.0.0.1"], "loop.test": ["127.0.0.1"], "allowed.test": ["127.0.0.1"], "denied.test": ["127.0.0.1"] };

describe("egress on the proxy's socket (invariant 7)", () => {
  const dir = tmp("silo-egress-");
  const a = site("A");
  const b = site("B");
  const cert = makeCert(dir, ["allowed.test", "denied.test", "other.test"]);
  const secure = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: Bun.file(cert.cert), key: Bun.file(cert.key) }, fetch: () => new Response("secure") });
  let ca = "";
  const proxies: EgressProxy[] = [];
  let n = 0;
  async function proxy(o: Partial<EgressProxyOptions>): Promise<Where> {
    const p = await startEgressProxy({ socketPath: join(dir, `p${n++}.sock`), allow: [], deny: [], hostAccess: false, tool: "python", lookup: async (h) => loopbackNames[h] ?? [], ...o });
    proxies.push(p);
    return { unix: p.socketPath };
  }
  beforeAll(async () => {
    ca = await Bun.file(cert.cert).text();
  });
  afterAll(async () => {
    for (const p of proxies) await p.close();
    a.stop();
    b.stop();
    secure.stop(true);
  });

  test("1. control: the host's service on port B answers directly, and through hostAccess when no hostPorts are listed", async () => {
    expect(parse(await exchange({ port: b.port }, `GET /direct HTTP/1.0\r\nHost: x\r\n\r\n`)).body).toBe("B host=x path=/direct");
    const open = await proxy({ hostAccess: true, allow: ["*"] });
    expect(await tunnel(open, `host.silo.internal:${b.port}`)).toEqual({ status: "200", denied: null, body: "B host=tunnel path=/tunnel" });
    expect((await get(open, `http://host.silo.internal:${b.port}/abs`)).body).toBe(`B host=host.silo.internal:${b.port} path=/abs`);
    expect((await tunnel(open, `loop.test:${b.port}`)).status).toBe("200");
  });

  test("1. with hostPorts = [A], port B is refused through the proxy: CONNECT, absolute URI, a name resolving to the host", async () => {
    const p = await proxy({ hostAccess: true, hostPorts: [a.port], allow: ["*"] });
    expect((await tunnel(p, `host.silo.internal:${a.port}`)).body).toBe("A host=tunnel path=/tunnel");
    expect((await get(p, `http://host.silo.internal:${a.port}/ok`)).body).toBe(`A host=host.silo.internal:${a.port} path=/ok`);
    const refused = await tunnel(p, `host.silo.internal:${b.port}`);
    expect(refused).toMatchObject({ status: "403", denied: "host.silo.internal" });
    expect(refused.body).toContain(`port ${b.port}: hostAccess opens only the host port ${a.port} to python (hostPorts)`);
    expect(await get(p, `http://host.silo.internal:${b.port}/`)).toMatchObject({ status: "403", denied: "host.silo.internal" });
    expect(await tunnel(p, `loop.test:${b.port}`)).toMatchObject({ status: "403", denied: "loop.test" });
    expect(await get(p, `http://loop.test:${b.port}/`)).toMatchObject({ status: "403", denied: "loop.test" });
  });

  test("2. control: the server picks the site by Host, so a request for one site with another Host reaches the other", async () => {
    expect(parse(await exchange({ port: a.port }, `GET /a HTTP/1.0\r\nHost: evil.example.com\r\n\r\n`)).body).toBe("EVIL host=evil.example.com path=/a");
  });

  test("2. through the proxy the upstream gets the Host of the checked target, on every request of a kept-alive connection", async () => {
    const p = await proxy({ allow: ["localhost"] });
    expect((await get(p, `http://localhost:${a.port}/a`, "evil.example.com")).body).toBe(`A host=localhost:${a.port} path=/a`);
    // Two requests on one connection, both with a forged Host.
    const two = await exchange(
      p,
      `GET http://localhost:${a.port}/one HTTP/1.1\r\nHost: evil.example.com\r\n\r\n` +
        `GET http://localhost:${a.port}/two HTTP/1.1\r\nHost: evil.example.com:80\r\nConnection: close\r\n\r\n`,
    );
    expect(two).toContain(`A host=localhost:${a.port} path=/one`);
    expect(two).toContain(`A host=localhost:${a.port} path=/two`);
    expect(two).not.toContain("EVIL");
    // Origin-form (no target but the Host header) is not proxied at all.
    const origin = parse(await exchange(p, `GET /a HTTP/1.1\r\nHost: evil.example.com\r\nConnection: close\r\n\r\n`));
    expect(origin.status).toBe("400");
    expect(origin.body).not.toContain("EVIL");
  });

  test("3. control: with the address listed, CONNECT and absolute URIs reach it in every spelling", async () => {
    const p = await proxy({ allow: ["127.0.0.1"] });
    for (const host of ["127.0.0.1", "2130706433", "0x7f.1", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]"])
      expect([host, (await tunnel(p, `${host}:${a.port}`)).body]).toEqual([host, "A host=tunnel path=/tunnel"]);
    expect((await get(p, `http://2130706433:${a.port}/x`)).body).toBe(`A host=127.0.0.1:${a.port} path=/x`);
  });

  test("3. under * with the name denied (and hostAccess on), its address is refused in every spelling", async () => {
    const p = await proxy({ allow: ["*"], deny: ["localhost"], hostAccess: true });
    expect(await tunnel(p, `localhost:${a.port}`)).toMatchObject({ status: "403", denied: "localhost" });
    for (const host of ["127.0.0.1", "2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001", "127.0.0.1.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"]) {
      const r = await tunnel(p, `${host}:${a.port}`);
      expect([host, r.status, r.denied]).toEqual([host, "403", "127.0.0.1"]);
      expect(r.body).toContain("silo blocked 127.0.0.1: it is not on the network allowlist of python");
    }
    for (const host of ["127.0.0.1", "2130706433", "0x7f.0.0.1", "[::ffff:7f00:1]"])
      expect([host, await get(p, `http://${host}:${a.port}/`)]).toEqual([host, expect.objectContaining({ status: "403", denied: "127.0.0.1" })]);
    // A host that ends in a number but is no address is not handed to the resolver.
    expect(await tunnel(p, `1.2.3.4.5:${a.port}`)).toMatchObject({ status: "403", denied: "1.2.3.4.5" });
  });

  test("3. an address (or range) in deny also refuses every name that resolves into it", async () => {
    const open = await proxy({ allow: ["*"], hostAccess: true });
    expect((await tunnel(open, `loop.test:${a.port}`)).status).toBe("200");
    const p = await proxy({ allow: ["*"], hostAccess: true, deny: ["127.0.0.0/8"] });
    expect(await tunnel(p, `loop.test:${a.port}`)).toMatchObject({ status: "403", denied: "loop.test" });
    expect(await get(p, `http://loop.test:${a.port}/`)).toMatchObject({ status: "403", denied: "loop.test" });
  });

  test("3. a tunnel to a listed address: a TLS server name must pass the name rules", async () => {
    // Control: the server answers whatever name is asked for.
    expect(await tlsGet({ port: secure.port! }, "denied.test", ca)).toBe("secure");
    const p = (await proxy({ allow: ["127.0.0.1", "allowed.test"], deny: ["denied.test"] })) as { unix: string };
    const target = `127.0.0.1:${secure.port}`;
    expect(await tlsTunnel(p.unix, target, "allowed.test", ca)).toBe("secure");
    expect(await tlsTunnel(p.unix, target, null, ca)).toBe("secure"); // no server name: the address alone decides
    await expect(tlsTunnel(p.unix, target, "denied.test", ca)).rejects.toThrow();
    await expect(tlsTunnel(p.unix, target, "other.test", ca)).rejects.toThrow();
  });
});

// The same attacks from inside a sandbox: python speaks raw sockets to the proxy relay.
const PROBE = String.raw`
import json, socket, sys

def read_all(s, data=b""):
    while True:
        d = s.recv(65536)
        if not d: return data
        data += d

def answer(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    denied = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("x-silo-denied:")), None)
    status = lines[0].split(" ")[1] if " " in lines[0] else lines[0]
    return [status, denied, body.decode("latin-1") if status == "200" else None]

def proxy():
    return socket.create_connection(("127.0.0.1", 3128), timeout=15)

out = []
for op in json.loads(sys.argv[1]):
    kind = op[0]
    try:
        if kind == "get":
            s = proxy()
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (op[1], op[2])).encode())
            out.append(answer(read_all(s)))
        elif kind == "tunnel":
            s = proxy()
            s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (op[1], op[1])).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                d = s.recv(4096)
                if not d: break
                head += d
            if head.startswith(b"HTTP/1.1 200"):
                s.sendall(b"GET /tunnel HTTP/1.0\r\nHost: tunnel\r\n\r\n")
                out.append(["200", None, answer(read_all(s))[2]])
            else:
                out.append(answer(read_all(s, head)))
        elif kind == "direct":
            s = socket.create_connection((op[1], op[2]), timeout=5)
            s.sendall(b"GET /direct HTTP/1.0\r\nHost: direct\r\n\r\n")
            out.append(answer(read_all(s)))
    except Exception as e:
        out.append(["error", type(e).__name__, None])
print(json.dumps(out))
`;

describe("egress through silo run (invariant 7)", () => {
  let home = "";
  const a = site("A");
  const b = site("B");
  const ok = (r: SiloResult) => {
    if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
    return r;
  };
  /** Run the probe in a trusted project with this silo.toml; the list of [status, X-Silo-Denied, body]. */
  async function probe(toml: string, ops: unknown[][]): Promise<(string | null)[][]> {
    const dir = makeProject(toml, { "probe.py": PROBE });
    ok(await runSilo(["trust"], { home, cwd: dir }));
    const r = ok(await runSilo(["run", "python", "/workspace/probe.py", JSON.stringify(ops)], { home, cwd: dir }));
    return JSON.parse(r.stdout) as (string | null)[][];
  }
  beforeAll(async () => {
    home = makeHome();
    ok(await runSilo(["install", "python"], { home }));
  });
  afterAll(() => {
    a.stop();
    b.stop();
    removeTree(home);
  });

  test("1. hostPorts = [A]: port B is refused through the proxy as through the bridge; without hostPorts it is reached", async () => {
    const ops = [
      ["tunnel", `host.silo.internal:${b.port}`],
      ["get", `http://host.silo.internal:${b.port}/abs`, `host.silo.internal:${b.port}`],
    ];
    // Control: hostAccess without hostPorts opens every host port, B too, by both ways through the proxy.
    expect(await probe(`[overrides.python.network]\nhostAccess = true\n`, ops)).toEqual([
      ["200", null, "B host=tunnel path=/tunnel"],
      ["200", null, `B host=host.silo.internal:${b.port} path=/abs`],
    ]);
    const limited = await probe(`[overrides.python.network]\nhostAccess = true\nhostPorts = [${a.port}]\n`, [
      ["direct", "host.silo.internal", a.port],
      ["direct", "host.silo.internal", b.port],
      ["tunnel", `host.silo.internal:${a.port}`],
      ...ops,
    ]);
    expect(limited).toEqual([
      ["200", null, "A host=direct path=/direct"],
      ["error", "ConnectionRefusedError", null], // the bridge relays only port A
      ["200", null, "A host=tunnel path=/tunnel"],
      ["403", "host.silo.internal", null],
      ["403", "host.silo.internal", null],
    ]);
  });

  test("2. a plain-HTTP request for localhost with Host: evil.example.com reaches upstream as localhost", async () => {
    // Control (on the host): the server serves the other site for that Host.
    expect(parse(await exchange({ port: a.port }, `GET /a HTTP/1.0\r\nHost: evil.example.com\r\n\r\n`)).body).toStartWith("EVIL");
    const r = await probe(`[overrides.python.network.proxy]\nallow = ["localhost"]\n`, [
      ["get", `http://localhost:${a.port}/a`, "evil.example.com"],
      ["get", `http://localhost:${a.port}/b`, `localhost:${a.port}`],
    ]);
    expect(r).toEqual([
      ["200", null, `A host=localhost:${a.port} path=/a`],
      ["200", null, `A host=localhost:${a.port} path=/b`],
    ]);
  });

  test("3. allow = [\"*\"] with localhost denied: its address is refused in every spelling; listed, it is reached", async () => {
    const ops = ["127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"].map((h) => ["tunnel", `${h}:${a.port}`]);
    // Control: a policy that lists the address (here as a range) reaches the service by each spelling.
    expect(await probe(`[overrides.python.network.proxy]\nallow = ["127.0.0.0/8"]\n`, ops)).toEqual(ops.map(() => ["200", null, "A host=tunnel path=/tunnel"]));
    const r = await probe(`[overrides.python.network]\nhostAccess = true\n[overrides.python.network.proxy]\nallow = ["*"]\ndeny = ["localhost"]\n`, [
      ["tunnel", `localhost:${a.port}`],
      ...ops,
      ["get", `http://127.0.0.1:${a.port}/`, `127.0.0.1:${a.port}`],
    ]);
    expect(r).toEqual([["403", "localhost", null], ...ops.map(() => ["403", "127.0.0.1", null]), ["403", "127.0.0.1", null]]);
  });
});
