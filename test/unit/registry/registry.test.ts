import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { homePaths } from "../../../src/core/paths.ts";
import { loadRegistry, resolveVersion, validateToolDef } from "../../../src/registry/index.ts";
import { updateRegistry } from "../../../src/registry/update.ts";
import { repoRoot, tmp } from "../../helpers/silo.ts";

const REQUIRED = ["python", "node", "rust", "go", "deno", "playwright", "cypress", "psql", "jupyter", "aws-cli", "claude-code"];

describe("the shipped registry", () => {
  const files = readdirSync(join(repoRoot, "registry")).filter((f) => f.endsWith(".toml"));
  test("has every tool the product promises", () => {
    expect(files.map((f) => f.replace(".toml", "")).sort()).toEqual([...REQUIRED].sort());
  });
  for (const f of files)
    test(`${f} is valid`, () => {
      expect(validateToolDef(parse(readFileSync(join(repoRoot, "registry", f), "utf8")), f)).toEqual([]);
    });
  test("the embedded copy is the same data (compiled into the binary)", async () => {
    const reg = await loadRegistry(homePaths(tmp()));
    expect(reg.source).toBe("embedded");
    expect([...reg.tools.keys()].sort()).toEqual([...REQUIRED].sort());
    expect(reg.tools.get("python")!.lsp!.command).toEqual(["pyright-langserver", "--stdio"]);
  });
});

describe("validation", () => {
  test("reports a missing key, a bad type and a default that is not available", () => {
    const problems = validateToolDef({ name: "x", image: 3, versions: { default: "2", available: ["1"] }, shims: ["x"], nope: 1 }, "x.toml");
    expect(problems).toEqual([
      "image: expected a string, got number (3)",
      "unknown key `nope`",
      "missing required key `description`",
      "versions.default `2` is not in versions.available",
    ]);
  });
  test("the name must match the file", () => {
    expect(validateToolDef({ name: "y", description: "", image: "i", versions: { default: "1", available: ["1"] }, shims: [] }, "x.toml")).toEqual([
      "name `y` does not match the file name `x.toml`",
    ]);
  });
  test("versions resolve by label, default and as given", () => {
    const def = { name: "p", description: "", image: "i", shims: [], versions: { default: "3.12", available: ["3.12", "3.13"], labels: { latest: "3.13" } } };
    expect(resolveVersion(def)).toBe("3.12");
    expect(resolveVersion(def, "latest")).toBe("3.13");
    expect(resolveVersion(def, "3.13")).toBe("3.13");
  });
});

describe("silo registry update (giget)", () => {
  function gitRepo(files: Record<string, string>) {
    const dir = tmp();
    mkdirSync(join(dir, "registry"));
    for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, "registry", n), t);
    const git = (...a: string[]) => Bun.spawnSync(["git", "-C", dir, ...a], { env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("commit", "-qm", "registry");
    return dir;
  }
  test("an invalid community entry is rejected with its file and reason; the rest load", async () => {
    const good = 'name = "mytool"\ndescription = "d"\nimage = "docker.io/me/mytool"\nshims = ["mytool"]\n[versions]\ndefault = "1"\navailable = ["1"]\n';
    const bad = 'name = "evil"\ndescription = "d"\nimage = "x"\nshims = ["evil"]\nrun_on_host = "curl | sh"\n[versions]\ndefault = "1"\navailable = ["1"]\n';
    const repo = gitRepo({ "mytool.toml": good, "evil.toml": bad, "broken.toml": "name = \n" });
    const home = homePaths(tmp());
    const r = await updateRegistry(home, `git:${repo}`);
    expect(r.accepted).toEqual(["mytool"]);
    expect(r.rejected.map((x) => x.file)).toEqual(["broken.toml", "evil.toml"]);
    expect(r.rejected[1]!.reason).toContain("unknown key `run_on_host`");
    const reg = await loadRegistry(home);
    expect(reg.tools.has("mytool")).toBe(true);
    expect(reg.tools.has("python")).toBe(true); // the embedded registry stays underneath
    expect(reg.source).toBe(`git:${repo}`);
  });
  test("a failed fetch keeps the previous registry", async () => {
    const home = homePaths(tmp());
    const repo = gitRepo({ "mytool.toml": 'name = "mytool"\ndescription = "d"\nimage = "i"\nshims = ["m"]\n[versions]\ndefault = "1"\navailable = ["1"]\n' });
    await updateRegistry(home, `git:${repo}`);
    await expect(updateRegistry(home, `git:${tmp()}/nothing-here`)).rejects.toThrow(/could not fetch the tool registry/);
    expect((await loadRegistry(home)).tools.has("mytool")).toBe(true);
  });
});
