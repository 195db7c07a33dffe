/**
 * `silo cache gc` and `silo cache compress` through dist/silo: eviction by age and by LRU above the size
 * cap, never of what an installed tool, a build layer or a running sandbox uses; compress then run gives
 * back a byte-identical rootfs; every dry run plans exactly what the real run then does.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emptyHome, makeHome, runSilo, siloBin } from "../../helpers/silo.ts";
import { describeTree } from "../../unit/cache/_tree.ts";
import { ageMarker, deadPid, dropUninstalled, dryThenReal, fakeEntry, ok, plan, removeScratch, scratch, scratchProject } from "./_helpers.ts";

afterAll(removeScratch);


async function installed(home: string): Promise<Record<string, { digest: string }>> {
  return JSON.parse(ok(await runSilo(["list", "--json"], { home })).stdout);
}

describe("silo cache gc", () => {
  let home: string;
  let project: string;
  let python: string;
  let busybox: string;

  beforeAll(async () => {
    expect(existsSync(siloBin)).toBe(true);
    home = scratch(makeHome());
    project = scratchProject("");
    ok(await runSilo(["install", "python"], { home }));
    ok(await runSilo(["install", "busybox", "--image", "docker.io/library/busybox:latest"], { home }));
    const t = await installed(home);
    python = t.python!.digest;
    busybox = t.busybox!.digest;
    dropUninstalled(home);
  });

  test("evicts by age and by LRU, never an installed tool's, a build layer's or a running sandbox's rootfs", async () => {
    const old = fakeEntry(home, "old", 1, 100); // beyond maxAgeDays (60)
    const lru1 = fakeEntry(home, "lru1", 2, 20);
    const lru2 = fakeEntry(home, "lru2", 2, 10);
    ageMarker(home, python, 200); // old, but installed
    // A project layer on busybox's image, then busybox uninstalled (image kept): the layer still needs it.
    ok(await runSilo(["build", "busybox", "sh", "-c", "echo x > /x"], { home, cwd: project }));
    ok(await runSilo(["uninstall", "busybox", "--keep-image"], { home }));
    ageMarker(home, busybox, 300);

    const byAge = await dryThenReal(home, project, "cache", "gc");
    expect(byAge.actions.filter((a) => a.kind === "remove-rootfs").map((a) => a.digest)).toEqual([old]);
    expect(existsSync(join(home, "rootfs", old.slice(7)))).toBe(false);

    // A cap of 3 MB: the least recently used of the rest goes first, until the total fits (it cannot:
    // python and busybox stay), so both fakes go, lru1 (older) before lru2.
    const byLru = await dryThenReal(home, project, "cache", "gc", "--max-size", "3");
    expect(byLru.actions.filter((a) => a.kind === "remove-rootfs").map((a) => a.digest)).toEqual([lru1, lru2]);
    expect(byLru.actions[0]!.reason).toContain("least recently used");
    const list = JSON.parse(ok(await runSilo(["cache", "list", "--json"], { home })).stdout) as { digest: string; inUse: string[] }[];
    expect(list.map((e) => e.digest).sort()).toEqual([busybox, python].sort());
    expect(list.find((e) => e.digest === busybox)!.inUse.join()).toContain("build layer of busybox");
    expect(list.find((e) => e.digest === python)!.inUse).toEqual(["installed: python"]);
  });

  test("a running sandbox's rootfs stays until the sandbox ends", async () => {
    ok(await runSilo(["install", "node"], { home }));
    const node = (await installed(home)).node!.digest;
    const proc = Bun.spawn([siloBin, "run", "node", "-e", "setTimeout(() => {}, 120000)"], {
      cwd: project,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/root", SILO_HOME: home },
      stdio: ["ignore", "ignore", "ignore"],
    });
    const inUse = async () => {
      const list = JSON.parse(ok(await runSilo(["cache", "list", "--json"], { home })).stdout) as { digest: string; inUse: string[] }[];
      return list.find((e) => e.digest === node)?.inUse ?? [];
    };
    try {
      // Wait for the sandbox to be up (its overlay mounted), then uninstall node, keeping the image.
      const deadline = Date.now() + 60_000;
      while (!(await inUse()).includes("used by a running sandbox") && Date.now() < deadline) await Bun.sleep(100);
      ok(await runSilo(["uninstall", "node", "--keep-image"], { home }));
      expect(await inUse()).toEqual(["used by a running sandbox"]);
      const p = await plan(home, project, "cache", "gc", "--max-size", "0", "--max-age", "0", "--dry-run");
      expect(p.actions.some((a) => a.digest === node)).toBe(false);
      expect(p.actions.some((a) => a.digest === python)).toBe(false);
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    const after = await dryThenReal(home, project, "cache", "gc", "--max-size", "0", "--max-age", "0");
    expect(after.actions.filter((a) => a.kind === "remove-rootfs").map((a) => a.digest)).toEqual([node]);
  });

  test("--images removes blobs no kept image needs; leftovers of killed silos go with every gc", async () => {
    const dead = await deadPid();
    const stale = join(home, "rootfs", `.tmp-${"a".repeat(64)}-${dead}-xyz`);
    const staleRun = join(home, "run", `${dead}-abc`);
    for (const d of [stale, staleRun]) {
      Bun.spawnSync(["mkdir", "-p", join(d, "sub")]);
      writeFileSync(join(d, "sub/f"), "left over");
    }
    const orphan = "0".repeat(64);
    writeFileSync(join(home, "images/blobs/sha256", orphan), "orphan blob");
    Bun.spawnSync(["touch", "-d", "2 days ago", join(home, "images/blobs/sha256", orphan)]);
    const before = readdirSync(join(home, "images/blobs/sha256")).length;
    const r = await dryThenReal(home, project, "cache", "gc", "--images");
    const paths = r.actions.filter((a) => a.kind === "remove-path").map((a) => a.path);
    expect(paths).toContain(stale);
    expect(paths).toContain(staleRun);
    const blobs = r.actions.filter((a) => a.kind === "remove-blob").map((a) => a.digest);
    expect(blobs).toContain(`sha256:${orphan}`);
    // node's image (evicted above, not installed) is forgotten with its blobs; python's and busybox's stay.
    expect(r.actions.some((a) => a.kind === "remove-image")).toBe(true);
    expect(readdirSync(join(home, "images/blobs/sha256")).length).toBe(before - blobs.length);
    expect(ok(await runSilo(["run", "python", "-c", "print(1)"], { home, cwd: project })).stdout.trim()).toBe("1");
  });

  test("--tool-caches trims each cache mount to its cap, least recently used files first", async () => {
    writeFileSync(join(home, "silo.toml"), `${await Bun.file(join(home, "silo.toml")).text()}\n[cache.tools]\nmaxSizeMB = 100\n[cache.tools.perMount]\n"python/pip" = 2\n`);
    // A shared mount (<tool>/<name>) and a per-project one (<tool>/projects/<key>/<name>): each has the cap.
    const pip = join(home, "cache/python/pip");
    const projectPip = join(home, "cache/python/projects/0123abcd/pip");
    for (const dir of [pip, projectPip]) {
      Bun.spawnSync(["mkdir", "-p", dir]);
      for (const [i, age] of [[1, 5], [2, 3], [3, 1]] as const) {
        writeFileSync(join(dir, `f${i}`), Buffer.alloc(800 * 1024, i));
        Bun.spawnSync(["touch", "-a", "-m", "-d", `${age} days ago`, join(dir, `f${i}`)]);
      }
    }
    const r = await dryThenReal(home, project, "cache", "gc", "--tool-caches");
    expect(r.actions.filter((a) => a.kind === "remove-path").map((a) => a.path).sort()).toEqual([join(pip, "f1"), join(projectPip, "f1")].sort());
    expect(readdirSync(pip).sort()).toEqual(["f2", "f3"]);
    expect(readdirSync(projectPip).sort()).toEqual(["f2", "f3"]);
  });
});

describe("silo cache compress", () => {
  test("compress then run restores a byte-identical rootfs; list shows raw, zstd, raw", async () => {
    const home = scratch(makeHome());
    const project = scratchProject("");
    ok(await runSilo(["install", "python"], { home }));
    dropUninstalled(home);
    const digest = (await installed(home)).python!.digest;
    ageMarker(home, digest, 0);
    const dir = join(home, "rootfs", digest.slice(7));
    const before = describeTree(dir);
    const format = async () => (JSON.parse(ok(await runSilo(["cache", "list", "--json"], { home })).stdout) as { format: string }[])[0]!.format;
    expect(await format()).toBe("raw");
    // Recently used: nothing to compress without --all.
    expect((await plan(home, project, "cache", "compress", "--dry-run")).actions).toEqual([]);
    const r = await dryThenReal(home, project, "cache", "compress", "--all");
    expect(r.actions.map((a) => [a.kind, a.digest])).toEqual([["compress", digest]]);
    expect(await format()).toBe("zstd");
    expect(existsSync(dir)).toBe(false);
    const run = ok(await runSilo(["run", "python", "-c", "print('back')"], { home, cwd: project }));
    expect(run.stdout.trim()).toBe("back");
    expect(await format()).toBe("raw");
    expect(describeTree(dir)).toEqual(before);
  });

  test("entries unused for 14 days are compressed without --all", async () => {
    const home = scratch(emptyHome());
    const project = scratchProject("");
    const stale = fakeEntry(home, "stale", 1, 20);
    fakeEntry(home, "fresh", 1, 2);
    const r = await dryThenReal(home, project, "cache", "compress");
    expect(r.actions.map((a) => a.digest)).toEqual([stale]);
    expect(existsSync(join(home, "rootfs", `${stale.slice(7)}.tar.zst`))).toBe(true);
  });
});
