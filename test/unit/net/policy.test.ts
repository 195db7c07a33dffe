import { describe, expect, test } from "bun:test";
import { checkServerName, createAuthorizer, denyMessage, denyResponse, readOwnAddresses, type PolicyInput } from "../../../src/net/policy.ts";
import { splitHostPort } from "../../../src/net/proxy.ts";

const dns: Record<string, string[]> = {
  "public.test": ["93.184.216.34"],
  "lan.test": ["192.168.1.10"],
  "loop.test": ["127.0.0.1"],
  "mapped.test": ["::ffff:127.0.0.1"],
  "meta.test": ["169.254.169.254"],
  "mixed.test": ["10.0.0.1", "93.184.216.35"],
  "ula.test": ["fd00::5"],
};
const lookup = async (h: string) => {
  const a = dns[h];
  if (!a) throw new Error(`ENOTFOUND ${h}`);
  return a;
};
const authorizer = (p: Partial<PolicyInput>) => createAuthorizer({ allow: [], deny: [], hostAccess: false, lookup, ...p });

describe("createAuthorizer", () => {
  test("an allowed public name gets its checked address", async () => {
    expect(await authorizer({ allow: ["*"] })("Public.Test.", 443)).toEqual({ ok: true, host: "public.test", address: "93.184.216.34", addresses: ["93.184.216.34"], sni: "match" });
  });

  test("a name not on the list is denied before any lookup", async () => {
    let looked = false;
    const spy = async (): Promise<string[]> => {
      looked = true;
      return [];
    };
    const v = await createAuthorizer({ allow: ["public.test"], deny: [], hostAccess: false, lookup: spy })("other.test", 443);
    expect(v).toEqual({ ok: false, status: 403, host: "other.test", reason: { kind: "not-allowed" } });
    expect(looked).toBe(false);
  });

  test("deny beats *", async () => {
    expect(await authorizer({ allow: ["*"], deny: ["public.test"] })("public.test", 443)).toMatchObject({ ok: false, status: 403, reason: { kind: "denied", pattern: "public.test" } });
  });

  test.each(["lan.test", "loop.test", "mapped.test", "meta.test", "ula.test"])("%s (private) is refused under a wildcard", async (h) => {
    const v = await authorizer({ allow: ["*"] })(h, 443);
    expect(v).toMatchObject({ ok: false, status: 403, reason: { kind: "private", address: dns[h]![0] } });
  });

  test("naming the host exactly lifts the refusal", async () => {
    expect(await authorizer({ allow: ["lan.test"] })("lan.test", 443)).toMatchObject({ ok: true, address: "192.168.1.10" });
    expect(await authorizer({ allow: ["meta.test"] })("meta.test", 443)).toMatchObject({ ok: true, address: "169.254.169.254" });
  });

  test("hostAccess lifts it too, but not for the metadata service", async () => {
    expect(await authorizer({ allow: ["*"], hostAccess: true })("loop.test", 443)).toMatchObject({ ok: true, address: "127.0.0.1" });
    expect(await authorizer({ allow: ["*"], hostAccess: true })("meta.test", 443)).toMatchObject({ ok: false, reason: { kind: "private" } });
  });

  test("of mixed answers, only the usable addresses are kept", async () => {
    expect(await authorizer({ allow: ["*"] })("mixed.test", 443)).toMatchObject({ ok: true, address: "93.184.216.35", addresses: ["93.184.216.35"] });
  });

  test("IPv4 answers come first (a dual-stack name must not fail where IPv6 does not answer)", async () => {
    const both = createAuthorizer({ allow: ["localhost"], deny: [], hostAccess: false, lookup: async () => ["::1", "127.0.0.1"] });
    expect(await both("localhost", 443)).toMatchObject({ ok: true, address: "127.0.0.1", addresses: ["127.0.0.1", "::1"] });
  });

  test("an IP literal is reached only when that address (or a range holding it) is listed, not under *", async () => {
    expect(await authorizer({ allow: ["*"] })("8.8.8.8", 443)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
    expect(await authorizer({ allow: ["*"] })("127.0.0.1", 443)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
    expect(await authorizer({ allow: ["*"], hostAccess: true })("127.0.0.1", 443)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
    expect(await authorizer({ allow: ["8.8.8.8"] })("8.8.8.8", 443)).toMatchObject({ ok: true, address: "8.8.8.8", sni: "listed" });
    expect(await authorizer({ allow: ["8.8.0.0/16"] })("8.8.4.4", 443)).toMatchObject({ ok: true, address: "8.8.4.4", sni: "listed" });
    expect(await authorizer({ allow: ["127.0.0.1"] })("127.0.0.1", 443)).toMatchObject({ ok: true, address: "127.0.0.1", sni: "listed" });
  });

  test.each(["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.0.0.1.", "0x7F.0.0.1"])(
    "%s is 127.0.0.1: listed it passes, denied it is refused, under * it is not allowed",
    async (h) => {
      expect(await authorizer({ allow: ["127.0.0.1"] })(h, 80)).toMatchObject({ ok: true, host: "127.0.0.1", address: "127.0.0.1" });
      expect(await authorizer({ allow: ["127.0.0.0/8"], deny: ["127.0.0.1"] })(h, 80)).toMatchObject({ ok: false, reason: { kind: "denied", pattern: "127.0.0.1" } });
      expect(await authorizer({ allow: ["*"], hostAccess: true })(h, 80)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
    },
  );

  test("IPv6 literals: listed or in a listed range; ::1 is not 127.0.0.1", async () => {
    expect(await authorizer({ allow: ["::1"] })("[::1]", 80)).toMatchObject({ ok: true, address: "0:0:0:0:0:0:0:1" });
    expect(await authorizer({ allow: ["127.0.0.1"] })("[::1]", 80)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
    expect(await authorizer({ allow: ["2001:4860::/32"] })("[2001:4860:4860::8888]", 443)).toMatchObject({ ok: true });
    expect(await authorizer({ allow: ["2001:4860::/32"] })("[2001:4861::1]", 443)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
  });

  test("a host ending in a number that is no address is refused without lookup", async () => {
    for (const h of ["1.2.3.4.5", "example.123", "256.0.0.1", "0x1.0x2.0x3.0x4.5", "08.0.0.1"])
      expect(await authorizer({ allow: ["*"] })(h, 443)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
  });

  test("a range lifts the private-address refusal only inside one address class", async () => {
    expect(await authorizer({ allow: ["10.0.0.0/8"] })("10.1.2.3", 80)).toMatchObject({ ok: true });
    expect(await authorizer({ allow: ["0.0.0.0/0"] })("93.184.216.34", 80)).toMatchObject({ ok: true });
    expect(await authorizer({ allow: ["0.0.0.0/0"] })("127.0.0.1", 80)).toMatchObject({ ok: false, reason: { kind: "private" } });
    expect(await authorizer({ allow: ["0.0.0.0/0"] })("0.0.0.0", 80)).toMatchObject({ ok: false, reason: { kind: "private" } });
    expect(await authorizer({ allow: ["169.254.0.0/16"] })("169.254.1.1", 80)).toMatchObject({ ok: true });
    expect(await authorizer({ allow: ["169.254.0.0/16"] })("169.254.169.254", 80)).toMatchObject({ ok: false, reason: { kind: "private", addressKind: "metadata" } });
    expect(await authorizer({ allow: ["::/0"] })("[::ffff:169.254.169.254]", 80)).toMatchObject({ ok: false, reason: { kind: "private", addressKind: "metadata" } });
  });

  test("deny by address: a name resolving into a denied address or range is refused, even under *", async () => {
    expect(await authorizer({ allow: ["*"], deny: ["93.184.216.34"] })("public.test", 443)).toMatchObject({ ok: false, reason: { kind: "denied", pattern: "93.184.216.34" } });
    expect(await authorizer({ allow: ["*"], deny: ["93.184.216.0/24"] })("public.test", 443)).toMatchObject({ ok: false, reason: { kind: "denied", pattern: "93.184.216.0/24" } });
    expect(await authorizer({ allow: ["lan.test"], deny: ["192.168.0.0/16"] })("lan.test", 443)).toMatchObject({ ok: false, reason: { kind: "denied" } });
    expect(await authorizer({ allow: ["loop.test"], deny: ["127.0.0.1"] })("mapped.test", 443)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
    expect(await authorizer({ allow: ["mapped.test"], deny: ["127.0.0.1"] })("mapped.test", 443)).toMatchObject({ ok: false, reason: { kind: "denied" } });
    // Of mixed answers the denied ones are dropped.
    expect(await authorizer({ allow: ["mixed.test"], deny: ["10.0.0.0/8"] })("mixed.test", 443)).toMatchObject({ ok: true, addresses: ["93.184.216.35"] });
    // deny = ["*"] refuses addresses too.
    expect(await authorizer({ allow: ["8.8.8.8"], deny: ["*"] })("8.8.8.8", 443)).toMatchObject({ ok: false, reason: { kind: "denied", pattern: "*" } });
  });

  test("hostAccess opens the host only on hostPorts, when they are listed (the bridge's rule)", async () => {
    const ha = { allow: ["*"], hostAccess: true, hostPorts: [18080] };
    expect(await authorizer(ha)("host.silo.internal", 18080)).toMatchObject({ ok: true, address: "127.0.0.1", sni: "any" });
    expect(await authorizer(ha)("host.silo.internal", 18081)).toMatchObject({ ok: false, status: 403, reason: { kind: "host-port", port: 18081, hostPorts: [18080] } });
    expect(await authorizer(ha)("loop.test", 18081)).toMatchObject({ ok: false, reason: { kind: "host-port", port: 18081 } });
    expect(await authorizer(ha)("lan.test", 5432)).toMatchObject({ ok: false, reason: { kind: "host-port" } });
    expect(await authorizer(ha)("loop.test", 18080)).toMatchObject({ ok: true, address: "127.0.0.1" });
    expect(await authorizer(ha)("public.test", 18081)).toMatchObject({ ok: true }); // a public address is no host port
    // Without hostPorts, every port (as the bridge); a host named exactly is not opened by hostAccess.
    expect(await authorizer({ hostAccess: true })("host.silo.internal", 5000)).toMatchObject({ ok: true });
    expect(await authorizer({ ...ha, allow: ["loop.test"] })("loop.test", 5000)).toMatchObject({ ok: true });
  });

  test("checkServerName: the name rules for the server name of a tunnel to a listed address", () => {
    const p = { allow: ["*.example.test", "1.2.3.4"], deny: ["bad.example.test"] };
    expect(checkServerName("www.example.test", p)).toBeNull();
    expect(checkServerName("bad.example.test", p)).toEqual({ kind: "server-name-rules", serverName: "bad.example.test", pattern: "bad.example.test" });
    expect(checkServerName("other.test", p)).toEqual({ kind: "server-name-rules", serverName: "other.test", pattern: null });
  });

  test("host.silo.internal is the host's loopback with hostAccess, and an ordinary name without", async () => {
    expect(await authorizer({ hostAccess: true })("host.silo.internal", 443)).toMatchObject({ ok: true, host: "host.silo.internal", address: "127.0.0.1", sni: "any" });
    expect(await authorizer({})("host.silo.internal", 443)).toMatchObject({ ok: false, status: 403, reason: { kind: "not-allowed" } });
    expect(await authorizer({ hostAccess: true, deny: ["host.silo.internal"] })("host.silo.internal", 443)).toMatchObject({ ok: false, reason: { kind: "denied" } });
  });

  test("a name that does not resolve is a 502, not a denial", async () => {
    expect(await authorizer({ allow: ["*"] })("nowhere.test", 443)).toMatchObject({ ok: false, status: 502 });
  });
});

// Finding F3: an address of one of the host's own interfaces is the host, even in a public range (a
// connection to it is delivered over loopback to every service bound to 0.0.0.0).
describe("the host's own interface addresses", () => {
  const names: Record<string, string[]> = {
    "rebind.test": ["8.8.8.8"],
    "mapped.test": ["::ffff:8.8.8.8"],
    "six.test": ["2001:4860::1"],
    "lanhost.test": ["10.0.0.5"],
    "dual.test": ["8.8.8.8", "93.184.216.34"],
  };
  const own = async () => ["127.0.0.1", "::1", "8.8.8.8", "10.0.0.5", "2001:4860::1"];
  const auth = (p: Partial<PolicyInput>) => createAuthorizer({ allow: [], deny: [], hostAccess: false, lookup: async (h) => names[h] ?? [], ownAddresses: own, ...p });

  test("control: without the interface list, allow = * reaches a name that resolves to the host's public address", async () => {
    const open = createAuthorizer({ allow: ["*"], deny: [], hostAccess: false, lookup: async (h) => names[h] ?? [], ownAddresses: async () => [] });
    expect(await open("rebind.test", 8080)).toMatchObject({ ok: true, address: "8.8.8.8" });
    expect(await open("lanhost.test", 8080)).toMatchObject({ ok: false }); // private: refused already
  });

  test("a name resolving to one of them is refused under *, in any spelling, IPv4 and IPv6", async () => {
    const p = auth({ allow: ["*"] });
    for (const [name, address] of [["rebind.test", "8.8.8.8"], ["mapped.test", "::ffff:8.8.8.8"], ["six.test", "2001:4860::1"], ["lanhost.test", "10.0.0.5"]] as const)
      expect([name, await p(name, 8080)] as unknown[]).toEqual([name, { ok: false, status: 403, host: name, reason: { kind: "private", address, addressKind: "host" } }]);
    // Of mixed answers the host's own is dropped, the public one kept.
    expect(await p("dual.test", 443)).toMatchObject({ ok: true, addresses: ["93.184.216.34"] });
  });

  test("an IP literal: a range around it does not open it, naming it exactly does (as 127.0.0.1)", async () => {
    const ranges = auth({ allow: ["8.0.0.0/8", "10.0.0.0/8", "2001:4860::/32"] });
    for (const a of ["8.8.8.8", "[::ffff:8.8.8.8]", "0x8080808", "10.0.0.5", "[2001:4860::1]"])
      expect([a, await ranges(a, 80)]).toEqual([a, expect.objectContaining({ ok: false, status: 403, reason: expect.objectContaining({ kind: "private", addressKind: "host" }) })]);
    expect(await ranges("8.8.4.4", 80)).toMatchObject({ ok: true, address: "8.8.4.4" });
    expect(await ranges("10.0.0.6", 80)).toMatchObject({ ok: true, address: "10.0.0.6" });
    expect(await auth({ allow: ["8.8.8.8"] })("8.8.8.8", 80)).toMatchObject({ ok: true, address: "8.8.8.8" });
    expect(await auth({ allow: ["*"] })("8.8.8.8", 80)).toMatchObject({ ok: false, reason: { kind: "not-allowed" } });
  });

  test("hostAccess opens them, only on hostPorts when listed (CONNECT and plain HTTP share this decision)", async () => {
    const ha = auth({ allow: ["*", "8.0.0.0/8"], hostAccess: true, hostPorts: [8080] });
    expect(await ha("rebind.test", 8080)).toMatchObject({ ok: true, address: "8.8.8.8" });
    expect(await ha("8.8.8.8", 8080)).toMatchObject({ ok: true, address: "8.8.8.8" });
    expect(await ha("rebind.test", 22)).toMatchObject({ ok: false, status: 403, reason: { kind: "host-port", port: 22, hostPorts: [8080] } });
    expect(await ha("8.8.8.8", 22)).toMatchObject({ ok: false, status: 403, reason: { kind: "host-port", port: 22 } });
    expect(await ha("8.8.4.4", 22)).toMatchObject({ ok: true }); // another public address is no host port
  });

  test("the interfaces are read on the first decision, not when the policy is made, and reused for a while", async () => {
    let reads = 0;
    const p = createAuthorizer({ allow: ["*"], deny: [], hostAccess: false, lookup: async (h) => names[h] ?? [], ownAddresses: async () => (reads++, ["8.8.8.8"]) });
    expect(reads).toBe(0);
    expect(await p("rebind.test", 80)).toMatchObject({ ok: false });
    expect(await p("dual.test", 80)).toMatchObject({ ok: true });
    expect(reads).toBe(1);
  });

  test("readOwnAddresses lists the real interfaces (loopback among them)", async () => {
    const list = await readOwnAddresses();
    expect(list).toContain("127.0.0.1");
  });
});

describe("refusal text", () => {
  test("not allowed: what and the exact fix", () => {
    expect(denyMessage("node", "example.com", { kind: "not-allowed" })).toBe(
      "silo blocked example.com: it is not on the network allowlist of node.\nTo allow it: silo config network allow node example.com\n",
    );
  });
  test("private: names the address and the fix", () => {
    const m = denyMessage("python", "db.test", { kind: "private", address: "10.0.0.5", addressKind: "private" });
    expect(m).toContain("resolves to 10.0.0.5, a private address");
    expect(m).toContain("silo config network allow python db.test");
  });
  test("an address of this machine: says so, and names hostAccess as the fix", () => {
    const m = denyMessage("python", "rebind.test", { kind: "private", address: "8.8.8.8", addressKind: "host" });
    expect(m).toBe(
      "silo blocked rebind.test: it resolves to 8.8.8.8, an address of this machine, which only hostAccess (or the address named exactly in the allowlist) opens.\n" +
        "To open the host to python: hostAccess = true under [overrides.python.network] in silo.toml\n",
    );
  });
  test("deny list: names the pattern", () => {
    expect(denyMessage("node", "x.evil.test", { kind: "denied", pattern: "*.evil.test" })).toContain(
      "silo config network remove node *.evil.test",
    );
  });
  test("host port: names the ports hostAccess opens and where to add one", () => {
    const m = denyMessage("python", "host.silo.internal", { kind: "host-port", port: 18081, hostPorts: [18080] });
    expect(m).toBe(
      "silo blocked host.silo.internal port 18081: hostAccess opens only the host port 18080 to python (hostPorts).\n" +
        "To open it: add 18081 to hostPorts under [overrides.python.network] in silo.toml\n",
    );
  });
  test("server name of a tunnel to an address", () => {
    expect(denyMessage("node", "1.2.3.4", { kind: "server-name-rules", serverName: "x.test", pattern: null })).toContain("silo config network allow node x.test");
    expect(denyMessage("node", "1.2.3.4", { kind: "server-name-rules", serverName: "x.test", pattern: "*.test" })).toContain('matches "*.test" in the network deny list');
  });
  test("server name mismatch", () => {
    expect(denyMessage("node", "a.test", { kind: "server-name", serverName: "b.test" })).toContain("its TLS server name is b.test");
    expect(denyMessage("node", "a.test", { kind: "server-name", serverName: null })).toContain("no TLS server name");
  });
  test("a complete 403 response with the X-Silo-Denied header", () => {
    const r = denyResponse("node", "example.com", { kind: "not-allowed" });
    const [head, body] = r.split("\r\n\r\n");
    expect(head).toStartWith("HTTP/1.1 403 Forbidden\r\n");
    expect(head).toContain("\r\nX-Silo-Denied: example.com\r\n");
    expect(head).toContain(`\r\nContent-Length: ${Buffer.byteLength(body!)}\r\n`);
    expect(body).toContain("silo config network allow node example.com");
  });
});

describe("splitHostPort", () => {
  test("host:port and [v6]:port", () => {
    expect(splitHostPort("example.com:443")).toEqual({ host: "example.com", port: 443 });
    expect(splitHostPort("[::1]:8443")).toEqual({ host: "::1", port: 8443 });
  });
  test.each(["example.com", "example.com:0", "example.com:70000", "::1:443", "a b:1", ":443", "[a\nX-Evil: 1]:443", "ex/ample.com:443"])("%p is malformed", (t) => {
    expect(splitHostPort(t)).toBeNull();
  });
});
