import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startReaper } from "../../../src/core/fs.ts";
import { removeTree } from "../../../src/core/fs.ts";
import { checkSpec, cleanStaleRuns, makePlan, resolveInWorkspace, STALE_RUN_GRACE_MS } from "../../../src/runner/drivers/bwrap/plan.ts";
import type { RunSpec } from "../../../src/runner/spec.ts";
import { tmp } from "../../helpers/silo.ts";

const spec = (ws: string, over: Partial<RunSpec> = {}): RunSpec => ({
  tool: "t", layers: ["/l"], workspace: ws, cwd: "/workspace", argv: ["sh"], env: { PATH: "/bin" }, mounts: [],
  readonlyPaths: [], maskedPaths: [], tty: false, hostname: "t", resources: {},
  network: { mode: "none", hostAccess: false, ports: [] }, self: [], ...over,
});

const savedHome = process.env.HOME;
afterEach(() => {
  process.env.HOME = savedHome;
});

describe("resolveInWorkspace", () => {
  const ws = tmp();
  const outside = tmp();
  mkdirSync(join(ws, ".git/hooks"), { recursive: true });
  mkdirSync(join(ws, "real"));
  writeFileSync(join(ws, "silo.toml"), "");
  symlinkSync("real", join(ws, ".vscode"));
  symlinkSync(outside, join(ws, "away"));
  symlinkSync(join(outside, "nothing"), join(ws, "dangling"));

  test("an existing path maps to itself", () => {
    expect(resolveInWorkspace(ws, "/workspace/.git/hooks")).toEqual({ host: join(ws, ".git/hooks"), guest: "/workspace/.git/hooks", kind: "dir" });
    expect(resolveInWorkspace(ws, "/workspace/silo.toml")).toEqual({ host: join(ws, "silo.toml"), guest: "/workspace/silo.toml", kind: "file" });
  });
  test("a symlink inside the project is followed to its target, bound at the target's guest path", () => {
    expect(resolveInWorkspace(ws, "/workspace/.vscode")).toEqual({ host: join(ws, "real"), guest: "/workspace/real", kind: "dir" });
  });
  test("a symlink leading out of the project, a dangling one, a missing path or the root itself: nothing", () => {
    expect(resolveInWorkspace(ws, "/workspace/away")).toBeNull();
    expect(resolveInWorkspace(ws, "/workspace/dangling")).toBeNull();
    expect(resolveInWorkspace(ws, "/workspace/.envrc")).toBeNull();
    expect(resolveInWorkspace(ws, "/workspace")).toBeNull();
    expect(resolveInWorkspace(ws, "/etc/passwd")).toBeNull();
    expect(resolveInWorkspace(ws, "/workspace/../etc")).toBeNull();
  });
});

describe("checkSpec", () => {
  test("refuses / and the home directory as the workspace", () => {
    const home = tmp();
    process.env.HOME = home;
    expect(() => checkSpec(spec("/"), tmp())).toThrow(/whole filesystem/);
    expect(() => checkSpec(spec(home), tmp())).toThrow(/home directory/);
  });
  test("refuses a workspace inside SILO_HOME, accepts a project", () => {
    const siloHome = tmp();
    mkdirSync(join(siloHome, "bin"));
    expect(() => checkSpec(spec(join(siloHome, "bin")), siloHome)).toThrow(/SILO_HOME/);
    expect(() => checkSpec(spec(tmp()), siloHome)).not.toThrow();
  });
  test("refuses paths overlayfs options cannot carry, NUL bytes and bad env names", () => {
    const ws = tmp();
    expect(() => checkSpec(spec(ws, { layers: ["/a,b"] }), tmp())).toThrow(/overlayfs/);
    expect(() => checkSpec(spec(ws, { layers: ["/a:b"] }), tmp())).toThrow(/overlayfs/);
    expect(() => checkSpec(spec(ws, { argv: ["a\0b"] }), tmp())).toThrow(/NUL/);
    expect(() => checkSpec(spec(ws, { env: { "A=B": "x" } }), tmp())).toThrow(/NUL|name/);
    expect(() => checkSpec(spec(ws, { layers: [] }), tmp())).toThrow(/layers/);
  });
});

describe("makePlan and clean-up", () => {
  test("creates the run dir with upper, work and mount point; masks a file with an empty file", () => {
    const ws = tmp();
    writeFileSync(join(ws, ".env"), "SECRET=1");
    mkdirSync(join(ws, "node_modules"));
    const runRoot = join(tmp(), "run");
    const p = makePlan(spec(ws, { maskedPaths: ["/workspace/.env", "/workspace/node_modules", "/workspace/absent"], readonlyPaths: ["/workspace/.env"] }), runRoot, 4242);
    expect(p.id).toMatch(/^4242-/);
    for (const d of [p.upper, p.work, p.root]) expect(existsSync(d)).toBe(true);
    expect(p.masked).toEqual([{ guest: "/workspace/.env", kind: "file" }, { guest: "/workspace/node_modules", kind: "dir" }]);
    expect(p.readonly).toEqual([{ host: join(ws, ".env"), guest: "/workspace/.env" }]);
    expect(existsSync(p.emptyFile)).toBe(true);
    expect(p.relays).toBe(false);
    expect(p.tmpfsFallback).toBe(true);
  });
  test("a build capture puts the upper where asked, with its work dir beside it, and no tmpfs fallback", () => {
    const cap = join(tmp(), "layer");
    const p = makePlan(spec(tmp(), { captureUpper: cap }), join(tmp(), "run"));
    expect(p.upper).toBe(cap);
    expect(p.work).toBe(`${cap}.work`);
    expect(p.tmpfsFallback).toBe(false);
  });
  test("the overlay's paths for mount(2) are short names in the run dir (mountinfo inside shows them as given)", () => {
    const cap = join(tmp(), "layer");
    const runRoot = join(tmp(), "run");
    const git = { lower: "/p/.git", dir: join(runRoot, "1-x-git"), guest: "/workspace/.git" }; // a sibling, as app/git-guard.ts makes it
    const p = makePlan(spec(tmp(), { layers: ["/h/rootfs/base", "/h/builds/x"], captureUpper: cap, gitOverlay: git }), runRoot);
    expect(p.mount).toEqual({ lowers: "l1:l0", upper: "cu", work: "cw", gitDir: "../1-x-git" });
    const links = Object.fromEntries(["l0", "l1", "cu", "cw"].map((n) => [n, readlinkSync(join(p.runDir, n))]));
    expect(links).toEqual({ l0: "/h/rootfs/base", l1: "/h/builds/x", cu: cap, cw: `${cap}.work` });
    expect(makePlan(spec(tmp(), { gitOverlay: { ...git, dir: "/elsewhere/g" } }), runRoot).mount.gitDir).toBe("/elsewhere/g");
    const plain = makePlan(spec(tmp()), join(tmp(), "run"));
    expect(plain.mount).toEqual({ lowers: "l0", upper: "upper", work: "work", gitDir: "" });
  });
  test("removeTree copes with the mode-000 work dir overlayfs leaves and read-only dirs", () => {
    const d = tmp();
    mkdirSync(join(d, "work/work"), { recursive: true });
    chmodSync(join(d, "work/work"), 0);
    mkdirSync(join(d, "upper/ro/inner"), { recursive: true });
    writeFileSync(join(d, "upper/ro/inner/f"), "x");
    chmodSync(join(d, "upper/ro/inner"), 0o555);
    chmodSync(join(d, "upper/ro"), 0o555);
    removeTree(d);
    expect(existsSync(d)).toBe(false);
  });
  test("cleanStaleRuns removes the run dirs of dead silo processes only, once their reaper's grace is over", () => {
    const root = tmp();
    const dead = Bun.spawnSync(["true"]).pid;
    const old = new Date(Date.now() - STALE_RUN_GRACE_MS - 1000);
    for (const name of [`${dead}-gone`, `${dead}-fresh`, `${process.pid}-mine`, "not-a-run"]) mkdirSync(join(root, name));
    for (const name of [`${dead}-gone`, `${process.pid}-mine`, "not-a-run"]) utimesSync(join(root, name), old, old);
    expect(cleanStaleRuns(root)).toBe(1);
    expect(readdirSync(root).sort()).toEqual([`${dead}-fresh`, `${process.pid}-mine`, "not-a-run"].sort());
  });
  test("the reaper removes its run dir once released, mode-000 overlay work dirs and all", async () => {
    const d = join(tmp(), "1-run");
    mkdirSync(join(d, "work/work"), { recursive: true });
    mkdirSync(join(d, "upper/x"), { recursive: true });
    chmodSync(join(d, "work/work"), 0o000);
    const reaper = startReaper(d)!;
    await Bun.sleep(50);
    expect(existsSync(d)).toBe(true); // not before it is released
    reaper.release();
    for (let i = 0; i < 100 && existsSync(d); i++) await Bun.sleep(20);
    expect(existsSync(d)).toBe(false);
  });
});
