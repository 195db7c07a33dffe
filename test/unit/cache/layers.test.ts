import { setLogSink } from "../../../src/core/log.ts";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../../src/core/paths.ts";
import { buildLayersFor, commitLayer, currentLayer, genName, makeBuildDir, oldGenerations, removeLayer, staleBuildDirs, type LayerMeta } from "../../../src/cache/layers.ts";
import { parseSiloMounts } from "../../../src/cache/inuse.ts";
import { trustProjectLayers } from "../../../src/cache/layer-index.ts";
import { tmp } from "../../helpers/silo.ts";

const HEX = "ab".repeat(32);
const meta = (digest = `sha256:${HEX}`): LayerMeta => ({ version: 1, tool: "python", scope: "project", digest, steps: [{ argv: ["true"] }], builtAt: "", silo: "test" });

function commit(base: string, file: string, digest?: string) {
  const dir = makeBuildDir(base);
  mkdirSync(join(dir, "root"));
  writeFileSync(join(dir, "root", file), file);
  return commitLayer(base, dir, meta(digest));
}

describe("layer store", () => {
  test("commit swaps `current` to the new generation and reports the previous one", () => {
    const base = join(tmp(), "python");
    const a = commit(base, "a");
    expect(a.previous).toBeNull();
    expect(readlinkSync(join(base, "current"))).toBe(a.gen);
    const b = commit(base, "b");
    expect(b.previous).toBe(a.gen);
    expect(currentLayer(base, "project")!.root).toBe(join(base, b.gen, "root"));
    expect(oldGenerations(base)).toEqual([a.gen]);
    expect(a.gen).toMatch(/^g-[0-9a-z]+-abababababab$/);
    const { removed, kept } = removeLayer(base, (p) => p === join(base, a.gen, "root"));
    expect(removed).toEqual([join(base, b.gen)]);
    expect(kept).toEqual([join(base, a.gen)]);
    expect(currentLayer(base, "project")).toBeNull();
  });

  test("build dirs of dead silos are stale; ours is not", async () => {
    const base = join(tmp(), "node");
    const mine = makeBuildDir(base);
    const p = Bun.spawn(["true"]);
    await p.exited;
    const dead = join(base, `tmp-${p.pid}-zz`);
    mkdirSync(dead);
    expect(staleBuildDirs(base)).toEqual([dead]);
    makeBuildDir(base); // clears stale ones
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(mine)).toBe(true);
  });

  test("a `current` link that leaves its scope, or names no generation, is refused", () => {
    const root = tmp();
    const outside = tmp();
    const gen = genName(`sha256:${HEX}`);
    mkdirSync(join(outside, gen, "root"), { recursive: true });
    // .silo/python is a link to a directory elsewhere on the host
    mkdirSync(join(root, ".silo"));
    symlinkSync(outside, join(root, ".silo/python"));
    symlinkSync(gen, join(outside, "current"));
    expect(currentLayer(join(root, ".silo/python"), "project")).toBeNull();
    // current -> ../../something
    const base = join(tmp(), "python");
    mkdirSync(base);
    symlinkSync("../x", join(base, "current"));
    expect(currentLayer(base, "project")).toBeNull();
    // a generation whose root is a link
    const base2 = join(tmp(), "python");
    mkdirSync(join(base2, gen), { recursive: true });
    symlinkSync("/etc", join(base2, gen, "root"));
    symlinkSync(gen, join(base2, "current"));
    expect(currentLayer(base2, "project")).toBeNull();
  });

  test("buildLayersFor stacks global then project, and warns once about a layer built on another image", () => {
    const home = homePaths(tmp());
    const project = tmp();
    commit(join(home.builds, "python"), "g", `sha256:${"cd".repeat(32)}`);
    commit(join(project, ".silo", "python"), "p");
    mkdirSync(home.state, { recursive: true });
    expect(trustProjectLayers(home, project)).toEqual(["python"]); // as a build (or `silo trust`) records it
    const rootfs = join(home.rootfs, HEX);
    const writes: string[] = [];
    setLogSink((s) => writes.push(s));
    let layers: string[];
    try {
      layers = buildLayersFor(home, "python", project, rootfs);
      buildLayersFor(home, "python", project, rootfs);
    } finally {
      setLogSink(null);
    }
    expect(layers.map((l) => l.startsWith(home.builds) ? "global" : "project")).toEqual(["global", "project"]);
    expect(writes.filter((w) => w.includes("older image"))).toHaveLength(1);
    expect(writes.join("")).toContain("silo rebuild python --global");
    expect(buildLayersFor(home, "node", project, rootfs)).toEqual([]);
  });

  test("a project layer this SILO_HOME did not record is not stacked: unrecorded, or copied under the recorded name", () => {
    const home = homePaths(tmp());
    const project = tmp();
    const base = join(project, ".silo", "python");
    commit(base, "p");
    const rootfs = join(home.rootfs, HEX);
    const writes: string[] = [];
    setLogSink((s) => writes.push(s));
    try {
      expect(buildLayersFor(home, "python", project, rootfs)).toEqual([]);
      expect(writes.join("")).toContain("this silo did not build it");
      mkdirSync(home.state, { recursive: true });
      trustProjectLayers(home, project);
      expect(buildLayersFor(home, "python", project, rootfs)).toHaveLength(1);
      // The same generation name, a different directory (a clone of the layer, or one put in its place).
      const root = join(base, readlinkSync(join(base, "current")), "root");
      Bun.spawnSync(["mv", root, `${root}.orig`]);
      Bun.spawnSync(["cp", "-a", `${root}.orig`, root]);
      expect(buildLayersFor(home, "python", project, rootfs)).toEqual([]);
    } finally {
      setLogSink(null);
    }
  });
});

describe("parseSiloMounts", () => {
  test("layers and upper of silo overlays; other mounts ignored; octal escapes decoded", () => {
    const info = [
      "36 35 98:0 / / rw - ext4 /dev/vda rw",
      "50 36 0:45 / /run/x rw - overlay silo rw,lowerdir=/h/b/g-1/root:/h/rootfs/abc,upperdir=/h/run/1/upper,workdir=/h/run/1/work,userxattr",
      "51 36 0:46 / /other rw - overlay overlay rw,lowerdir=/not/silo,upperdir=/u,workdir=/w",
      "52 36 0:47 / /y rw - overlay silo rw,lowerdir=/with\\040space,upperdir=/u2,workdir=/w2",
    ].join("\n");
    expect(parseSiloMounts(info)).toEqual(["/h/b/g-1/root", "/h/rootfs/abc", "/h/run/1/upper", "/with space", "/u2"]);
  });
  test("paths relative to the mount point's parent (the run dir) resolve through its symlinks; inside the sandbox they are skipped", () => {
    const links: Record<string, string> = { "/h/run/1/l0": "/h/rootfs/abc", "/h/run/1/l1": "/h/b/g-1/root" };
    const readLink = (p: string) => {
      if (links[p]) return links[p];
      throw new Error("EINVAL");
    };
    const info = [
      "50 36 0:45 / /h/run/1/root rw - overlay silo rw,lowerdir=l1:l0,upperdir=upper,workdir=work,userxattr",
      "51 36 0:46 / /h/run/1-git/mnt rw - overlay silo rw,lowerdir=/p/.git,upperdir=../1-git/upper,workdir=../1-git/work,userxattr",
      "60 59 0:45 / / rw - overlay silo rw,lowerdir=l0,upperdir=upper,workdir=work,userxattr",
    ].join("\n");
    expect(parseSiloMounts(info, readLink)).toEqual(["/h/b/g-1/root", "/h/rootfs/abc", "/h/run/1/upper", "/p/.git", "/h/run/1-git/upper"]);
  });
});

describe("global layers behind a symlinked SILO_HOME", () => {
  test("are used (SILO_HOME is silo's own)", () => {
    const real = tmp();
    const link = join(tmp(), "home-link");
    symlinkSync(real, link);
    const home = homePaths(link);
    commit(join(home.builds, "python"), "g");
    expect(currentLayer(join(home.builds, "python"), "global")).not.toBeNull();
    expect(currentLayer(join(home.builds, "python"), "project")).toBeNull();
  });
});
