/**
 * joinUnder: the join-time barrier for names from data (THREATS.md invariants 3 and 6). Whatever
 * validated a name before, the path it makes stays below its SILO_HOME directory.
 */
import { describe, expect, test } from "bun:test";
import { join, relative } from "node:path";
import { componentIssue, joinUnder } from "../../../src/core/paths.ts";

describe("joinUnder", () => {
  const base = "/home/u/.silo/cache";
  test("positive control: a naive join of a hostile cache name leaves SILO_HOME", () => {
    const naive = join(base, "python", "../../../../tmp/victim-dir");
    expect(naive).toBe("/home/tmp/victim-dir");
    expect(relative(base, naive).startsWith("..")).toBe(true);
  });
  for (const bad of ["..", "../../../../tmp/victim-dir", "a/b", "/abs", "a\0b", ".", ""])
    test(`refuses ${JSON.stringify(bad)} in any position`, () => {
      expect(componentIssue(bad)).not.toBeNull();
      expect(() => joinUnder(base, bad)).toThrow(/refusing a path under/);
      expect(() => joinUnder(base, "python", bad)).toThrow(/refusing a path under/);
      expect(() => joinUnder(base, bad, "pip")).toThrow(/refusing a path under/);
    });
  test("ordinary names join as join() does", () => {
    expect(joinUnder(base, "python", "pip")).toBe(`${base}/python/pip`);
    expect(joinUnder(`${base}/`, ".lsp", "node", "abc")).toBe(`${base}/.lsp/node/abc`);
    expect(componentIssue("..a")).toBeNull(); // a name, not the parent
  });
});
