import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkSchema, closest } from "../../../src/config/_schema-dsl.ts";
import { loadTomlData, validateOrThrow } from "../../../src/config/load.ts";
import { siloConfigSchema } from "../../../src/config/schema.ts";
import { tmp } from "../../helpers/silo.ts";

const file = (text: string) => {
  const f = join(tmp(), "silo.toml");
  writeFileSync(f, text);
  return f;
};

describe("silo.toml schema", () => {
  test("a valid file has no issues", () => {
    const cfg = {
      tools: { python: "3.11-slim" },
      passEnv: ["GITHUB_TOKEN"],
      mount: { exclude: [".env"] },
      overrides: { node: { network: { hostAccess: true, proxy: { allow: ["*.github.com"], deny: ["evil.com"] } }, ports: [{ host: 3000, guest: 3000 }] } },
      cache: { rootfs: { maxSizeMB: 8192, maxAgeDays: 60 } },
      images: { mirrors: { "docker.io": "http://127.0.0.1:5000" } },
    };
    expect(checkSchema(cfg, siloConfigSchema)).toEqual([]);
  });
  test("an unknown key names its path and suggests the closest known key", () => {
    const issues = checkSchema({ passEnvs: ["A"], overrides: { node: { netwrok: {} } } }, siloConfigSchema);
    expect(issues.map((i) => i.message)).toEqual([
      "unknown key `passEnvs` (did you mean `passEnv`?)",
      "unknown key `overrides.node.netwrok` (did you mean `overrides.node.network`?)",
    ]);
  });
  test("a wrong type says what was expected", () => {
    const issues = checkSchema({ passEnv: "HOME", overrides: { node: { ports: [{ host: "80", guest: 80 }] } } }, siloConfigSchema);
    expect(issues[0]!.message).toBe('passEnv: expected an array of strings, got string ("HOME")');
    expect(issues[1]!.message).toMatch(/^overrides\.node\.ports\[0\]\.host: expected an integer, got string/);
  });
  test("closest ignores words too far away", () => {
    expect(closest("zzzzzz", ["passEnv", "tools"])).toBeUndefined();
    expect(closest("TOOLS", ["passEnv", "tools"])).toBe("tools");
  });
});

describe("loading", () => {
  test("a TOML syntax error names file:line:col", async () => {
    const f = file('tools = { python = "3.11" }\n\npassEnv = ["A",\nmount = 3\n');
    const err = await loadTomlData(f).catch((e) => e);
    expect(err.message).toMatch(new RegExp(`^${f.replace(/[.]/g, "\\.")}:4:\\d+: invalid TOML`));
    expect(err.exitCode).toBe(125);
  });
  test("schema problems are reported with file:line:col of the key", async () => {
    const f = file('[tools]\npython = "3.11-slim"\n\n[mount]\n  exclud = [".env"]\n');
    const data = await loadTomlData(f);
    expect(() => validateOrThrow(f, data, siloConfigSchema)).toThrow(`${f}:5:3: unknown key \`mount.exclud\` (did you mean \`mount.exclude\`?)`);
  });
  test("c12 never loads code: a .config/silo.ts next to a missing silo.toml is not executed", async () => {
    const dir = tmp();
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, ".config"));
    const marker = join(dir, "ran");
    writeFileSync(join(dir, ".config", "silo.ts"), `require("fs").writeFileSync(${JSON.stringify(marker)}, "x"); export default { passEnv: ["X"] };`);
    writeFileSync(join(dir, "silo.config.ts"), `require("fs").writeFileSync(${JSON.stringify(marker)}, "x"); export default {};`);
    expect(await loadTomlData(join(dir, "silo.toml"))).toEqual({});
    writeFileSync(join(dir, "silo.toml"), 'passEnv = ["A"]\n');
    expect(await loadTomlData(join(dir, "silo.toml"))).toEqual({ passEnv: ["A"] });
    expect(await Bun.file(marker).exists()).toBe(false);
  });
});
