import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, utimesSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { checkGitFile, isApplyDir, isDeletable, isRefName } from "../../../src/app/git-check.ts";
import { scanGit } from "../../../src/app/git-apply.ts";
import { tmp } from "../../helpers/silo.ts";

const OID = "a".repeat(40);

describe("git-check", () => {
  test("ref names follow git check-ref-format", () => {
    for (const ok of ["refs/heads/main", "refs/heads/feature/x", "refs/tags/v1.0", "refs/stash", "refs/remotes/origin/HEAD"]) expect(isRefName(ok)).toBe(true);
    for (const bad of ["HEAD", "refs/heads/", "refs/heads/a..b", "refs/heads/.x", "refs/heads/x.lock", "refs/heads/a b", "refs/heads/a@{1}", "refs//x", "refs/heads/x.", "refs/heads/a:b", "refs/heads/a\\b"])
      expect(isRefName(bad)).toBe(false);
  });

  test("which directories are walked and which deletions applied", () => {
    for (const d of ["objects", "objects/ab", "objects/pack", "refs", "refs/heads", "logs", "logs/refs/heads"]) expect(isApplyDir(d)).toBe(true);
    for (const d of ["hooks", "info", "worktrees", "modules", "objects/info/alternates", "refs/heads/.evil", "rebase-merge", "sequencer"]) expect(isApplyDir(d)).toBe(false);
    expect(isDeletable("refs/heads/x")).toBe(true);
    expect(isDeletable("logs/refs/heads/x")).toBe(true);
    expect(isDeletable("index")).toBe(true);
    for (const p of ["HEAD", "config", "packed-refs", "objects/ab/" + "c".repeat(38), "hooks/pre-commit"]) expect(isDeletable(p)).toBe(false);
  });

  test("files: HEAD, refs, packed-refs, index, *_HEAD are checked; config, hooks, commondir and the rest are refused", () => {
    const dir = tmp();
    const file = (name: string, body: string | Uint8Array) => {
      const p = join(dir, name.replaceAll("/", "_"));
      writeFileSync(p, body);
      return p;
    };
    expect(checkGitFile("HEAD", file("HEAD", "ref: refs/heads/main\n"))).toBeNull();
    expect(checkGitFile("HEAD", file("HEAD2", `${OID}\n`))).toBeNull();
    expect(checkGitFile("HEAD", file("HEAD3", "ref: ../../evil\n"))).toContain("HEAD");
    expect(checkGitFile("refs/heads/main", file("main", `${OID}\n`))).toBeNull();
    expect(checkGitFile("refs/heads/main", file("main2", "[core]\n"))).not.toBeNull();
    expect(checkGitFile("packed-refs", file("pr", `# pack-refs with: peeled fully-peeled sorted \n${OID} refs/heads/main\n^${OID}\n`))).toBeNull();
    expect(checkGitFile("packed-refs", file("pr2", `${OID} ../config\n`))).toContain("line 1");
    expect(checkGitFile("index", file("index", "DIRC\0\0\0\x02"))).toBeNull();
    expect(checkGitFile("index", file("index2", "[core]"))).not.toBeNull();
    expect(checkGitFile("FETCH_HEAD", file("fh", `${OID}\t\tbranch 'main' of x\n`))).toBeNull();
    expect(checkGitFile("ORIG_HEAD", file("oh", "touch /tmp/x\n"))).not.toBeNull();
    expect(checkGitFile("COMMIT_EDITMSG", file("msg", "anything\n"))).toBeNull();
    for (const rel of ["config", "hooks/pre-commit", "commondir", "gitdir", "info/attributes", "objects/info/alternates", "worktrees/x/commondir", "modules/m/config", "new-file"])
      expect(checkGitFile(rel, file(`x-${rel}`, "x"))).not.toBeNull();
  });

  test("a loose object must inflate to a git object whose hash is its name", () => {
    const dir = tmp();
    const body = Buffer.from("blob 3\0hi\n");
    const name = new Bun.CryptoHasher("sha1").update(body).digest("hex");
    const p = join(dir, "obj");
    writeFileSync(p, deflateSync(body));
    expect(checkGitFile(`objects/${name.slice(0, 2)}/${name.slice(2)}`, p)).toBeNull();
    expect(checkGitFile(`objects/${name.slice(0, 2)}/${"0".repeat(38)}`, p)).toContain("does not match");
    writeFileSync(p, "not zlib");
    expect(checkGitFile(`objects/${name.slice(0, 2)}/${name.slice(2)}`, p)).not.toBeNull();
  });
});

describe("scanGit", () => {
  test("a new .git (dir, file or symlink) anywhere is found; the root's is skipped when asked; old ones are left", () => {
    const root = tmp();
    const old = Date.now() / 1000 - 3600;
    mkdirSync(join(root, "vendor/lib/.git/refs"), { recursive: true });
    writeFileSync(join(root, "vendor/lib/.git/config"), "[core]\n");
    const since = Date.now() + 2000; // everything made so far is "before the run"
    expect(scanGit(root, false, since, 1000)).toEqual({ items: [], complete: true, unreadable: [] });
    mkdirSync(join(root, ".git"));
    mkdirSync(join(root, "a/b"), { recursive: true });
    writeFileSync(join(root, "a/b/.git"), "gitdir: ../../evil\n");
    symlinkSync("../evil", join(root, "a/.git"));
    const found = scanGit(root, true, 0, 1000).items.map((i) => i.path).sort();
    expect(found).toEqual(["a/.git", "a/b/.git", "vendor/lib/.git"]);
    expect(scanGit(root, false, 0, 1000).items.map((i) => i.path)).toContain(".git");
    utimesSync(join(root, "vendor/lib/.git/config"), old, old); // mtime can be set back, ctime cannot
    expect(scanGit(root, true, 0, 1000).items.length).toBe(3);
  });

  test("in an older .git directory, only changed files outside the safe set are taken; the budget bounds the walk", async () => {
    const root = tmp();
    mkdirSync(join(root, "sub/.git/refs/heads"), { recursive: true });
    mkdirSync(join(root, "sub/.git/objects/ab"), { recursive: true });
    writeFileSync(join(root, "sub/.git/config"), "[core]\n");
    await Bun.sleep(50); // ctime's clock is coarse (a tick): well apart
    const since = Date.now();
    await Bun.sleep(50);
    writeFileSync(join(root, "sub/.git/config"), "[core]\n\tfsmonitor = evil\n");
    writeFileSync(join(root, "sub/.git/refs/heads/main"), `${OID}\n`);
    writeFileSync(join(root, "sub/.git/objects/ab/cd"), "x");
    expect(scanGit(root, false, since, 1000).items.map((i) => i.path)).toEqual(["sub/.git/config"]);
    expect(scanGit(root, false, 0, 1000).items.map((i) => i.path)).toEqual(["sub/.git"]); // born after 0: new, whole
    expect(scanGit(root, false, since, 1).complete).toBe(false);
  });
});

describe("scanGit: repositories without a .git name, renamed ones, nested protected names", () => {
  const plantBare = (dir: string) => {
    mkdirSync(join(dir, "objects"), { recursive: true });
    mkdirSync(join(dir, "refs"), { recursive: true });
    writeFileSync(join(dir, "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(dir, "config"), "[core]\n\tfsmonitor = evil\n");
  };
  const settle = async () => {
    await Bun.sleep(50); // ctime's clock is coarse (a tick): well apart
    const since = Date.now();
    await Bun.sleep(50);
    return since;
  };

  test("a bare repository planted in a directory goes whole; at the root, its markers", async () => {
    const root = tmp();
    mkdirSync(join(root, "sub"));
    writeFileSync(join(root, "sub/keep.txt"), "x");
    const since = await settle();
    plantBare(join(root, "sub"));
    plantBare(root);
    const found = scanGit(root, false, since, 1000).items.map((i) => i.path).sort();
    expect(found).toEqual(["HEAD", "config", "sub"]);
  });

  test("an older bare repository: only its changed config; untouched, nothing", async () => {
    const root = tmp();
    plantBare(join(root, "fixtures/repo"));
    const since = await settle();
    expect(scanGit(root, false, since, 1000).items).toEqual([]);
    writeFileSync(join(root, "fixtures/repo/config"), "[core]\n\tfsmonitor = worse\n");
    expect(scanGit(root, false, since, 1000).items.map((i) => i.path)).toEqual(["fixtures/repo/config"]);
  });

  test("an old directory renamed to .git (or given objects/ and refs/) goes whole", async () => {
    const root = tmp();
    mkdirSync(join(root, "sub2/x"), { recursive: true });
    writeFileSync(join(root, "sub2/x/HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(root, "sub2/x/config"), "[core]\n\tfsmonitor = evil\n");
    mkdirSync(join(root, "sub3/x"), { recursive: true });
    writeFileSync(join(root, "sub3/x/HEAD"), "ref: refs/heads/main\n");
    const since = await settle();
    mkdirSync(join(root, "sub2/x/objects"));
    mkdirSync(join(root, "sub2/x/refs"));
    renameSync(join(root, "sub2/x"), join(root, "sub2/.git"));
    mkdirSync(join(root, "sub3/x/objects"));
    expect(scanGit(root, false, since, 1000).items.map((i) => i.path).sort()).toEqual(["sub2/.git", "sub3/x"]);
  });

  test("protected names below the root: new or changed ones go, old ones stay, the root's are protect.ts's", async () => {
    const root = tmp();
    mkdirSync(join(root, "crates/old/.vscode"), { recursive: true });
    writeFileSync(join(root, "crates/old/.vscode/settings.json"), "{}");
    writeFileSync(join(root, "crates/old/.envrc"), "old");
    const since = await settle();
    for (const f of ["crates/foo/.cargo/config.toml", "crates/foo/.vscode/tasks.json", "crates/foo/.envrc", "crates/foo/mise.toml", "crates/foo/a.code-workspace", "crates/foo/.tool-versions", ".envrc", ".cargo/config.toml", "crates/foo/.cargo/registry/x"]) {
      mkdirSync(join(root, f, ".."), { recursive: true });
      writeFileSync(join(root, f), "planted");
    }
    writeFileSync(join(root, "crates/old/.vscode/settings.json"), "{\"changed\": 1}"); // in place: the directory keeps its ctime
    const found = scanGit(root, false, since, 1000).items.map((i) => i.path).sort();
    expect(found).toEqual(["crates/foo/.cargo/config.toml", "crates/foo/.envrc", "crates/foo/.vscode", "crates/foo/a.code-workspace", "crates/foo/mise.toml", "crates/old/.vscode/settings.json"]);
  });
});
