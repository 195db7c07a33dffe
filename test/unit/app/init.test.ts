import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { checkSchema } from "../../../src/config/_schema-dsl.ts";
import { siloConfigSchema } from "../../../src/config/schema.ts";
import { detectTools, renderSiloToml, writeProject } from "../../../src/app/init.ts";
import { loadRegistry } from "../../../src/registry/index.ts";
import { homePaths } from "../../../src/core/paths.ts";
import { tmp } from "../../helpers/silo.ts";

const registry = async () => (await loadRegistry(homePaths(tmp()))).tools.values();

describe("silo init", () => {
  const cases: [string[], string[]][] = [
    [["package.json"], ["node"]],
    [["requirements.txt"], ["python"]],
    [["pyproject.toml", "package.json"], ["node", "python"]],
    [["Cargo.toml"], ["rust"]],
    [["go.mod"], ["go"]],
    [["deno.json"], ["deno"]],
    [["notebook.ipynb"], ["jupyter"]],
    [["README.md"], []],
  ];
  for (const [files, tools] of cases)
    test(`detects ${tools.join(", ") || "nothing"} from ${files.join(", ")}`, async () => {
      const dir = tmp();
      for (const f of files) writeFileSync(join(dir, f), "");
      expect(detectTools(dir, await registry()).sort()).toEqual(tools);
    });

  test("renders a silo.toml that passes the schema", () => {
    const text = renderSiloToml({
      tools: { node: "22-slim", python: "3.12-slim" },
      ports: [{ tool: "node", host: 3000, guest: 3000 }],
      passEnv: ["NPM_TOKEN"],
      passFiles: ["~/.npmrc"],
      exclude: [".env"],
      allow: [{ tool: "node", host: "api.example.com" }],
    });
    const data = parse(text);
    expect(checkSchema(data, siloConfigSchema)).toEqual([]);
    expect(data).toMatchObject({
      tools: { node: "22-slim", python: "3.12-slim" },
      passEnv: ["NPM_TOKEN"],
      overrides: { node: { ports: [{ host: 3000, guest: 3000 }], network: { proxy: { allow: ["api.example.com"] } } } },
    });
  });

  test("adds .silo/ to .gitignore once and refuses to overwrite silo.toml", () => {
    const dir = tmp();
    writeFileSync(join(dir, ".gitignore"), "node_modules");
    expect(writeProject(dir, "[tools]\n").gitignore).toBe(true);
    expect(readFileSync(join(dir, ".gitignore"), "utf8")).toBe("node_modules\n# silo build layers\n.silo/\n");
    expect(() => writeProject(dir, "[tools]\n")).toThrow(/already exists/);
    expect(writeProject(dir, "[tools]\n", true).gitignore).toBe(false);
  });
});
