// THREATS.md invariant 7: egress is the allowlist, by name and by address. An address of one of the
// host's own interfaces is the host, whatever its range: a connection to it is delivered over loopback to
// every service bound to 0.0.0.0 (cloud firewalls never see it). The proxy refuses it as it refuses
// 127.0.0.1: only hostAccess (and then only hostPorts) or the address named exactly opens it; a range
// around it does not. The target is a real service on 0.0.0.0, reached at this machine's real interface
// address; the control shows the same range opening it when the proxy is given no interface list (the
// classification by range alone, before the fix), then the real proxy and dist/silo refuse it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { removeTree } from "../../../src/core/fs.ts";
import { startEgressProxy, type EgressProxy, type EgressProxyOptions } from "../../../src/net/proxy.ts";
import { makeHome, makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { ok } from "../isolation/_helpers.ts";

/** This machine's first non-loopback, non-link-local IPv4 interface address (the test needs one). */
function interfaceAddress(): string {
  const found = Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .find((a) => a.family === "IPv4" && !a.internal && !a.address.startsWith("169.254."));
  if (!found) throw new Error("this test needs a non-loopback IPv4 interface address on the host");
  return found.address;
}

const ADDR = interfaceAddress();
const RANGE = `${ADDR.split(".").slice(0, 3).join(".")}.0/24`;

/** A web server on every address (0.0.0.0), as a developer's dev server or database often is. */
function service(name: string) {
  const server = Bun.serve({ hostname: "0.0.0.0", port: 0, fetch: (req) => new Response(`${name} path=${new URL(req.url).pathname}`) });
  return { port: server.port!, stop: () => void server.stop(true) };
}

/** Send `request` (on a Unix socket or to a TCP address) and read until the other side closes. */
function exchange(where: { unix: string } | { host: string; port: number }, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = "unix" in where ? netConnect(where.unix) : netConnect(where.port, where.host);
    let got = "";
    s.on("connect", () => s.write(request));
    s.on("data", (d) => (got += d.toString("latin1")));
    s.on("close", () => resolve(got));
    s.on("error", reject);
    s.setTimeout(15000, () => s.destroy(new Error(`no answer to ${JSON.stringify(request.split("\r\n")[0])}`)));
  });
}

/** [status, X-Silo-Denied, body of a 200] of a raw HTTP answer. */
function answer(raw: string): (string | null)[] {
  const [head = "", ...rest] = raw.split("\r\n\r\n");
  const lines = head.split("\r\n");
  const denied = lines.find((l) => l.toLowerCase().startsWith("x-silo-denied:"));
  const status = lines[0]!.split(" ")[1] ?? "";
  return [status, denied ? denied.slice(denied.indexOf(":") + 1).trim() : null, status === "200" ? rest.join("\r\n\r\n") : null];
}

/** CONNECT through the proxy socket, then a plain HTTP/1.0 request inside the tunnel when it opens. */
async function tunnel(proxy: string, target: string): Promise<(string | null)[]> {
  const raw = await exchange({ unix: proxy }, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\nGET /tunnel HTTP/1.0\r\nHost: t\r\n\r\n`);
  if (!raw.startsWith("HTTP/1.1 200")) return answer(raw);
  return ["200", null, answer(raw.slice(raw.indexOf("\r\n\r\n") + 4))[2]!];
}

describe("the host's own interface address on the proxy's socket (invariant 7)", () => {
  const dir = tmp("silo-hostaddr-");
  const a = service("A");
  const b = service("B");
  const proxies: EgressProxy[] = [];
  let n = 0;
  async function proxy(o: Partial<EgressProxyOptions>): Promise<string> {
    const p = await startEgressProxy({ socketPath: join(dir, `p${n++}.sock`), allow: [], deny: [], hostAccess: false, tool: "python", ...o });
    proxies.push(p);
    return p.socketPath;
  }
  afterAll(async () => {
    for (const p of proxies) await p.close();
    a.stop();
    b.stop();
    removeTree(dir);
  });

  test(`control: the service on 0.0.0.0 answers at ${ADDR}, and a range around it opens it when the proxy knows no interface`, async () => {
    expect(answer(await exchange({ host: ADDR, port: a.port }, "GET /direct HTTP/1.0\r\nHost: x\r\n\r\n"))).toEqual(["200", null, "A path=/direct"]);
    const blind = await proxy({ allow: [RANGE], ownAddresses: async () => [] });
    expect(await tunnel(blind, `${ADDR}:${a.port}`)).toEqual(["200", null, "A path=/tunnel"]);
    expect(answer(await exchange({ unix: blind }, `GET http://${ADDR}:${a.port}/abs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))).toEqual(["200", null, "A path=/abs"]);
  });

  test(`with the real interface list the range no longer opens ${ADDR}: CONNECT and plain HTTP are refused`, async () => {
    const p = await proxy({ allow: [RANGE] });
    expect(await tunnel(p, `${ADDR}:${a.port}`)).toEqual(["403", ADDR, null]);
    const plain = await exchange({ unix: p }, `GET http://${ADDR}:${a.port}/abs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer(plain)).toEqual(["403", ADDR, null]);
    expect(plain).toContain(`it resolves to ${ADDR}, an address of this machine, which only hostAccess`);
  });

  test("hostAccess opens it only on hostPorts, by address and by a name resolving to it", async () => {
    const p = await proxy({ allow: ["*", RANGE], hostAccess: true, hostPorts: [a.port], lookup: async (h) => (h === "rebind.test" ? [ADDR] : []) });
    expect(await tunnel(p, `${ADDR}:${a.port}`)).toEqual(["200", null, "A path=/tunnel"]);
    expect(answer(await exchange({ unix: p }, `GET http://rebind.test:${a.port}/n HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))).toEqual(["200", null, "A path=/n"]);
    expect(await tunnel(p, `${ADDR}:${b.port}`)).toEqual(["403", ADDR, null]);
    expect(answer(await exchange({ unix: p }, `GET http://rebind.test:${b.port}/n HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))).toEqual(["403", "rebind.test", null]);
  });
});

// From inside a sandbox: python speaks raw HTTP to the proxy relay (127.0.0.1:3128).
const PROBE = String.raw`
import json, socket, sys

def ask(request):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=15)
    s.sendall(request.encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    return data

def answer(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    denied = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("x-silo-denied:")), None)
    status = lines[0].split(" ")[1] if " " in lines[0] else lines[0]
    return [status, denied, body.decode("latin-1") if status == "200" else None]

out = []
for kind, target in json.loads(sys.argv[1]):
    if kind == "get":
        out.append(answer(ask("GET http://%s/abs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target)))
    else:
        raw = ask("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nGET /tunnel HTTP/1.0\r\nHost: t\r\n\r\n" % (target, target))
        out.append(["200", None, answer(raw.split(b"\r\n\r\n", 1)[1])[2]] if raw.startswith(b"HTTP/1.1 200") else answer(raw))
print(json.dumps(out))
`;

describe("the host's own interface address through silo run (invariant 7)", () => {
  let home = "";
  const a = service("A");
  const b = service("B");
  async function probe(toml: string, ops: string[][]): Promise<(string | null)[][]> {
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

  test(`allow = ["${RANGE}"]: the sandbox cannot reach the host's services at ${ADDR}`, async () => {
    // Control (on the host): the service answers at that address.
    expect(answer(await exchange({ host: ADDR, port: a.port }, "GET /direct HTTP/1.0\r\nHost: x\r\n\r\n"))).toEqual(["200", null, "A path=/direct"]);
    const r = await probe(`[overrides.python.network.proxy]\nallow = ["${RANGE}"]\n`, [
      ["tunnel", `${ADDR}:${a.port}`],
      ["get", `${ADDR}:${a.port}`],
    ]);
    expect(r).toEqual([
      ["403", ADDR, null],
      ["403", ADDR, null],
    ]);
  });

  test(`hostAccess with hostPorts = [A] opens ${ADDR} on port A only`, async () => {
    const r = await probe(`[overrides.python.network]\nhostAccess = true\nhostPorts = [${a.port}]\n[overrides.python.network.proxy]\nallow = ["${RANGE}"]\n`, [
      ["tunnel", `${ADDR}:${a.port}`],
      ["get", `${ADDR}:${a.port}`],
      ["tunnel", `${ADDR}:${b.port}`],
      ["get", `${ADDR}:${b.port}`],
    ]);
    expect(r).toEqual([
      ["200", null, "A path=/tunnel"],
      ["200", null, "A path=/abs"],
      ["403", ADDR, null],
      ["403", ADDR, null],
    ]);
  });
});
