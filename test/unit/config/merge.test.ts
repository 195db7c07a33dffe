import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../../src/core/paths.ts";
import { mergeConfig } from "../../../src/config/merge.ts";
import { loadProject, parseShims, parseSizeMB, provenance, resolveTool } from "../../../src/config/resolve.ts";
import type { ToolDef } from "../../../src/config/schema.ts";
import { trust } from "../../../src/config/trust.ts";
import { tmp } from "../../helpers/silo.ts";

const def: ToolDef = {
  name: "node",
  description: "n",
  image: "docker.io/library/node",
  versions: { default: "22-slim", available: ["22-slim", "20-slim"] },
  shims: ["node", "npm"],
  env: { A: "registry", B: "registry" },
  network: { proxy: { allow: ["registry.npmjs.org"] } },
  lsp: { command: ["tsls", "--stdio"] },
};

describe("mergeConfig", () => {
  test("the first layer wins; tables merge deeply; lists union with the winner first", () => {
    expect(mergeConfig({ a: 1, n: { allow: ["p"] } }, { a: 2, b: 3, n: { allow: ["r", "p"], deny: ["d"] } })).toEqual({
      a: 1,
      b: 3,
      n: { allow: ["p", "r"], deny: ["d"] },
    });
  });
  test("command lines and shim sets replace rather than append", () => {
    expect(mergeConfig({ lsp: { command: ["x"] }, shims: ["a"] }, { lsp: { command: ["y", "z"] }, shims: ["b"] })).toEqual({
      lsp: { command: ["x"] },
      shims: ["a"],
    });
  });
});

function setup(global: string, project: string) {
  const homeDir = tmp();
  writeFileSync(join(homeDir, "silo.toml"), global);
  const proj = tmp();
  writeFileSync(join(proj, "silo.toml"), project);
  mkdirSync(join(proj, "src", "deep"), { recursive: true });
  return { home: homePaths(homeDir), proj };
}

describe("registry → global → project", () => {
  test("project beats global beats registry; the project file is found from a subdirectory", async () => {
    const { home, proj } = setup(
      '[env]\nA = "global"\nB = "global"\n[overrides.node.network.proxy]\nallow = ["global.example"]\n',
      '[env]\nA = "project"\n[overrides.node.network.proxy]\nallow = ["project.example"]\ndeny = ["bad.example"]\n',
    );
    trust(home, join(proj, "silo.toml"));
    const p = await loadProject(join(proj, "src", "deep"), home);
    expect(p.root).toBe(proj);
    const t = resolveTool(p, def);
    expect(t.env).toMatchObject({ A: "project", B: "global" });
    expect(t.network.allow).toEqual(["project.example", "global.example", "registry.npmjs.org"]);
    expect(t.network.deny).toEqual(["bad.example"]);
    expect(t.image).toBe("docker.io/library/node:22-slim");
  });
  test("a pinned version in [tools] picks the image tag", async () => {
    const { home, proj } = setup("", '[tools]\nnode = "20-slim"\n');
    const t = resolveTool(await loadProject(proj, home), def);
    expect(t.version).toBe("20-slim");
    expect(t.image).toBe("docker.io/library/node:20-slim");
  });
  test("config show knows where each value came from", async () => {
    const { home, proj } = setup('[env]\nB = "global"\n', '[env]\nA = "project"\n');
    const rows = provenance(await loadProject(proj, home), { def });
    const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
    expect(byKey["env.A"]).toEqual({ key: "env.A", value: "project", from: join(proj, "silo.toml") });
    expect(byKey["env.B"]!.from).toBe("global silo.toml");
    expect(byKey["overrides.node.network.proxy.allow"]!.from).toBe("registry:node");
  });
});

describe("helpers", () => {
  test("shims parse as name → command", () => {
    expect(parseShims(["python", "ipython:python -m IPython"])).toEqual({ python: ["python"], ipython: ["python", "-m", "IPython"] });
  });
  test("sizes", () => {
    expect(parseSizeMB("2g")).toBe(2048);
    expect(parseSizeMB("512m")).toBe(512);
    expect(parseSizeMB("1.5G")).toBe(1536);
  });
});
