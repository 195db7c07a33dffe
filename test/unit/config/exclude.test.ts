import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { checkExcludePattern, matchesExclude, parseExcludePattern } from "../../../src/config/exclude.ts";
import { loadTomlData, validateOrThrow } from "../../../src/config/load.ts";
import { siloConfigSchema } from "../../../src/config/schema.ts";
import { tmp } from "../../helpers/silo.ts";

/** Which of `paths` (a trailing slash marks a directory) the pattern hides. */
function hides(pattern: string, paths: string[]): string[] {
  const p = parseExcludePattern(pattern);
  return paths.filter((x) => {
    const dir = x.endsWith("/");
    const rel = x.replace(/\/$/, "");
    return p.regex ? matchesExclude(p, rel, dir) : p.path === rel && (!p.dirOnly || dir);
  });
}

const TREE = ["k.pem", "a/k.pem", "a/b/c.pem", "a/pem", "x.pem.bak", ".env", "a/.env", "a/b/.env", "secrets/", "a/secrets/", "a/secrets", "logs/", "logs/x.log", "logs/d/y.log", "build/", "build/k.key", "a/build/k.key"];

describe("gitignore-style exclude patterns", () => {
  test("a slash-less glob matches a name at any depth; `*` never crosses `/`", () => {
    expect(hides("*.pem", TREE)).toEqual(["k.pem", "a/k.pem", "a/b/c.pem"]);
    expect(hides("?.pem", TREE)).toEqual(["k.pem", "a/k.pem", "a/b/c.pem"]);
    expect(hides("a/*.pem", TREE)).toEqual(["a/k.pem"]);
  });

  test("`**/` spans any depth, `/**` everything inside, `/**/` zero or more directories", () => {
    expect(hides("**/.env", TREE)).toEqual([".env", "a/.env", "a/b/.env"]);
    expect(hides("logs/**", TREE)).toEqual(["logs/x.log", "logs/d/y.log"]);
    expect(hides("a/**/*.pem", TREE)).toEqual(["a/k.pem", "a/b/c.pem"]);
    expect(hides("**/build/*.key", TREE)).toEqual(["build/k.key", "a/build/k.key"]);
  });

  test("a leading slash anchors at the root; a trailing slash means directories only", () => {
    expect(hides("/*.pem", TREE)).toEqual(["k.pem"]);
    expect(hides("/build/*.key", TREE)).toEqual(["build/k.key"]);
    expect(hides("secret[s]/", TREE)).toEqual(["secrets/", "a/secrets/"]);
  });

  test("classes, negated classes and escapes", () => {
    expect(hides("[kc].pem", TREE)).toEqual(["k.pem", "a/k.pem", "a/b/c.pem"]);
    expect(hides("[!k].pem", TREE)).toEqual(["a/b/c.pem"]);
    expect(hides("[a-c].pem", TREE)).toEqual(["a/b/c.pem"]);
    expect(hides("\\*.pem", ["*.pem", "k.pem"])).toEqual(["*.pem"]);
    expect(hides("x.pem*", TREE)).toEqual(["x.pem.bak"]);
  });

  test("globs agree with git's own matcher (git check-ignore) on a tree", () => {
    const dir = tmp("silo-gitignore-");
    const tree = [...TREE.filter((t) => t !== "a/secrets"), "[x].txt", "ab", "a-b", "]x", "b/secrets"]; // a/secrets/ is the directory here
    for (const t of tree) {
      if (t.endsWith("/")) mkdirSync(join(dir, t), { recursive: true });
      else {
        mkdirSync(dirname(join(dir, t)), { recursive: true });
        writeFileSync(join(dir, t), "");
      }
    }
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, GIT_CONFIG_NOSYSTEM: "1" };
    expect(Bun.spawnSync(["git", "init", "-q", dir], { env }).exitCode).toBe(0);
    const globs = ["*.pem", "?.pem", "a/*.pem", "**/.env", "logs/**", "a/**/*.pem", "**/build/*.key", "/*.pem", "/build/*.key", "secret[s]/", "[kc].pem", "[!k].pem", "[a-c].pem", "x.pem*", "a[-]b", "\\[x\\].txt", "[]]x", "*/k.pem", "*s/", "**"];
    const rels = tree.map((t) => t.replace(/\/$/, ""));
    for (const g of globs) {
      writeFileSync(join(dir, ".gitignore"), `${g}\n`);
      const r = Bun.spawnSync(["git", "check-ignore", "--no-index", "--stdin", "-v", "-n"], { cwd: dir, env, stdin: Buffer.from(rels.join("\n") + "\n") });
      const byGit = new Set(r.stdout.toString().split("\n").filter((l) => l && !l.startsWith("::")).map((l) => l.split("\t")[1]!));
      const p = parseExcludePattern(g);
      // git also reports what is inside an ignored directory; silo hides that directory, which covers it.
      const ours = tree.filter((t) => {
        const parts = t.replace(/\/$/, "").split("/");
        return parts.some((_, i) => matchesExclude(p, parts.slice(0, i + 1).join("/"), i < parts.length - 1 || t.endsWith("/")));
      });
      expect({ g, hidden: ours.map((t) => t.replace(/\/$/, "")) }).toEqual({ g, hidden: rels.filter((t) => byGit.has(t)) });
    }
  });

  test("a pattern without glob characters is a path from the project root", () => {
    expect(parseExcludePattern(".env")).toMatchObject({ path: ".env", dirOnly: false });
    expect(parseExcludePattern("/secrets/")).toMatchObject({ path: "secrets", dirOnly: true });
    expect(parseExcludePattern("./config//prod.json")).toMatchObject({ path: "config/prod.json" });
    expect(parseExcludePattern("odd\\name")).toMatchObject({ path: "oddname" });
    expect(hides(".env", TREE)).toEqual([".env"]);
    expect(hides("secrets/", TREE)).toEqual(["secrets/"]);
  });

  test("where a walk may start: the literal directories before the first glob", () => {
    expect(parseExcludePattern("certs/*.pem").base).toBe("certs");
    expect(parseExcludePattern("/a/b/**/x").base).toBe("a/b");
    expect(parseExcludePattern("*.pem").base).toBe("");
    expect(parseExcludePattern("**/.env").base).toBe("");
    expect(parseExcludePattern("a/*/c/*.pem").base).toBe("a");
  });

  test("unsupported patterns are refused with the reason", () => {
    const refused = {
      "!k.pem": /negation/,
      "#x": /comment/,
      "": /empty/,
      "  ": /empty/,
      "/": /project root/,
      "../up": /`\.\.`/,
      "a/../b": /`\.\.`/,
      "a/./*.pem": /`\.`/,
      "[abc.pem": /not closed/,
      "x\\": /lone/,
    };
    for (const [p, why] of Object.entries(refused)) expect(checkExcludePattern(p)).toMatch(why);
    for (const p of ["*.pem", "\\#x", "\\!x", ".env", "a\\\\"]) expect(checkExcludePattern(p)).toBeNull();
  });

  test("silo.toml: an unsupported pattern is a config error naming the file, the line and the pattern", async () => {
    const f = join(tmp(), "silo.toml");
    writeFileSync(f, `tools = ["python"]\n\n[mount]\nexclude = ["*.pem", "!public.pem"]\n`);
    const data = await loadTomlData(f);
    expect(() => validateOrThrow(f, data, siloConfigSchema)).toThrow(new RegExp(`${f}:4:1: mount\\.exclude\\[1\\]: \`!public\\.pem\` is not a supported exclude pattern: \`!\` \\(negation\\)`));
  });
});
