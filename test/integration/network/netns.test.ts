// The sandbox's network as the driver sets it up, in network namespaces these tests make themselves
// (`unshare --user --map-root-user --net`, loopback only): the relays inside, the host side outside.
// Each security test first shows the target reachable from the host, then not from inside.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startHostNetwork, type HostNetwork } from "../../../src/net/host.ts";
import { tmp } from "../../helpers/silo.ts";
import { helloServer, inNamespace, makeCert, rawTcp, run, startNamespace, startProxyProcess, type Namespace } from "./_helpers.ts";

const lookup = async (h: string) => (h === "allowed.test" ? ["127.0.0.1"] : []);

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

/** Send one UDP datagram from wherever this runs (one-line bun script, no proxy variables involved). */
const udpSend = (port: number, text: string) => [
  process.execPath, "-e",
  `const s=await Bun.udpSocket({});s.send(${JSON.stringify(text)},${port},"127.0.0.1");setTimeout(()=>process.exit(0),50)`,
];

describe("sandbox network namespace", () => {
  const dir = tmp("silo-netns-");
  const cert = makeCert(dir, ["allowed.test"]);
  const web = helloServer("web");
  const secure = helloServer("secure", cert);
  const other = helloServer("other"); // a host loopback service NOT listed for hostAccess
  const denied: string[] = [];
  const guestPort = freePort(); // free on the host too, so reaching it there would prove a leak
  const hostPort = freePort();
  let host: HostNetwork;
  let ns: Namespace;

  beforeAll(async () => {
    host = await startHostNetwork(
      {
        allow: ["allowed.test"],
        deny: [],
        hostAccess: true,
        hostPorts: [web.port],
        ports: [{ host: hostPort, guest: guestPort }],
        tool: "python",
        onDeny: (h) => denied.push(h),
        lookup,
      },
      `${dir}/run`,
    );
    ns = await startNamespace(host.spec);
  });
  afterAll(async () => {
    await ns?.close();
    await host?.close();
    web.stop(true);
    secure.stop(true);
    other.stop(true);
  });

  test("the spec says what runs: proxy, hostAccess bridge, forwards", () => {
    expect(host.spec).toMatchObject({ mode: "proxy", proxyPort: 3128, hostAccess: true, hostPorts: [web.port], ports: [{ host: hostPort, guest: guestPort }] });
  });

  test("inside there is loopback only: no other interface, no route", async () => {
    const links = await ns.exec(["ip", "-o", "link"]);
    expect(links.stdout.trim().split("\n").map((l) => l.split(":")[1]!.trim())).toEqual(["lo"]);
    expect((await ns.exec(["ip", "route"])).stdout.trim()).toBe("");
    const v6 = (await ns.exec(["ip", "-6", "route"])).stdout.trim().split("\n").filter((l) => l && !l.includes(" dev lo "));
    expect(v6).toEqual([]);
    // A route lookup only (no packet): anything off this namespace is unreachable, for TCP, UDP and ICMP alike.
    expect((await ns.exec(["ip", "-4", "route", "get", "192.0.2.1"])).code).not.toBe(0);
  });

  test("raw TCP to a host loopback server works on the host and fails inside", async () => {
    expect((await run(rawTcp("127.0.0.1", web.port))).stdout.trim()).toBe("CONNECTED");
    const inside = await ns.exec(rawTcp("127.0.0.1", web.port));
    expect(inside.stdout.trim()).toBe("ERR ECONNREFUSED");
  });

  test("a UDP datagram (and a DNS query) from inside never reaches a host loopback listener", async () => {
    const got: string[] = [];
    const marker = Promise.withResolvers<void>();
    const sock = await Bun.udpSocket({
      hostname: "127.0.0.1",
      socket: {
        data(_s, d) {
          got.push(d.toString());
          if (d.toString() === "marker") marker.resolve();
        },
      },
    });
    await run(udpSend(sock.port, "from-host"));
    await ns.exec(udpSend(sock.port, "from-sandbox"));
    // A DNS query for allowed.test, as a resolver inside would send it, to a "DNS server" on host loopback.
    const query = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07allowed\x04test\x00\x00\x01\x00\x01";
    await ns.exec(udpSend(sock.port, query));
    await run(udpSend(sock.port, "marker")); // loopback keeps order: once this is here, the others would be
    await marker.promise;
    sock.close();
    expect(got).toEqual(["from-host", "marker"]);
  });

  test("the allowlisted host answers through the proxy relay (HTTP and HTTPS); others get the 403", async () => {
    const r = await ns.exec(["curl", "-sS", "--max-time", "10", "-x", "http://127.0.0.1:3128", `http://allowed.test:${web.port}/via-proxy`]);
    expect(r.stdout).toBe("web /via-proxy");
    const t = await ns.exec(["curl", "-sS", "--max-time", "10", "-x", "http://127.0.0.1:3128", "--cacert", cert.cert, `https://allowed.test:${secure.port}/tls`]);
    expect(t.stdout).toBe("secure /tls");
    const d = await ns.exec(["curl", "-sS", "-i", "--max-time", "10", "-x", "http://127.0.0.1:3128", `http://denied.test:${web.port}/`]);
    expect(d.stdout).toStartWith("HTTP/1.1 403");
    expect(d.stdout).toContain("silo config network allow python denied.test");
    expect(denied).toEqual(["denied.test"]);
    // Without the proxy, the same name does not even resolve inside, and the address is not reachable.
    const direct = await ns.exec(["curl", "-sS", "--max-time", "5", "--noproxy", "*", "--resolve", `allowed.test:${web.port}:127.0.0.1`, `http://allowed.test:${web.port}/`]);
    expect(direct.code).not.toBe(0);
  });

  test("hostAccess: host.silo.internal (127.0.0.2) reaches the host's listed loopback ports only", async () => {
    const resolve = (p: number) => ["--resolve", `host.silo.internal:${p}:127.0.0.2`];
    const ok = await ns.exec(["curl", "-sS", "--max-time", "10", "--noproxy", "*", ...resolve(web.port), `http://host.silo.internal:${web.port}/ha`]);
    expect(ok.stdout).toBe("web /ha");
    // The other host service answers on the host, but is not relayed.
    expect((await run(["curl", "-sS", `http://127.0.0.1:${other.port}/`])).stdout).toBe("other /");
    const no = await ns.exec(rawTcp("127.0.0.2", other.port));
    expect(no.stdout.trim()).toBe("ERR ECONNREFUSED");
  });

  test("a forwarded port serves a request from the host", async () => {
    const server = Bun.spawn(
      inNamespace(ns.pid, [process.execPath, "-e",
        `Bun.serve({hostname:"127.0.0.1",port:${guestPort},fetch:(r)=>new Response("guest "+new URL(r.url).pathname)});console.log("up")`]),
      { stdout: "pipe", stderr: "inherit" },
    );
    await server.stdout.getReader().read();
    try {
      // The guest port is not reachable on the host by itself...
      expect((await run(rawTcp("127.0.0.1", guestPort))).stdout.trim()).not.toBe("CONNECTED");
      // ...but through the forward it is.
      const r = await run(["curl", "-sS", "--max-time", "10", `http://127.0.0.1:${hostPort}/fwd`]);
      expect(r.stdout).toBe("guest /fwd");
    } finally {
      server.kill();
      await server.exited;
    }
  });

  test("a forward whose host port is taken fails with a clear error before anything starts", async () => {
    const err = await startHostNetwork({ allow: [], deny: [], hostAccess: false, ports: [{ host: web.port, guest: 80 }], tool: "python" }, `${dir}/run2`).catch((e) => e);
    expect(err.code).toBe("E_NETWORK");
    expect(err.message).toContain(`host port ${web.port}: already in use on the host`);
  });
});

describe("when the proxy dies", () => {
  const dir = tmp("silo-netns-kill-");
  const web = helloServer("web");
  let ns: Namespace;

  afterAll(async () => {
    await ns?.close();
    web.stop(true);
  });

  test("the sandbox is left with no egress at all", async () => {
    const socketPath = `${dir}/proxy.sock`;
    const proxy = await startProxyProcess({ socketPath, allow: ["allowed.test"], hosts: { "allowed.test": ["127.0.0.1"] } });
    ns = await startNamespace({ mode: "proxy", proxySocket: socketPath, proxyPort: 3128, hostAccess: false, ports: [] });
    const curl = ["curl", "-sS", "--max-time", "10", "-x", "http://127.0.0.1:3128", `http://allowed.test:${web.port}/alive`];
    expect((await ns.exec(curl)).stdout).toBe("web /alive");
    proxy.kill("SIGKILL");
    await proxy.exited;
    const after = await ns.exec(curl);
    expect(after.code).not.toBe(0);
    expect(after.stdout).toBe("");
    expect((await ns.exec(rawTcp("127.0.0.1", web.port))).stdout.trim()).toBe("ERR ECONNREFUSED");
    expect((await ns.exec(["ip", "route"])).stdout.trim()).toBe("");
  });
});

describe("hostAccess without configured ports", () => {
  const dir = tmp("silo-netns-ha-");
  const web = helloServer("db"); // stands for a database or dev API on the host's loopback
  let host: HostNetwork;
  let ns: Namespace;

  afterAll(async () => {
    await ns?.close();
    await host?.close();
    web.stop(true);
  });

  test("every port listening on host loopback at start is reachable at host.silo.internal", async () => {
    host = await startHostNetwork({ allow: [], deny: [], hostAccess: true, ports: [], tool: "python" }, `${dir}/run`);
    expect(host.spec.hostPorts).toBeUndefined(); // the relay asks the bridge
    ns = await startNamespace(host.spec);
    const r = await ns.exec(["curl", "-sS", "--max-time", "10", "--noproxy", "*", "--resolve", `host.silo.internal:${web.port}:127.0.0.2`, `http://host.silo.internal:${web.port}/x`]);
    expect(r.stdout).toBe("db /x");
    // Still nothing but loopback inside, and the host's 127.0.0.1 itself stays out of reach.
    expect((await ns.exec(rawTcp("127.0.0.1", web.port))).stdout.trim()).toBe("ERR ECONNREFUSED");
  });
});
