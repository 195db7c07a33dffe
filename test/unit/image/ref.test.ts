import { describe, expect, test } from "bun:test";
import { familiarName, parseImageRef } from "../../../src/image/ref.ts";

describe("parseImageRef", () => {
  const cases: [string, string, Partial<ReturnType<typeof parseImageRef>>][] = [
    ["python", "docker.io/library/python:latest", { registry: "docker.io", repository: "library/python", tag: "latest" }],
    ["python:3.11-slim", "docker.io/library/python:3.11-slim", { tag: "3.11-slim" }],
    ["bitnami/redis:7", "docker.io/bitnami/redis:7", { repository: "bitnami/redis" }],
    ["docker.io/python:3.12", "docker.io/library/python:3.12", {}],
    ["index.docker.io/library/node:22", "docker.io/library/node:22", { registry: "docker.io" }],
    ["ghcr.io/owner/repo/sub:v1.2", "ghcr.io/owner/repo/sub:v1.2", { registry: "ghcr.io", repository: "owner/repo/sub" }],
    ["localhost/app", "localhost/app:latest", { registry: "localhost" }],
    ["127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest", { registry: "127.0.0.1:5000" }],
    [`alpine@sha256:${"a".repeat(64)}`, `docker.io/library/alpine@sha256:${"a".repeat(64)}`, { tag: undefined, digest: `sha256:${"a".repeat(64)}` }],
    [`quay.io/x/y:1@sha256:${"b".repeat(64)}`, `quay.io/x/y:1@sha256:${"b".repeat(64)}`, { tag: "1" }],
  ];
  for (const [input, canonical, parts] of cases)
    test(input, () => {
      const r = parseImageRef(input);
      expect(r.canonical).toBe(canonical);
      expect(r).toMatchObject(parts);
    });

  for (const badRef of ["", "Python:3", "python:", "python@sha256:abc", "a//b", "python:-x", "ex ample"])
    test(`rejects ${JSON.stringify(badRef)}`, () => {
      expect(() => parseImageRef(badRef)).toThrow(/invalid image reference/);
    });

  test("familiar names", () => {
    expect(familiarName(parseImageRef("python:3.11-slim"))).toBe("python:3.11-slim");
    expect(familiarName(parseImageRef("bitnami/redis:7"))).toBe("bitnami/redis:7");
    expect(familiarName(parseImageRef("ghcr.io/o/r:1"))).toBe("ghcr.io/o/r:1");
  });
});
