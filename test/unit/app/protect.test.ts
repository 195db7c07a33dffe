import { describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unifiedDiff } from "../../../src/app/line-diff.ts";
import { hooksPaths, protectedPaths, resolveLink, signature, snapshotProtected, watchLines } from "../../../src/app/protect.ts";
import { setLogSink } from "../../../src/core/log.ts";
import { tmp } from "../../helpers/silo.ts";

const project = (files: Record<string, string>, links: Record<string, string> = {}) => {
  const root = tmp();
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(join(root, f, ".."), { recursive: true });
    writeFileSync(join(root, f), body);
  }
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(root, name));
  return root;
};

describe("core.hooksPath, read as data", () => {
  test("a path inside the project; the last [core] wins but both are protected; ~ and outside ignored", () => {
    const root = project({ ".git/config": '[core]\n\thooksPath = tools/hooks\n[remote "o"]\n\thooksPath = nope\n[core]\n\tHooksPath = "./later" ; comment\n\thooksPath = ~/hooks\n\thooksPath = /elsewhere\n' });
    expect(hooksPaths(root)).toEqual(["tools/hooks", "later"]);
  });
  test("the root itself: each hook name", () => {
    const root = project({ ".git/config": "[core]\nhooksPath = .\n" });
    expect(hooksPaths(root)).toContain("pre-commit");
    expect(hooksPaths(root)).toContain("post-checkout");
  });
  test("no .git/config: nothing", () => expect(hooksPaths(tmp())).toEqual([]));
});

describe("the protected set", () => {
  test("built in + protect − writable; paths that leave the project are refused with a warning", () => {
    const lines: string[] = [];
    setLogSink((s) => lines.push(s));
    const set = protectedPaths(tmp(), ["Makefile", "../x", "/etc", "scripts/"], [".vscode", ".husky/"]);
    setLogSink(null);
    expect(set).toContain(".envrc");
    expect(set).toContain(".pre-commit-config.yaml");
    expect(set).toContain("Makefile");
    expect(set).toContain("scripts");
    expect(set).not.toContain(".vscode");
    expect(set).not.toContain(".husky");
    expect(lines.length).toBe(2);
  });
  test("resolveLink: inside the project as a relative path, else null", () => {
    expect(resolveLink("/p", ".vscode", "editor/vscode")).toBe("editor/vscode");
    expect(resolveLink("/p", "a/b", "../c")).toBe("c");
    expect(resolveLink("/p", "a", "/p/x/y")).toBe("x/y");
    expect(resolveLink("/p", "a", "../../etc")).toBeNull();
    expect(resolveLink("/p", "a", "/etc/passwd")).toBeNull();
    expect(resolveLink("/p", "a", ".")).toBeNull();
  });
});

describe("snapshot before the run", () => {
  test("existing → read-only, symlinks → recorded and followed inside the project as data, missing → watched", () => {
    const root = project(
      { "editor/vscode/settings.json": "{}", ".cargo/config.toml": "", "x.code-workspace": "{}" },
      { ".vscode": "editor/vscode", ".envrc": "envrc.real", ".idea": "/somewhere/else" },
    );
    const { snapshot, readonly } = snapshotProtected(root, "python", [".vscode", ".envrc", ".idea", ".cargo/config.toml", ".husky"]);
    expect(readonly.sort()).toEqual([".cargo/config.toml", "editor/vscode", "x.code-workspace"]);
    expect(snapshot.missing.sort()).toEqual([".husky", "envrc.real"]);
    expect(snapshot.links.map((l) => [l.path, l.target])).toEqual([
      [".vscode", "editor/vscode"],
      [".envrc", "envrc.real"],
      [".idea", "/somewhere/else"],
    ]);
    expect(snapshot.links[0]!.sig).toBe(signature(lstatSync(join(root, ".vscode"), { bigint: true })));
    expect(snapshot.workspaces).toEqual(["x.code-workspace"]);
    const lines = watchLines(snapshot);
    expect(lines).toContain(join(root, ".husky"));
    expect(lines).toContain(`=${snapshot.links[0]!.sig}\t${join(root, ".vscode")}\teditor/vscode`);
    expect(lines).toContain(`*1\t${root}\t.code-workspace`);
  });
  test("a link loop ends", () => {
    const root = project({}, { ".vscode": "a", a: ".vscode" });
    const { snapshot } = snapshotProtected(root, "t", [".vscode"]);
    expect(snapshot.links.map((l) => l.path).sort()).toEqual([".vscode", "a"]);
  });
});

describe("unifiedDiff", () => {
  test("equal texts: nothing", () => expect(unifiedDiff("a\n", "a\n")).toEqual([]));
  test("a new file", () => expect(unifiedDiff("", "x\ny\n")).toEqual(["@@ -0,0 +1,2 @@", "+x", "+y"]));
  test("one changed line with context, deletions first", () =>
    expect(unifiedDiff("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n")).toEqual([
      "@@ -2,8 +2,9 @@", " 2", " 3", " 4", "-5", "+five", " 6", " 7", " 8", " 9", "+10",
    ]));
  test("two distant changes: two hunks", () => {
    const a = Array.from({ length: 30 }, (_, i) => `l${i}`).join("\n") + "\n";
    const b = a.replace("l5\n", "X\n").replace("l25\n", "Y\n");
    const d = unifiedDiff(a, b);
    expect(d.filter((l) => l.startsWith("@@"))).toEqual(["@@ -3,7 +3,7 @@", "@@ -23,7 +23,7 @@"]);
  });
  test("a missing final newline is marked", () => expect(unifiedDiff("a\nb", "a\nb\n")).toEqual(["@@ -1,2 +1,2 @@", " a", "-b\n\\ No newline at end of file", "+b"]));
});

describe("core.hooksPath from a hostile .git/config", () => {
  test("a FIFO, a link to /dev/zero, a directory: nothing read, no hang", () => {
    const fifo = project({ ".git/x": "" });
    Bun.spawnSync(["mkfifo", join(fifo, ".git", "config")]);
    expect(hooksPaths(fifo)).toEqual([]);
    const zero = project({ ".git/x": "" }, { ".git/config": "/dev/zero" });
    expect(hooksPaths(zero)).toEqual([]);
    const dir = project({ ".git/config/x": "" });
    expect(hooksPaths(dir)).toEqual([]);
  });
});
