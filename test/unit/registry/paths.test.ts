/**
 * Registry entries, plugins and silo.toml: every field that becomes part of a host path (tool names,
 * cache names, versions, plugin names, `requires`, `detect`) is one safe path component, checked at
 * validation (THREATS.md invariants 3 and 6; the barrier at join time is test/unit/core/paths.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { checkSchema } from "../../../src/config/_schema-dsl.ts";
import { siloConfigSchema } from "../../../src/config/schema.ts";
import { plugins } from "../../../src/plugin/loaders.ts";
import { validateToolDef } from "../../../src/registry/index.ts";

const BAD = ["..", "../../../../tmp/victim-dir", "a/b", "/abs", "a\0b", ".", ""];
const entry = (over: Record<string, unknown> = {}) => ({
  name: "t",
  description: "d",
  image: "docker.io/me/t",
  shims: ["t"],
  versions: { default: "1", available: ["1"] },
  ...over,
});

describe("registry entry fields that name host paths", () => {
  test("a good entry passes", () => {
    expect(validateToolDef(entry({ cache: [{ name: "pip", path: "/root/.cache/pip" }], requires: ["node"], plugin: "python", detect: ["a/b.toml"] }), "t.toml")).toEqual([]);
  });
  const fields: [string, (v: string) => Record<string, unknown>][] = [
    ["name", (v) => ({ name: v })],
    ["cache[].name", (v) => ({ cache: [{ name: v, path: "/root/.cache/x" }] })],
    ["versions.default", (v) => ({ versions: { default: v, available: [v] } })],
    ["versions.available", (v) => ({ versions: { default: "1", available: ["1", v] } })],
    ["versions.labels (value)", (v) => ({ versions: { default: "1", available: ["1"], labels: { latest: v } } })],
    ["versions.labels (key)", (v) => ({ versions: { default: "1", available: ["1"], labels: { [v]: "1" } } })],
    ["plugin", (v) => ({ plugin: v })],
    ["requires", (v) => ({ requires: [v] })],
  ];
  for (const [field, make] of fields)
    for (const bad of BAD)
      test(`${field} = ${JSON.stringify(bad)} is rejected`, () => {
        expect(validateToolDef(entry(make(bad)), "t.toml").length).toBeGreaterThan(0);
      });
  for (const bad of ["../../etc", "relative/path", "/root/../../etc", "/a\0b", ""])
    test(`cache[].path / workdir = ${JSON.stringify(bad)} is rejected`, () => {
      expect(validateToolDef(entry({ cache: [{ name: "c", path: bad }] }), "t.toml").length).toBeGreaterThan(0);
      expect(validateToolDef(entry({ workdir: bad }), "t.toml").length).toBeGreaterThan(0);
    });
  for (const bad of ["../x", "/etc/passwd", "a\0b", "a/../../b"])
    test(`detect = ${JSON.stringify(bad)} is rejected`, () => {
      expect(validateToolDef(entry({ detect: [bad] }), "t.toml").length).toBeGreaterThan(0);
    });
  test("the message names the field and the value, NUL shown as \\0", () => {
    expect(validateToolDef(entry({ cache: [{ name: "a\0b", path: "/c" }] }), "t.toml")).toEqual(["cache[0].name: `a\\0b` is not a valid cache name (letters, digits, . _ -)"]);
  });
});

describe("silo.toml fields that name tools", () => {
  for (const bad of BAD) {
    test(`[tools] key / value ${JSON.stringify(bad)} and [overrides] key are rejected`, () => {
      expect(checkSchema({ tools: { [bad]: "1" } }, siloConfigSchema).length).toBeGreaterThan(0);
      expect(checkSchema({ tools: { python: bad } }, siloConfigSchema).length).toBeGreaterThan(0);
      expect(checkSchema({ overrides: { [bad]: {} } }, siloConfigSchema).length).toBeGreaterThan(0);
      expect(checkSchema({ overrides: { python: { version: bad } } }, siloConfigSchema).length).toBeGreaterThan(0);
    });
  }
  test("ordinary names and versions pass", () => {
    expect(checkSchema({ tools: { python: "3.11-slim", "aws-cli": "latest" }, overrides: { node: { version: "22-slim" } } }, siloConfigSchema)).toEqual([]);
  });
});

describe("plugins", () => {
  for (const [name, p] of Object.entries(plugins))
    test(`${name}: its names (cache, shims, detect) pass the registry's checks`, () => {
      expect(p.name).toBe(name);
      expect(validateToolDef(entry({ name, shims: p.shims, cache: p.cache, detect: p.detect, lsp: p.lsp }), `${name}.toml`)).toEqual([]);
    });
});
