import { describe, expect, test } from "bun:test";
import { decideHost, isHostAllowed, matchPattern, normalizeHost, validatePattern } from "../../../src/net/allowlist.ts";

describe("validatePattern", () => {
  test.each(["api.example.com", "*.github.com", "*", "localhost", "127.0.0.1", "::1", "[fd00::1]", "xn--bcher-kva.example", "a-b.c", "example.com.", "10.0.0.0/8", "fd00::/8", "[fd00::]/8", "127.1"])(
    "%p is valid",
    (p) => expect(validatePattern(p)).toBeNull(),
  );
  test.each([
    ["*.com", "top-level domain"],
    ["*.localhost", "top-level domain"],
    ["*.*.example.com", "one leading"],
    ["api.*.example.com", "may only"],
    ["*example.com", "may only"],
    ["", "empty"],
    ["https://example.com", "URL"],
    ["example.com:443", "ports"],
    ["example.com/path", "paths"],
    ["10.0.0.0/33", "not an address range"],
    ["fd00::/129", "not an address range"],
    ["10.0.0.0/8/8", "paths"],
    ["example.123", "not a valid"],
    ["*.0.1", "not a valid"],
    ["1.2.3.4.5", "not a valid"],
    ["exa mple.com", "not a valid"],
    ["-bad.example.com", "not a valid"],
    ["under_score.example.com", "not a valid"],
  ])("%p is rejected (%s)", (p, why) => {
    expect(validatePattern(p)).toContain(why);
  });
});

describe("matchPattern", () => {
  test("exact names match only themselves, case and trailing dot aside", () => {
    expect(matchPattern(normalizeHost("API.Example.com."), "api.example.com")).toBe(true);
    expect(matchPattern("x.api.example.com", "api.example.com")).toBe(false);
    expect(matchPattern("example.com", "api.example.com")).toBe(false);
  });
  test("*.domain matches subdomains only, at any depth", () => {
    expect(matchPattern("api.github.com", "*.github.com")).toBe(true);
    expect(matchPattern("a.b.github.com", "*.github.com")).toBe(true);
    expect(matchPattern("github.com", "*.github.com")).toBe(false);
    expect(matchPattern("evilgithub.com", "*.github.com")).toBe(false);
    expect(matchPattern("github.com.evil.test", "*.github.com")).toBe(false);
  });
  test("* matches every name, but no IP literal (an address must be listed)", () => {
    expect(matchPattern("anything.test", "*")).toBe(true);
    expect(matchPattern(normalizeHost("10.1.2.3"), "*")).toBe(false);
    expect(matchPattern(normalizeHost("[::1]"), "*")).toBe(false);
  });
  test("a wildcard never matches an address", () => {
    expect(matchPattern(normalizeHost("127.0.0.1"), "*.0.1")).toBe(false);
  });
  test("ranges match the addresses inside them, in any spelling", () => {
    expect(matchPattern(normalizeHost("10.255.0.1"), "10.0.0.0/8")).toBe(true);
    expect(matchPattern(normalizeHost("11.0.0.1"), "10.0.0.0/8")).toBe(false);
    expect(matchPattern(normalizeHost("0xa.1"), "10.0.0.0/8")).toBe(true);
    expect(matchPattern(normalizeHost("[::ffff:10.0.0.1]"), "10.0.0.0/8")).toBe(true);
    expect(matchPattern(normalizeHost("[fd12::1]"), "fd00::/8")).toBe(true);
    expect(matchPattern(normalizeHost("[fe80::1]"), "fd00::/8")).toBe(false);
    expect(matchPattern(normalizeHost("1.2.3.4"), "1.2.3.4/32")).toBe(true);
    expect(matchPattern(normalizeHost("1.2.3.5"), "1.2.3.4/32")).toBe(false);
    expect(matchPattern(normalizeHost("1.2.3.5"), "1.2.3.4/31")).toBe(true);
    expect(matchPattern("10.0.0.0", "10.0.0.0/8")).toBe(true);
    expect(matchPattern("tenx.test", "10.0.0.0/8")).toBe(false);
  });
  test("IPv4 in every form inet_aton reads is one address; IPv4-mapped IPv6 is its IPv4 address", () => {
    for (const h of ["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001", "127.0.1", "[::ffff:127.0.0.1]", "::ffff:7f00:1", "127.0.0.1."])
      expect(normalizeHost(h)).toBe("127.0.0.1");
    expect(normalizeHost("127.010.0.1")).toBe("127.8.0.1"); // octal, as the resolver reads it
    expect(normalizeHost("1.2.3.4.5")).toBe("1.2.3.4.5"); // no address: decideHost refuses it
  });
  test("IPv6 literals compare in canonical form", () => {
    expect(matchPattern(normalizeHost("[0:0::1]"), "::1")).toBe(true);
    expect(matchPattern(normalizeHost("[FD00::1]"), "fd00:0::1")).toBe(true);
  });
});

describe("decideHost", () => {
  const policy = { allow: ["*", "registry.npmjs.org", "*.pypi.org"], deny: ["*.evil.test", "ads.example.com"] };
  test("deny beats allow, even *", () => {
    expect(decideHost("x.evil.test", policy)).toEqual({ allowed: false, reason: "denied", pattern: "*.evil.test" });
    expect(decideHost("ADS.example.com", policy)).toEqual({ allowed: false, reason: "denied", pattern: "ads.example.com" });
  });
  test("explicit only for an exact pattern", () => {
    expect(decideHost("registry.npmjs.org", policy)).toEqual({ allowed: true, explicit: true });
    expect(decideHost("files.pypi.org", policy)).toEqual({ allowed: true, explicit: false });
    expect(decideHost("other.test", policy)).toEqual({ allowed: true, explicit: false });
  });
  test("nothing allowed by default", () => {
    expect(decideHost("example.com", { allow: [], deny: [] })).toEqual({ allowed: false, reason: "not-allowed" });
    expect(isHostAllowed("example.com", { allow: ["example.org"], deny: [] })).toBe(false);
  });
  test("invalid patterns never match", () => {
    expect(isHostAllowed("example.com", { allow: ["*.com"], deny: [] })).toBe(false);
    expect(isHostAllowed("example.com", { allow: ["https://example.com"], deny: [] })).toBe(false);
  });
  test("an IP literal is matched as written in canonical form", () => {
    expect(decideHost("127.0.0.1", { allow: ["127.0.0.1"], deny: [] })).toEqual({ allowed: true, explicit: true });
    expect(decideHost("[::1]", { allow: ["0::1"], deny: [] })).toEqual({ allowed: true, explicit: true });
    expect(decideHost("127.0.0.2", { allow: ["127.0.0.1"], deny: [] }).allowed).toBe(false);
    expect(decideHost("127.1", { allow: ["127.0.0.1"], deny: [] })).toEqual({ allowed: true, explicit: true });
  });
  test("an IP literal is not allowed by *, and is denied by deny = [\"*\"] or a range", () => {
    expect(decideHost("93.184.216.34", { allow: ["*"], deny: [] })).toEqual({ allowed: false, reason: "not-allowed" });
    expect(decideHost("93.184.216.34", { allow: ["93.184.216.34"], deny: ["*"] })).toEqual({ allowed: false, reason: "denied", pattern: "*" });
    expect(decideHost("93.184.216.34", { allow: ["93.184.216.34"], deny: ["93.184.0.0/16"] })).toEqual({ allowed: false, reason: "denied", pattern: "93.184.0.0/16" });
    expect(decideHost("93.184.216.34", { allow: ["93.184.0.0/16"], deny: [] })).toEqual({ allowed: true, explicit: true });
    expect(decideHost("10.0.0.1", { allow: ["10.0.0.0/8"], deny: [] })).toEqual({ allowed: true, explicit: true });
  });
});
