// The dependency rules of the layout (README "Development"), checked by parsing import specifiers:
// main → cli → app → {config, registry, plugin, image, cache, runner, net, lsp} → core.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { repoRoot } from "../helpers/silo.ts";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}
const area = (file: string) => {
  const rel = relative(repoRoot, file);
  if (rel.startsWith("plugins/")) return "plugins";
  if (rel.startsWith("src/runner/drivers/")) return "drivers";
  const m = /^src\/([^/]+)\//.exec(rel);
  return m ? m[1]! : rel.replace(/^src\//, "").replace(/\.ts$/, "");
};

/** What each area may import (besides itself and npm packages). */
const ALLOWED: Record<string, string[]> = {
  main: ["core", "cli", "app", "runner", "drivers", "version"],
  cli: ["core", "app", "config", "registry", "image", "cache", "runner", "net", "lsp", "plugin", "version"],
  app: ["core", "config", "registry", "plugin", "image", "cache", "runner", "drivers", "net", "lsp", "version"],
  config: ["core"],
  registry: ["core", "config"],
  plugin: ["core", "config", "plugins"],
  plugins: ["plugin"],
  image: ["core", "cache"],
  cache: ["core", "runner"],
  runner: ["core", "drivers"], // the static loader map in runner/driver.ts
  drivers: ["core", "runner", "net"],
  net: ["core", "runner"],
  lsp: ["core"],
  core: [],
  version: [],
  types: [],
};

describe("architecture", () => {
  const all = [...files(join(repoRoot, "src")), ...files(join(repoRoot, "plugins"))];
  for (const f of all) {
    const from = area(f);
    test(`${relative(repoRoot, f)} imports only what ${from} may`, () => {
      const src = readFileSync(f, "utf8");
      const specs = [...src.matchAll(/(?:from\s+|import\()\s*"(\.[^"]+)"/g)].map((m) => m[1]!);
      const bad = specs
        .map((s) => ({ s, to: area(resolve(dirname(f), s)) }))
        .filter(({ to }) => to !== from && !(ALLOWED[from] ?? []).includes(to) && !to.endsWith(".toml") && !to.startsWith("registry/"));
      expect(bad.map((b) => `${b.s} (${b.to})`)).toEqual([]);
    });
  }
  test("a driver never reads configuration", () => {
    for (const f of all.filter((f) => area(f) === "drivers")) expect(readFileSync(f, "utf8")).not.toMatch(/config\//);
  });
});
