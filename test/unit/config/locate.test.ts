import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setLogSink } from "../../../src/core/log.ts";
import { homePaths } from "../../../src/core/paths.ts";
import { findProjectConfig, readProjectConfig, resetLocateState, sha256 } from "../../../src/config/locate.ts";
import { loadProject } from "../../../src/config/resolve.ts";
import { tmp } from "../../helpers/silo.ts";

const warnings: string[] = [];
beforeAll(() => setLogSink((s) => void warnings.push(s)));
afterAll(() => setLogSink(null));
afterEach(() => {
  warnings.length = 0;
  resetLocateState();
});

function tree(mode = 0o644) {
  const home = homePaths(tmp());
  const root = tmp();
  writeFileSync(join(root, "silo.toml"), '[env]\nA = "1"\n');
  chmodSync(join(root, "silo.toml"), mode);
  mkdirSync(join(root, "a", "b"), { recursive: true });
  return { home, root, file: join(root, "silo.toml"), cwd: join(root, "a", "b") };
}
const me = () => ({ uids: [statSync(tmp()).uid] });

describe("findProjectConfig (git's safe.directory rule)", () => {
  test("the nearest silo.toml the user owns, from a subdirectory", () => {
    const t = tree();
    expect(findProjectConfig(t.cwd, t.home, me())).toBe(t.file);
    expect(warnings).toEqual([]);
  });
  test("a group- or world-writable silo.toml ends the walk with one warning naming the way to allow it", () => {
    for (const mode of [0o664, 0o646]) {
      const t = tree(mode);
      expect(findProjectConfig(t.cwd, t.home, me())).toBeNull();
      expect(findProjectConfig(t.cwd, t.home, me())).toBeNull();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`ignoring ${t.file}: other users can write it (mode 0${mode.toString(8)})`);
      expect(warnings[0]).toContain(`safeDirectories = ["${t.root}"] to ${t.home.globalConfig}`);
      warnings.length = 0;
    }
  });
  test("a directory that belongs to someone else stops the walk: nothing above it counts", () => {
    const t = tree();
    // As far as these owners go, every directory here belongs to another user.
    expect(findProjectConfig(t.cwd, t.home, { uids: [424242] })).toBeNull();
    expect(warnings).toEqual([]); // no silo.toml in the directory where the walk stopped
    expect(findProjectConfig(t.root, t.home, { uids: [424242] })).toBeNull();
    expect(warnings[0]).toContain(`ignoring ${t.file}: its directory belongs to uid ${statSync(t.root).uid}`);
  });
  test("safeDirectories in the global silo.toml lets a listed directory's file count", () => {
    const t = tree(0o666);
    writeFileSync(t.home.globalConfig, `safeDirectories = [${JSON.stringify(t.root)}]\n`);
    expect(findProjectConfig(t.cwd, t.home, me())).toBe(t.file);
    expect(readProjectConfig(t.file, t.home, me())?.file).toBe(t.file);
    expect(warnings).toEqual([]);
  });
  test("a FIFO named silo.toml is not a config (and reading it does not block)", () => {
    const t = tree();
    const dir = join(t.root, "a");
    expect(Bun.spawnSync(["mkfifo", join(dir, "silo.toml")]).exitCode).toBe(0);
    expect(findProjectConfig(t.cwd, t.home, me())).toBeNull();
    expect(readProjectConfig(join(dir, "silo.toml"), t.home, me())).toBeNull();
    expect(warnings[0]).toContain("it is not a regular file");
  });
});

describe("one read", () => {
  test("the hash is of the bytes read, and loadProject parses those bytes, not the file as it is later", async () => {
    const t = tree();
    const read = readProjectConfig(t.file, t.home, me())!;
    expect(read.hash).toBe(sha256('[env]\nA = "1"\n'));
    writeFileSync(t.file, '[env]\nA = "2"\n');
    const p = await loadProject(t.cwd, t.home, read);
    expect(p.merged.env).toEqual({ A: "1" });
    expect(p.hash).toBe(read.hash);
  });
  test("`tools` as a list claims tools without pinning versions; as a table it does both", async () => {
    const t = tree();
    writeFileSync(t.file, 'tools = ["python", "node", "python"]\n');
    let p = await loadProject(t.cwd, t.home, readProjectConfig(t.file, t.home, me()));
    expect(p.claims).toEqual(["python", "node"]);
    expect(p.merged.tools).toBeUndefined();
    writeFileSync(t.file, '[tools]\ndeno = "2"\n');
    p = await loadProject(t.cwd, t.home, readProjectConfig(t.file, t.home, me()));
    expect(p.claims).toEqual(["deno"]);
    expect(p.merged.tools).toEqual({ deno: "2" });
  });
});

describe("the tools schema", () => {
  test("a list of names or a table of versions; a bad entry is named by its own rule, not by the union", async () => {
    const { checkSchema } = await import("../../../src/config/_schema-dsl.ts");
    const { siloConfigSchema } = await import("../../../src/config/schema.ts");
    const issues = (v: unknown) => checkSchema({ tools: v }, siloConfigSchema).map((i) => i.message);
    expect(issues(["python", "node"])).toEqual([]);
    expect(issues({ python: "3.11-slim" })).toEqual([]);
    expect(issues(["python", "../x"])).toEqual(["tools[1]: `../x` is not a valid tool name (a-z, 0-9, . _ -)"]);
    expect(issues({ python: "../3" })[0]).toContain("tools.python: `../3` is not a valid version");
    expect(issues(3)).toEqual(["tools: expected a table of tool = version, or a list of tool names, got number (3)"]);
  });
});
