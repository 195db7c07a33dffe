import { describe, expect, test } from "bun:test";
import { createAuthorizer, denyMessage, denyResponse, type PolicyInput } from "../../../src/net/policy.ts";
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
    expect(await authorizer({ allow: ["*"] })("Public.Test.")).toEqual({ ok: true, host: "public.test", address: "93.184.216.34", addresses: ["93.184.216.34"], sniRequired: true });
  });

  test("a name not on the list is denied before any lookup", async () => {
    let looked = false;
    const spy = async (): Promise<string[]> => {
      looked = true;
      return [];
    };
    const v = await createAuthorizer({ allow: ["public.test"], deny: [], hostAccess: false, lookup: spy })("other.test");
    expect(v).toEqual({ ok: false, status: 403, host: "other.test", reason: { kind: "not-allowed" } });
    expect(looked).toBe(false);
  });

  test("deny beats *", async () => {
    expect(await authorizer({ allow: ["*"], deny: ["public.test"] })("public.test")).toMatchObject({ ok: false, status: 403, reason: { kind: "denied", pattern: "public.test" } });
  });

  test.each(["lan.test", "loop.test", "mapped.test", "meta.test", "ula.test"])("%s (private) is refused under a wildcard", async (h) => {
    const v = await authorizer({ allow: ["*"] })(h);
    expect(v).toMatchObject({ ok: false, status: 403, reason: { kind: "private", address: dns[h]![0] } });
  });

  test("naming the host exactly lifts the refusal", async () => {
    expect(await authorizer({ allow: ["lan.test"] })("lan.test")).toMatchObject({ ok: true, address: "192.168.1.10" });
    expect(await authorizer({ allow: ["meta.test"] })("meta.test")).toMatchObject({ ok: true, address: "169.254.169.254" });
  });

  test("hostAccess lifts it too, but not for the metadata service", async () => {
    expect(await authorizer({ allow: ["*"], hostAccess: true })("loop.test")).toMatchObject({ ok: true, address: "127.0.0.1" });
    expect(await authorizer({ allow: ["*"], hostAccess: true })("meta.test")).toMatchObject({ ok: false, reason: { kind: "private" } });
  });

  test("of mixed answers, only the usable addresses are kept", async () => {
    expect(await authorizer({ allow: ["*"] })("mixed.test")).toMatchObject({ ok: true, address: "93.184.216.35", addresses: ["93.184.216.35"] });
  });

  test("IPv4 answers come first (a dual-stack name must not fail where IPv6 does not answer)", async () => {
    const both = createAuthorizer({ allow: ["localhost"], deny: [], hostAccess: false, lookup: async () => ["::1", "127.0.0.1"] });
    expect(await both("localhost")).toMatchObject({ ok: true, address: "127.0.0.1", addresses: ["127.0.0.1", "::1"] });
  });

  test("IP literals are checked without lookup and need no server name", async () => {
    expect(await authorizer({ allow: ["*"] })("127.0.0.1")).toMatchObject({ ok: false, reason: { kind: "private" } });
    expect(await authorizer({ allow: ["*"] })("[::ffff:7f00:1]")).toMatchObject({ ok: false, reason: { kind: "private" } });
    expect(await authorizer({ allow: ["127.0.0.1"] })("127.0.0.1")).toMatchObject({ ok: true, address: "127.0.0.1", sniRequired: false });
    expect(await authorizer({ allow: ["*"] })("8.8.8.8")).toMatchObject({ ok: true, sniRequired: false });
  });

  test("host.silo.internal is the host's loopback with hostAccess, and an ordinary name without", async () => {
    expect(await authorizer({ hostAccess: true })("host.silo.internal")).toMatchObject({ ok: true, host: "host.silo.internal", address: "127.0.0.1", sniRequired: false });
    expect(await authorizer({})("host.silo.internal")).toMatchObject({ ok: false, status: 403, reason: { kind: "not-allowed" } });
    expect(await authorizer({ hostAccess: true, deny: ["host.silo.internal"] })("host.silo.internal")).toMatchObject({ ok: false, reason: { kind: "denied" } });
  });

  test("a name that does not resolve is a 502, not a denial", async () => {
    expect(await authorizer({ allow: ["*"] })("nowhere.test")).toMatchObject({ ok: false, status: 502 });
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
  test("deny list: names the pattern", () => {
    expect(denyMessage("node", "x.evil.test", { kind: "denied", pattern: "*.evil.test" })).toContain(
      "silo config network remove node *.evil.test",
    );
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
