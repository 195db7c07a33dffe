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

describe("cache mounts (THREATS.md invariant 6)", () => {
  const base = { name: "x", description: "", image: "i", versions: { default: "1", available: ["1"] }, shims: ["x"] };
  const check = (cache: unknown) => validateToolDef({ ...base, cache }, "x.toml");
  test("scope is project (the default), shared or login", () => {
    expect(check([{ name: "a", path: "/root/.a" }, { name: "b", path: "/root/.b", scope: "shared" }])).toEqual([]);
    expect(check([{ name: "a", path: "/root/.a", scope: "global" }])).toEqual(["cache[0].scope: unknown scope `global` (project, shared, login)"]);
  });
  test("a name is one safe path component, and not the per-project directory", () => {
    for (const name of ["../x", "a/b", ".hidden", "", "A B"])
      expect(check([{ name, path: "/root/.a" }])).toEqual([`cache[0].name: \`${name}\` is not a valid cache name (letters, digits, . _ -)`]);
    expect(check([{ name: "projects", path: "/root/.a" }])).toEqual(["cache[0].name: `projects` is reserved (per-project caches live there)"]);
  });
  test("a path is absolute and normalized, and not over the project or the kernel's filesystems", () => {
    for (const path of ["root/.a", "/root/../etc"])
      expect(check([{ name: "a", path }])).toEqual([`cache[0].path: \`${path}\` is not an absolute path inside the sandbox`]);
    for (const path of ["/root//a", "/root/./a", "/root/a/", "/"])
      expect(check([{ name: "a", path }])).toEqual([`cache[0].path: \`${path}\` is not a normalized path inside the sandbox`]);
    for (const path of ["/workspace", "/workspace/node_modules", "/proc/self", "/dev/shm", "/sys/x", "/run/silo"])
      expect(check([{ name: "a", path }])).toEqual([`cache[0].path: a cache cannot be mounted under /${path.split("/")[1]}`]);
  });
  test("names and paths are unique; a login file lies inside a project cache", () => {
    expect(check([{ name: "a", path: "/root/.a" }, { name: "a", path: "/root/.b" }])).toEqual(["cache `a` is declared twice"]);
    expect(check([{ name: "a", path: "/root/.a" }, { name: "b", path: "/root/.a" }])).toEqual(["cache path `/root/.a` is declared twice"]);
    expect(check([{ name: "s", path: "/root/.s", scope: "shared" }, { name: "l", path: "/root/.s/token", scope: "login" }])).toEqual([
      'cache `l`: a login file must be directly inside a cache of scope "project" (where the login writes it first)',
    ]);
    // A directory in between could be the sandbox's symbolic link to a host directory.
    expect(check([{ name: "p", path: "/root/.p" }, { name: "l", path: "/root/.p/sub/token", scope: "login" }])).toEqual([
      'cache `l`: a login file must be directly inside a cache of scope "project" (where the login writes it first)',
    ]);
    expect(check([{ name: "p", path: "/root/.p" }, { name: "l", path: "/root/.p/token", scope: "login" }])).toEqual([]);
    expect(check([{ name: "s", path: "/root/.s", scope: "shared" }, { name: "n", path: "/root/.s/a/b" }])).toEqual([
      "cache `n`: a mount inside a shared cache must be directly inside it",
    ]);
  });
  test("the shipped registry shares no cache (npm's _cacache is per project); a shared one needs a comment saying why", () => {
    const shared: string[] = [];
    for (const f of readdirSync(join(repoRoot, "registry")).filter((f) => f.endsWith(".toml"))) {
      const text = readFileSync(join(repoRoot, "registry", f), "utf8");
      const def = parse(text) as { cache?: { name: string; path: string; scope?: string }[] };
      const here = (def.cache ?? []).filter((c) => c.scope === "shared");
      shared.push(...here.map((c) => `${f}:${c.path}`));
      // Every [[cache]] table of scope "shared" comes right after a comment.
      const preceding = [...text.matchAll(/(?:^|\n)([^\n]*)\n\[\[cache\]\]\n(?:[^\n[]+\n)*?scope = "shared"/g)].map((m) => m[1]!);
      expect(preceding).toHaveLength(here.length);
      for (const line of preceding) expect(line.startsWith("#")).toBe(true);
    }
    expect(shared).toEqual([]);
  });
});

describe("narrowed defaults (THREATS.md invariant 7)", () => {
  const entry = (name: string) => parse(readFileSync(join(repoRoot, "registry", `${name}.toml`), "utf8")) as Record<string, any>;
  const all = readdirSync(join(repoRoot, "registry")).filter((f) => f.endsWith(".toml")).map((f) => entry(f.replace(".toml", "")));
  test("no entry has host access, and no allowlist has a wildcard", () => {
    for (const def of all) {
      expect({ tool: def.name, hostAccess: def.network?.hostAccess }).toEqual({ tool: def.name, hostAccess: undefined });
      for (const host of [...(def.network?.proxy?.allow ?? []), ...(def.network?.proxy?.installAllow ?? [])]) expect(`${def.name}: ${host}`).not.toContain("*");
    }
  });
  test("aws-cli allows no AWS endpoint until the user names one; claude-code reaches only Anthropic", () => {
    expect(entry("aws-cli").network.proxy.allow).toEqual([]);
    expect(entry("claude-code").network.proxy.allow).toEqual(["api.anthropic.com", "console.anthropic.com"]);
    expect(entry("psql").network).toBeUndefined();
  });
  test("claude-code keeps its state per project and its login as one shared read-only file", () => {
    const def = entry("claude-code");
    expect(def.cache).toEqual([
      { name: "claude", path: "/root/.claude" },
      { name: "credentials", path: "/root/.claude/.credentials.json", scope: "login" },
    ]);
    // ~/.claude.json (onboarding, MCP servers) lives in the per-project ~/.claude.
    expect(def.env.CLAUDE_CONFIG_DIR).toBe("/root/.claude");
  });
  test("claude-code brings git (node's -slim images have none) from the image's Debian sources, reached only while installing", () => {
    const def = entry("claude-code");
    expect(def.postInstall[0]).toStartWith("command -v git >/dev/null || {");
    expect(def.postInstall[0]).toContain("APT::Sandbox::User=root");
    expect(def.postInstall.at(-1)).toBe("npm install -g @anthropic-ai/claude-code");
    expect(def.network.proxy.installAllow).toEqual(["registry.npmjs.org", "deb.debian.org"]);
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
