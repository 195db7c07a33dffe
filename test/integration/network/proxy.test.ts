// The egress proxy against real servers on loopback: plain HTTP and HTTPS through CONNECT, refusals,
// private-address rules and TLS server-name checks. Names map to loopback through the injected resolver.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { startEgressProxy, type EgressProxy } from "../../../src/net/proxy.ts";
import { startSandboxRelays } from "../../../src/net/relay.ts";
import { parseClientHello } from "../../../src/net/sni.ts";
import { tmp } from "../../helpers/silo.ts";
import { buildClientHello } from "../../unit/net/_hello.ts";
import { helloServer, makeCert, run } from "./_helpers.ts";

const hosts: Record<string, string[]> = {
  "allowed.test": ["127.0.0.1"],
  "other.test": ["127.0.0.1"],
  "named.test": ["127.0.0.1"],
  "a.wild.test": ["127.0.0.1"],
  "blocked.wild.test": ["127.0.0.1"],
  "mapped.wild.test": ["::ffff:127.0.0.1"],
};
const lookup = async (h: string) => hosts[h] ?? [];

describe("egress proxy on loopback", () => {
  const dir = tmp("silo-proxy-");
  const cert = makeCert(dir, ["allowed.test", "other.test", "a.wild.test", "named.test"]);
  const web = helloServer("web");
  const secure = helloServer("secure", cert);
  const denied: string[] = [];
  let proxy: EgressProxy;
  let star: EgressProxy; // allow *, deny allowed.test
  let open: EgressProxy; // the same with hostAccess on
  let front: { proxyPort?: number; close(): void };
  let starFront: { proxyPort?: number; close(): void };
  let openFront: { proxyPort?: number; close(): void };

  beforeAll(async () => {
    proxy = await startEgressProxy({
      socketPath: join(dir, "proxy.sock"),
      allow: ["allowed.test", "named.test", "*.wild.test", "other.test", "127.0.0.1"],
      deny: ["blocked.wild.test"],
      hostAccess: false,
      tool: "node",
      onDeny: (h) => denied.push(h),
      lookup,
    });
    star = await startEgressProxy({ socketPath: join(dir, "star.sock"), allow: ["*"], deny: ["allowed.test"], hostAccess: false, tool: "node", lookup });
    open = await startEgressProxy({ socketPath: join(dir, "open.sock"), allow: ["*"], deny: ["allowed.test"], hostAccess: true, tool: "node", lookup });
    // The relay in this (the test's) namespace stands in for the one in a sandbox: a TCP port for curl.
    front = await startSandboxRelays({ mode: "proxy", proxySocket: proxy.socketPath, proxyPort: 0, hostAccess: false, ports: [] });
    starFront = await startSandboxRelays({ mode: "proxy", proxySocket: star.socketPath, proxyPort: 0, hostAccess: false, ports: [] });
    openFront = await startSandboxRelays({ mode: "proxy", proxySocket: open.socketPath, proxyPort: 0, hostAccess: false, ports: [] });
  });
  afterAll(async () => {
    for (const f of [front, starFront, openFront]) f.close();
    for (const p of [proxy, star, open]) await p.close();
    web.stop(true);
    secure.stop(true);
  });

  const curl = (port: number | undefined, url: string, extra: string[] = []) =>
    run(["curl", "-sS", "-i", "--max-time", "10", "-x", `http://127.0.0.1:${port}`, "--cacert", cert.cert, ...extra, url]);

  test("the servers answer directly (the baseline the proxy is compared with)", async () => {
    expect((await run(["curl", "-sS", `http://127.0.0.1:${web.port}/direct`])).stdout).toBe("web /direct");
  });

  test("an allowed host answers over plain HTTP, with its Host header kept", async () => {
    const r = await curl(front.proxyPort, `http://allowed.test:${web.port}/hello`);
    expect(r.stdout).toStartWith("HTTP/1.1 200");
    expect(r.stdout).toEndWith("web /hello");
  });

  test("an allowed host answers over HTTPS through CONNECT (certificate verified end to end)", async () => {
    const r = await curl(front.proxyPort, `https://allowed.test:${secure.port}/tls`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("HTTP/1.1 200 Connection Established");
    expect(r.stdout).toEndWith("secure /tls");
  });

  test("a host not on the list gets 403, X-Silo-Denied, the fix, and one onDeny per host", async () => {
    const r1 = await curl(front.proxyPort, `http://evil.test:${web.port}/`);
    const r2 = await curl(front.proxyPort, `http://evil.test:${web.port}/again`);
    expect(r1.stdout).toStartWith("HTTP/1.1 403");
    expect(r1.stdout.toLowerCase()).toContain("x-silo-denied: evil.test");
    expect(r1.stdout).toContain("silo config network allow node evil.test");
    expect(r2.stdout).toStartWith("HTTP/1.1 403");
    const c = await run(["curl", "-sS", "-x", `http://127.0.0.1:${front.proxyPort}`, "-o", "/dev/null", "-w", "%{http_connect}", `https://evil.test:${secure.port}/`]);
    expect(c.stdout).toBe("403");
    expect(denied.filter((h) => h === "evil.test")).toEqual(["evil.test"]);
  });

  test("a 403 on CONNECT carries the body and header too", async () => {
    const s = await rawConnect(proxy.socketPath, `evil2.test:${secure.port}`);
    const reply = await readSome(s);
    expect(reply).toStartWith("HTTP/1.1 403 Forbidden\r\n");
    expect(reply).toContain("X-Silo-Denied: evil2.test\r\n");
    expect(reply).toContain("silo config network allow node evil2.test");
    s.destroy();
  });

  test("deny beats * (and a wildcard allow)", async () => {
    const r = await curl(starFront.proxyPort, `http://allowed.test:${web.port}/`);
    expect(r.stdout).toStartWith("HTTP/1.1 403");
    expect(r.stdout).toContain(`matches "allowed.test" in the network deny list`);
    const d = await run(["curl", "-sS", "-x", `http://127.0.0.1:${front.proxyPort}`, "-o", "/dev/null", "-w", "%{http_connect}", `https://blocked.wild.test:${secure.port}/`]);
    expect(d.stdout).toBe("403");
  });

  test("an allowed name resolving to loopback is refused under a wildcard (also IPv4-mapped IPv6)", async () => {
    const r = await curl(front.proxyPort, `http://a.wild.test:${web.port}/`);
    expect(r.stdout).toStartWith("HTTP/1.1 403");
    expect(r.stdout).toContain("resolves to 127.0.0.1, a loopback address");
    const m = await curl(front.proxyPort, `http://mapped.wild.test:${web.port}/`);
    expect(m.stdout).toContain("resolves to ::ffff:127.0.0.1, a loopback address");
  });

  test("… and reached when named exactly", async () => {
    const r = await curl(front.proxyPort, `https://named.test:${secure.port}/n`);
    expect(r.stdout).toEndWith("secure /n");
  });

  test("… or when hostAccess is on", async () => {
    const r = await curl(openFront.proxyPort, `https://a.wild.test:${secure.port}/h`);
    expect(r.stdout).toEndWith("secure /h");
  });

  test("a loopback IP literal under * is refused, with hostAccess too, in any spelling; listed, it is reached", async () => {
    for (const front of [starFront, openFront])
      for (const host of ["127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "2130706433", "127.1"]) {
        const r = await curl(front.proxyPort, `http://${host}:${web.port}/`);
        expect(r.stdout).toStartWith("HTTP/1.1 403");
        expect(r.stdout).toContain("silo blocked 127.0.0.1: it is not on the network allowlist");
      }
    expect((await curl(front.proxyPort, `http://127.0.0.1:${web.port}/ip`)).stdout).toEndWith("web /ip");
  });

  test("host.silo.internal reaches the host's loopback through the proxy with hostAccess", async () => {
    const r = await curl(openFront.proxyPort, `http://host.silo.internal:${web.port}/hostaccess`);
    expect(r.stdout).toEndWith("web /hostaccess");
    const no = await curl(front.proxyPort, `http://host.silo.internal:${web.port}/`);
    expect(no.stdout).toStartWith("HTTP/1.1 403");
  });

  test("every request on a kept-alive connection is checked on its own", async () => {
    const s = await rawUnix(proxy.socketPath);
    s.write(`GET http://allowed.test:${web.port}/one HTTP/1.1\r\nHost: allowed.test:${web.port}\r\n\r\n`);
    const first = await readSome(s, "web /one");
    expect(first).toStartWith("HTTP/1.1 200");
    s.write(`GET http://evil3.test:${web.port}/two HTTP/1.1\r\nHost: evil3.test:${web.port}\r\n\r\n`);
    const second = await readSome(s, "allow node evil3.test");
    expect(second).toStartWith("HTTP/1.1 403");
    s.destroy();
  });

  test("a TLS server name other than the CONNECT host is refused", async () => {
    // First, the same tunnel with the matching name works.
    const ok = await tlsThroughProxy(proxy.socketPath, `allowed.test:${secure.port}`, "allowed.test", cert.cert);
    expect(ok).toBe("secure /sni");
    // other.test is allowed too, but a tunnel opened for allowed.test must not carry it (domain fronting).
    await expect(tlsThroughProxy(proxy.socketPath, `allowed.test:${secure.port}`, "other.test", cert.cert)).rejects.toThrow();
    expect(denied).toContain("allowed.test");
  });

  test("a tunnel without a TLS server name (or not TLS at all) is refused for a named host", async () => {
    for (const first of [buildClientHello(), new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]) {
      const s = await rawConnect(proxy.socketPath, `other.test:${secure.port}`);
      expect(await readSome(s)).toStartWith("HTTP/1.1 200");
      s.write(first);
      const closed = await new Promise<string>((resolve) => {
        let got = "";
        s.on("data", (d) => (got += d.toString("latin1")));
        s.on("close", () => resolve(got));
      });
      // No server bytes came back: only silo's TLS alert (access_denied).
      expect(Buffer.from(closed, "latin1")).toEqual(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]));
    }
  });

  test("a client that leaves before its TLS hello is checked leaves no upstream connection behind", async () => {
    const closed = Promise.withResolvers<void>();
    const upstream = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, close: () => closed.resolve() } });
    try {
      const s = await rawConnect(proxy.socketPath, `allowed.test:${upstream.port}`);
      expect(await readSome(s)).toStartWith("HTTP/1.1 200");
      s.destroy();
      await closed.promise; // without the fix, the proxy held it open until the server gave up
    } finally {
      upstream.stop(true);
    }
  });

  test("a tunnel to a listed address carries a protocol whose server speaks first", async () => {
    const banner = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.write("SSH-2.0-test\r\n"), data() {} } });
    try {
      const s = await rawConnect(proxy.socketPath, `127.0.0.1:${banner.port}`);
      expect(await readSome(s, "SSH-2.0-test")).toBe("HTTP/1.1 200 Connection Established\r\n\r\nSSH-2.0-test\r\n");
      s.destroy();
    } finally {
      banner.stop(true);
    }
  });

  test("a real ClientHello from Bun's TLS client parses", async () => {
    let buf = new Uint8Array(0);
    const got = Promise.withResolvers<Uint8Array>();
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, d) {
          buf = Uint8Array.from([...buf, ...d]);
          if (parseClientHello(buf).state !== "incomplete") {
            got.resolve(buf);
            s.end();
          }
        },
      },
    });
    const c = tlsConnect({ host: "127.0.0.1", port: server.port, servername: "real.example.test", rejectUnauthorized: false });
    c.on("error", () => undefined);
    const hello = await got.promise;
    c.destroy();
    server.stop(true);
    expect(parseClientHello(hello)).toEqual({ state: "hello", serverName: "real.example.test" });
  });
});

function rawUnix(path: string): Promise<NetSocket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(path, () => resolve(s));
    s.on("error", reject);
  });
}

async function rawConnect(path: string, target: string): Promise<NetSocket> {
  const s = await rawUnix(path);
  s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  return s;
}

/** Read until `until` appears (or the first chunk when not given). */
function readSome(s: NetSocket, until?: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const onData = (d: Buffer) => {
      got += d.toString("latin1");
      if (!until || got.includes(until)) {
        s.off("data", onData);
        resolve(got);
      }
    };
    s.on("data", onData);
    s.once("close", () => resolve(got));
  });
}

/** CONNECT through the proxy's socket, then TLS with the given server name; resolves with the body. */
async function tlsThroughProxy(path: string, target: string, servername: string, ca: string): Promise<string> {
  const s = await rawConnect(path, target);
  const head = await readSome(s, "\r\n\r\n");
  if (!head.startsWith("HTTP/1.1 200")) throw new Error(head);
  const tls = tlsConnect({ socket: s, servername, ca: await Bun.file(ca).text() });
  return new Promise((resolve, reject) => {
    let body = "";
    tls.on("secureConnect", () => tls.write(`GET /sni HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`));
    tls.on("data", (d) => (body += d.toString()));
    tls.on("error", reject);
    tls.on("close", () => (body.includes("\r\n\r\n") ? resolve(body.slice(body.indexOf("\r\n\r\n") + 4)) : reject(new Error(`closed: ${JSON.stringify(body)}`))));
  });
}
