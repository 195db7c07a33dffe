/**
 * THREATS.md invariant 6: one project cannot reach another — package caches and agent state.
 *
 * A tool's caches persist in SILO_HOME and are written by whatever runs in a project's sandbox. Mounted
 * shared, project A's sandbox plants a built wheel, an `npx` package, a tarball in npm's _cacache (pacote
 * unpacks it before its integrity check fails, and its extra files stay), a compiled Go package or a Claude
 * hook that project B's tool then runs. Every shipped cache is per project, keyed by the project root's
 * path and identity (a project made anew at the same path is another project); claude-code's login is per
 * project until the user shares one (`silo cache share-login`), then read-only. A global build
 * (`silo build --global`, typed in a possibly hostile project) sees neither that project's files nor its
 * caches: its layer is stacked under every project.
 *
 * The tools here are registry entries in the test's SILO_HOME that copy the shipped entries' [[cache]]
 * (and, for the agent, [env]) declarations onto the python fixture image, so the mount layout under test
 * is exactly the shipped one while the probe is a few lines of Python. The control mounts the same paths
 * with `scope = "shared"` (what every cache was before): there, A's planted files reach B.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { makeHome, repoRoot, runSilo, siloBin, tmp } from "../../helpers/silo.ts";

type Cache = { name: string; path: string; scope?: string };

const PLANTS = {
  wheel: "/root/.cache/pip/wheels/ab/cd/evil-1.0-py3-none-any.whl",
  pipHttp: "/root/.cache/pip/http-v2/a/b/c/d/e/planted",
  npx: "/root/.npm/_npx/0123456789abcdef/node_modules/.bin/cowsay",
  npmIndex: "/root/.npm/_cacache/index-v5/aa/bb/planted",
  goBuild: "/root/.cache/go-build/aa/aa00-d",
  goMod: "/go/pkg/mod/example.com/lib@v1.0.0/lib.go",
  cargoSrc: "/root/.cargo/registry/src/index.crates.io-0000/serde-1.0.0/build.rs",
  claudeHook: "/root/.claude/settings.json",
  claudeJson: "/root/.claude/.claude.json",
} as const;
const NPM_CONTENT = "/root/.npm/_cacache/content-v2/sha512/aa/bb/planted";

const entry = (name: string) => parse(readFileSync(join(repoRoot, "registry", `${name}.toml`), "utf8")) as { cache: Cache[]; env?: Record<string, string> };

/** A registry entry as `silo registry update` would cache it: the python fixture with these caches. */
function fixtureTool(home: string, name: string, cache: Cache[], env: Record<string, string> = {}): void {
  const def = { name, description: "cache layout fixture", image: "docker.io/library/python", shims: [`${name}:python3`], env, cache, versions: { default: "3.11-slim", available: ["3.11-slim"] } };
  mkdirSync(join(home, "registry/current"), { recursive: true });
  writeFileSync(join(home, "registry/current", `${name}.toml`), stringify(def));
}

const PLANT_PY = `import os, sys
for p in sys.argv[1:]:
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "w").write("planted by project A")
`;
const PROBE_PY = `import json, os, sys
print(json.dumps({p: os.path.exists(p) for p in sys.argv[1:]}))
`;

describe("package caches and agent state are per project (invariant 6)", () => {
  let home: string;
  const projects: Record<string, string> = {};

  async function run(tool: string, project: string, code: string, args: string[]): Promise<string> {
    const r = await runSilo(["run", tool, "-c", code, ...args], { home, cwd: projects[project] });
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    return r.stdout;
  }
  const plant = (tool: string, project: string, paths: string[]) => run(tool, project, PLANT_PY, paths);
  const probe = async (tool: string, project: string, paths: string[]) => JSON.parse(await run(tool, project, PROBE_PY, paths)) as Record<string, boolean>;
  const all = (paths: string[], v: boolean) => Object.fromEntries(paths.map((p) => [p, v]));

  beforeAll(async () => {
    expect(existsSync(siloBin)).toBe(true);
    home = makeHome();
    const shared = (list: Cache[]) => list.map((c) => ({ ...c, scope: "shared" }));
    const layouts = { pip: entry("python").cache, npm: entry("node").cache, go: entry("go").cache, cargo: entry("rust").cache };
    // The control: every path of the shipped entries, mounted the way all caches were before (shared).
    fixtureTool(home, "sharedcaches", shared([...layouts.pip, layouts.npm[0]!, ...layouts.go, ...layouts.cargo]));
    fixtureTool(home, "pipcaches", layouts.pip);
    fixtureTool(home, "npmcaches", layouts.npm);
    fixtureTool(home, "gocaches", layouts.go);
    fixtureTool(home, "cargocaches", layouts.cargo);
    fixtureTool(home, "sharedagent", shared(entry("claude-code").cache.filter((c) => c.scope !== "login")), entry("claude-code").env);
    fixtureTool(home, "agent", entry("claude-code").cache, entry("claude-code").env);
    for (const t of ["sharedcaches", "pipcaches", "npmcaches", "gocaches", "cargocaches", "sharedagent", "agent"]) {
      const r = await runSilo(["install", t], { home });
      expect({ tool: t, code: r.exitCode, stderr: r.stderr }).toEqual({ tool: t, code: 0, stderr: expect.any(String) });
    }
    for (const p of ["a", "b"]) {
      projects[p] = tmp(`silo-caches-${p}-`);
      writeFileSync(join(projects[p]!, "silo.toml"), "");
    }
  }, 300_000);

  test("control: mounted shared, what project A plants in a cache is there in project B", async () => {
    const paths = [PLANTS.wheel, PLANTS.pipHttp, PLANTS.npx, NPM_CONTENT, PLANTS.goBuild, PLANTS.goMod, PLANTS.cargoSrc];
    await plant("sharedcaches", "a", paths);
    expect(await probe("sharedcaches", "b", paths)).toEqual(all(paths, true));
  });

  test("pip: A's built wheel and HTTP cache entry are A's only", async () => {
    const paths = [PLANTS.wheel, PLANTS.pipHttp];
    await plant("pipcaches", "a", paths);
    expect(await probe("pipcaches", "b", paths)).toEqual(all(paths, false));
    expect(await probe("pipcaches", "a", paths)).toEqual(all(paths, true)); // kept for A's next run
  });

  test("npm: A's _npx package, cache index and _cacache content (a planted tarball) are A's only", async () => {
    const paths = [PLANTS.npx, PLANTS.npmIndex, NPM_CONTENT];
    await plant("npmcaches", "a", paths);
    expect(await probe("npmcaches", "b", paths)).toEqual(all(paths, false));
    expect(await probe("npmcaches", "a", paths)).toEqual(all(paths, true));
  });

  test("a project removed and made anew at the same path does not inherit the old one's caches", async () => {
    const paths = [PLANTS.wheel, PLANTS.npx];
    const dir = tmp("silo-caches-again-");
    writeFileSync(join(dir, "silo.toml"), "");
    projects.again = dir;
    await plant("pipcaches", "again", [PLANTS.wheel]);
    await plant("npmcaches", "again", [PLANTS.npx]);
    // Control: the same directory, run again, has them (the caches persist, by path).
    expect(await probe("pipcaches", "again", paths)).toEqual({ [PLANTS.wheel]: true, [PLANTS.npx]: false });
    expect(await probe("npmcaches", "again", paths)).toEqual({ [PLANTS.wheel]: false, [PLANTS.npx]: true });
    // `rm -rf p && mkdir p` (a new clone, a CI runner's checkout): the same real path, another directory.
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    writeFileSync(join(dir, "silo.toml"), "");
    expect(await probe("pipcaches", "again", paths)).toEqual(all(paths, false));
    expect(await probe("npmcaches", "again", paths)).toEqual(all(paths, false));
  });

  test("go and cargo: A's build cache, extracted modules and crate sources are A's only", async () => {
    await plant("gocaches", "a", [PLANTS.goBuild, PLANTS.goMod]);
    expect(await probe("gocaches", "b", [PLANTS.goBuild, PLANTS.goMod])).toEqual(all([PLANTS.goBuild, PLANTS.goMod], false));
    await plant("cargocaches", "a", [PLANTS.cargoSrc]);
    expect(await probe("cargocaches", "b", [PLANTS.cargoSrc])).toEqual(all([PLANTS.cargoSrc], false));
    expect(await probe("cargocaches", "a", [PLANTS.cargoSrc])).toEqual(all([PLANTS.cargoSrc], true));
  });

  test("control: a shared ~/.claude carries A's hook into B", async () => {
    await plant("sharedagent", "a", [PLANTS.claudeHook]);
    expect(await probe("sharedagent", "b", [PLANTS.claudeHook])).toEqual(all([PLANTS.claudeHook], true));
  });

  test("agent: ~/.claude (hooks, .claude.json) is per project, and kept", async () => {
    const paths = [PLANTS.claudeHook, PLANTS.claudeJson];
    // CLAUDE_CONFIG_DIR puts .claude.json inside ~/.claude.
    expect((await run("agent", "a", "import os; print(os.environ['CLAUDE_CONFIG_DIR'])", [])).trim()).toBe("/root/.claude");
    await plant("agent", "a", paths);
    expect(await probe("agent", "b", paths)).toEqual(all(paths, false));
    expect(await probe("agent", "a", paths)).toEqual(all(paths, true));
  });

  test("agent: a project's login stays its own until the user shares it; then it is every project's, read-only", async () => {
    const cred = "/root/.claude/.credentials.json";
    const write = `import sys
try:
    open("${cred}", "w").write(sys.argv[1]); print("written")
except OSError as e:
    print("refused", e.errno)
`;
    const read = `import os; print(open("${cred}").read() if os.path.exists("${cred}") else "none")`;
    // A login in A (or a hostile A planting a token) writes the file in A's own ~/.claude; B never sees it.
    expect((await run("agent", "a", write, ["token-of-a"])).trim()).toBe("written");
    expect((await run("agent", "a", read, [])).trim()).toBe("token-of-a");
    expect((await run("agent", "b", read, [])).trim()).toBe("none");
    expect(existsSync(join(home, "cache/agent/credentials/.credentials.json"))).toBe(false);
    // The user shares A's login deliberately; then it is read-only in A and in B.
    const shared = await runSilo(["cache", "share-login", "agent"], { home, cwd: projects.a });
    expect({ code: shared.exitCode, stderr: shared.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    expect((await run("agent", "a", write, ["swapped"])).trim()).toStartWith("refused");
    expect((await run("agent", "b", read, [])).trim()).toBe("token-of-a");
    expect((await run("agent", "b", write, ["token-of-b"])).trim()).toStartWith("refused");
    expect(readFileSync(join(home, "cache/agent/credentials/.credentials.json"), "utf8")).toBe("token-of-a");
  });
  test("a global build typed in a project sees neither its files nor its caches; global builds keep caches of their own", async () => {
    const mark = "/root/.cache/pip/global-build-mark";
    const SEEN = `import json, os
seen = {"cache": os.path.exists("${PLANTS.wheel}"), "workspace": os.listdir("/workspace"), "mark": os.path.exists("${mark}")}
os.makedirs("/opt/silo-test", exist_ok=True)
json.dump(seen, open("/opt/silo-test/" + __import__("sys").argv[1], "w"))
open("${mark}", "w").write("global build")
print(json.dumps(seen))
`;
    // A hostile project: a wheel in its own cache, a file in its tree.
    await plant("pipcaches", "a", [PLANTS.wheel]);
    writeFileSync(join(projects.a!, "planted.py"), "print('from project a')");
    // Control: the same step in A's sandbox sees both (and writes the mark into A's own cache).
    const control = JSON.parse(await run("pipcaches", "a", SEEN, ["control"])) as { cache: boolean; workspace: string[] };
    expect({ cache: control.cache, planted: control.workspace.includes("planted.py") }).toEqual({ cache: true, planted: true });
    // Through `silo build --global`, typed in A: an empty /workspace, the caches of global builds.
    for (const name of ["first", "second"]) {
      const r = await runSilo(["build", "--global", "pipcaches", "python3", "-c", SEEN, name], { home, cwd: projects.a });
      expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    }
    // B stacks the global layer: what the steps saw is in it.
    const read = (name: string) => `print(open("/opt/silo-test/${name}").read())`;
    expect(JSON.parse(await run("pipcaches", "b", read("first"), []))).toEqual({ cache: false, workspace: [], mark: false });
    expect(JSON.parse(await run("pipcaches", "b", read("second"), []))).toEqual({ cache: false, workspace: [], mark: true });
    // The global builds' cache is no project's.
    expect(await probe("pipcaches", "b", [mark])).toEqual(all([mark], false));
    expect(existsSync(join(home, "cache/pipcaches/projects/global-build/pip/global-build-mark"))).toBe(true);
  }, 300_000);
});
