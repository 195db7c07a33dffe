import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseShims } from "../../../src/config/resolve.ts";
import type { PluginContext } from "../../../src/plugin/api.ts";
import { loadPlugin, plugins } from "../../../src/plugin/loaders.ts";
import { repoRoot, tmp } from "../../helpers/silo.ts";

function ctx(root: string, argv: string[], shims: string[]): PluginContext {
  return {
    projectRoot: root,
    guestCwd: "/workspace",
    argv,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
    shims: parseShims(shims),
    exists: (p) => existsSync(join(root, p)),
  };
}

describe("plugins", () => {
  test("the four plugins load through the built-in map and import only the plugin API", async () => {
    expect(Object.keys(plugins).sort()).toEqual(["go", "node", "python", "rust"]);
    for (const name of Object.keys(plugins)) {
      const p = await loadPlugin(name);
      expect(p!.name).toBe(name);
      expect(p!.detect!.length).toBeGreaterThan(0);
      const src = readFileSync(join(repoRoot, "plugins", name, "index.ts"), "utf8");
      const imports = [...src.matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
      expect(imports).toEqual(["../../src/plugin/api.ts"]);
    }
    expect(await loadPlugin("nope")).toBeUndefined();
    expect(await loadPlugin("constructor")).toBeUndefined();
  });

  test("python activates ./.venv (VIRTUAL_ENV and PATH) only when there is one", async () => {
    const py = (await loadPlugin("python"))!;
    const root = tmp();
    expect(py.env!(ctx(root, ["python"], ["python"]))).toEqual({});
    mkdirSync(join(root, ".venv", "bin"), { recursive: true });
    writeFileSync(join(root, ".venv", "bin", "python"), "");
    expect(py.env!(ctx(root, ["python"], ["python"]))).toEqual({
      VIRTUAL_ENV: "/workspace/.venv",
      PATH: "/workspace/.venv/bin:/usr/local/bin:/usr/bin:/bin",
    });
  });

  test("python also finds ./venv", async () => {
    const root = tmp();
    mkdirSync(join(root, "venv"));
    writeFileSync(join(root, "venv", "pyvenv.cfg"), "");
    expect((await loadPlugin("python"))!.env!(ctx(root, ["python"], ["python"])).VIRTUAL_ENV).toBe("/workspace/venv");
  });

  test("node promotes sibling shims: `silo run node npm test` runs `npm test`", async () => {
    const node = (await loadPlugin("node"))!;
    const shims = ["node", "npm", "npx", "corepack"];
    expect(node.argv!(ctx(tmp(), ["node", "npm", "test"], shims))).toEqual(["npm", "test"]);
    expect(node.argv!(ctx(tmp(), ["node", "script.js", "npm"], shims))).toEqual(["node", "script.js", "npm"]);
    expect(node.argv!(ctx(tmp(), ["node", "-e", "1"], shims))).toEqual(["node", "-e", "1"]);
  });

  test("rust and go promote their tools the same way", async () => {
    expect((await loadPlugin("rust"))!.argv!(ctx(tmp(), ["cargo", "rustc", "--version"], ["cargo", "rustc"]))).toEqual(["rustc", "--version"]);
    expect((await loadPlugin("go"))!.argv!(ctx(tmp(), ["go", "gofmt", "-l", "."], ["go", "gofmt"]))).toEqual(["gofmt", "-l", "."]);
  });

  test("each plugin's default cache mounts are its registry entry's, scopes included (THREATS.md invariant 6)", async () => {
    const { parse } = await import("smol-toml");
    for (const name of Object.keys(plugins)) {
      const def = parse(readFileSync(join(repoRoot, "registry", `${name}.toml`), "utf8")) as { cache?: unknown[] };
      expect({ name, cache: (await loadPlugin(name))!.cache }).toEqual({ name, cache: def.cache as never });
    }
  });
});
