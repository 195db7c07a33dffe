import { describe, expect, test } from "bun:test";
import { decideHost, isHostAllowed, matchPattern, normalizeHost, validatePattern } from "../../../src/net/allowlist.ts";

describe("validatePattern", () => {
  test.each(["api.example.com", "*.github.com", "*", "localhost", "127.0.0.1", "::1", "[fd00::1]", "xn--bcher-kva.example", "a-b.c", "example.com."])(
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
    ["10.0.0.0/8", "ranges"],
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
  test("* matches everything", () => {
    expect(matchPattern("anything.test", "*")).toBe(true);
    expect(matchPattern(normalizeHost("10.1.2.3"), "*")).toBe(true);
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
  });
});
