import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dockerCredentials, parseChallenge } from "../../../src/image/auth.ts";
import { isPlainHttpAllowed, planEndpoints } from "../../../src/image/endpoints.ts";
import { parseImageRef } from "../../../src/image/ref.ts";
import { tmp } from "../../helpers/silo.ts";

describe("parseChallenge", () => {
  test("Docker Hub's bearer challenge", () => {
    const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull"');
    expect(c).toEqual({ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/python:pull" } });
  });
  test("tokens, escapes and spaces", () => {
    expect(parseChallenge('Basic realm="a \\"b\\"", charset=UTF-8')).toEqual({ scheme: "basic", params: { realm: 'a "b"', charset: "UTF-8" } });
  });
  test("garbage", () => expect(parseChallenge("")).toBeNull());
});

describe("dockerCredentials", () => {
  const dir = tmp();
  const cfg = join(dir, "config.json");
  writeFileSync(
    cfg,
    JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("hubuser:hubpass").toString("base64") },
        "registry.example.com:5000": { username: "u", password: "p:with:colons" },
        "other.example.com": { auth: Buffer.from("a:b:c").toString("base64") },
      },
      credsStore: "desktop",
    }),
  );
  test("Docker Hub under its legacy key", () => expect(dockerCredentials("docker.io", cfg)).toEqual({ username: "hubuser", password: "hubpass" }));
  test("username/password fields", () => expect(dockerCredentials("registry.example.com:5000", cfg)).toEqual({ username: "u", password: "p:with:colons" }));
  test("auth with colons in the password", () => expect(dockerCredentials("other.example.com", cfg)).toEqual({ username: "a", password: "b:c" }));
  test("unknown host and missing file", () => {
    expect(dockerCredentials("ghcr.io", cfg)).toBeUndefined();
    expect(dockerCredentials("ghcr.io", join(dir, "nope.json"))).toBeUndefined();
  });
});

describe("endpoints", () => {
  test("mirror first, then Docker Hub's API host", () => {
    const eps = planEndpoints(parseImageRef("python:3.11"), { "docker.io": "http://127.0.0.1:5000" }, []);
    expect(eps.map((e) => `${e.base}/v2/${e.repository}`)).toEqual(["http://127.0.0.1:5000/v2/library/python", "https://registry-1.docker.io/v2/library/python"]);
    expect(eps[0]!.mirror).toBe(true);
  });
  test("a mirror path prefix namespaces the repository", () => {
    const eps = planEndpoints(parseImageRef("python"), { "docker.io": ["https://harbor.corp/v2/hub-proxy/"] }, []);
    expect(eps[0]!.repository).toBe("hub-proxy/library/python");
  });
  test("plain HTTP only for loopback or insecure hosts", () => {
    expect(() => planEndpoints(parseImageRef("python"), { "docker.io": "http://mirror.corp:5000" }, [])).toThrow(/plain HTTP/);
    expect(planEndpoints(parseImageRef("python"), { "docker.io": "http://mirror.corp:5000" }, ["mirror.corp:5000"])[0]!.base).toBe("http://mirror.corp:5000");
    expect(isPlainHttpAllowed("127.0.0.7:80", [])).toBe(true);
    expect(isPlainHttpAllowed("[::1]:5000", [])).toBe(true);
    expect(isPlainHttpAllowed("localhost", [])).toBe(true);
    expect(isPlainHttpAllowed("127.0.0.1.evil.com", [])).toBe(false);
    expect(isPlainHttpAllowed("registry.corp", ["registry.corp"])).toBe(true);
  });
  test("a loopback registry falls back from https to http", () => {
    const eps = planEndpoints(parseImageRef("127.0.0.1:5000/library/busybox"), {}, []);
    expect(eps.map((e) => e.base)).toEqual(["https://127.0.0.1:5000", "http://127.0.0.1:5000"]);
  });
});
