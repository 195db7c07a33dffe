/**
 * `silo cache report` against `du`, `silo cache clean`, `silo clean` (project), `silo uninstall` reclaim,
 * and the daily automatic gc started by `silo run`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, runSilo, siloBin } from "../../helpers/silo.ts";
import { deadPid, dryThenReal, du, fakeEntry, ok, plan, removeScratch, scratch, scratchProject } from "./_helpers.ts";

afterAll(removeScratch);


interface Bucket {
  name: string;
  paths: string[];
  disk: number;
  apparent: number;
  orphans?: { blobs: number; disk: number };
}

describe("silo cache report", () => {
  test("every bucket's on-disk and apparent size is what du says", async () => {
    expect(existsSync(siloBin)).toBe(true);
    const home = scratch(makeHome());
    const project = scratchProject("");
    ok(await runSilo(["install", "python"], { home }));
    ok(await runSilo(["build", "python", "sh", "-c", "mkdir -p /opt/r && head -c 300000 /dev/urandom > /opt/r/bin && ln /opt/r/bin /opt/r/hardlink"], { home, cwd: project }));
    ok(await runSilo(["build", "--global", "python", "sh", "-c", "echo g > /opt/g"], { home, cwd: project }));
    mkdirSync(join(home, "cache/python/pip/x"), { recursive: true });
    writeFileSync(join(home, "cache/python/pip/x/f"), "cached");
    writeFileSync(join(home, "images/blobs/sha256", "1".repeat(64)), "orphan");
    const r = JSON.parse(ok(await runSilo(["cache", "report", "--json"], { home, cwd: project })).stdout) as { total: Bucket; buckets: Bucket[] };
    const names = r.buckets.map((b) => b.name);
    for (const n of ["rootfs", "images", "cache: python", "builds (global)", "builds (projects)", "live sandboxes", "state"]) expect(names).toContain(n);
    for (const b of r.buckets) {
      if (b.paths.length === 0) continue;
      expect({ name: b.name, disk: b.disk, apparent: b.apparent }).toEqual({ name: b.name, disk: du(b.paths), apparent: du(b.paths, true) });
    }
    expect(r.total.disk).toBe(du([home]));
    expect(r.total.apparent).toBe(du([home], true));
    expect(r.buckets.find((b) => b.name === "builds (projects)")!.paths).toEqual([join(project, ".silo/python")]);
    expect(r.buckets.find((b) => b.name === "images")!.orphans!.blobs).toBe(1);
    const human = ok(await runSilo(["cache", "report"], { home, cwd: project })).stdout;
    expect(human).toContain("rootfs");
    expect(human).toContain("1 orphan blobs");
  });
});

describe("cleaning", () => {
  let home: string;
  beforeAll(async () => {
    home = scratch(makeHome());
    ok(await runSilo(["install", "python"], { home }));
  });

  test("silo cache clean (--safe): orphans and leftovers only", async () => {
    const project = scratchProject("");
    const dead = await deadPid();
    const orphanMarker = join(home, "rootfs", `${"b".repeat(64)}.json`);
    writeFileSync(orphanMarker, "{}");
    const trash = join(home, "rootfs", `.trash-${"c".repeat(64)}-${dead}-1`);
    mkdirSync(trash);
    mkdirSync(join(home, "cache/uninstalled-tool/npm"), { recursive: true });
    const blob = join(home, "images/blobs/sha256", "2".repeat(64));
    writeFileSync(blob, "orphan");
    utimesSync(blob, new Date(Date.now() - 7_200_000), new Date(Date.now() - 7_200_000));
    // Generated CA bundles (app/ca-bundle.ts): one of an image that is gone, one of python's, which stays.
    const caDir = join(home, "state/ca");
    mkdirSync(caDir, { recursive: true });
    const live = readdirSync(join(home, "rootfs")).find((n) => /^[0-9a-f]{64}$/.test(n))!;
    for (const [key, rootfs] of [["e".repeat(32), "d".repeat(64)], ["f".repeat(32), live]] as const) {
      writeFileSync(join(caDir, `${key}.pem`), "bundle");
      writeFileSync(join(caDir, `${key}.json`), JSON.stringify({ rootfs, targets: ["/etc/ssl/certs/ca-certificates.crt"] }));
    }
    const r = await dryThenReal(home, project, "cache", "clean");
    const targets = r.actions.map((a) => a.path ?? a.digest);
    const goneCa = [join(caDir, `${"e".repeat(32)}.json`), join(caDir, `${"e".repeat(32)}.pem`)];
    expect(targets.sort()).toEqual([orphanMarker, trash, join(home, "cache/uninstalled-tool"), `sha256:${"2".repeat(64)}`, ...goneCa].sort());
    expect(readdirSync(caDir).sort()).toEqual([`${"f".repeat(32)}.json`, `${"f".repeat(32)}.pem`]);
    // python is untouched and runs.
    expect(ok(await runSilo(["run", "python", "-c", "print(2)"], { home, cwd: project })).stdout.trim()).toBe("2");
  });

  test("silo cache clean --rootfs removes every rootfs entry; the next run unpacks it again", async () => {
    const project = scratchProject("");
    const fake = fakeEntry(home, "clean-me", 1, 1);
    const r = await dryThenReal(home, project, "cache", "clean", "--rootfs");
    expect(r.actions.filter((a) => a.kind === "remove-rootfs").map((a) => a.digest)).toContain(fake);
    expect(readdirSync(join(home, "rootfs")).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([]);
    expect(ok(await runSilo(["run", "python", "-c", "print(3)"], { home, cwd: project })).stdout.trim()).toBe("3");
  });

  test("silo clean removes this project's build layers and cached config, with --rootfs-only and --caches-only", async () => {
    const project = scratchProject("");
    const other = scratchProject("");
    ok(await runSilo(["build", "python", "sh", "-c", "echo p > /opt/p"], { home, cwd: project }));
    ok(await runSilo(["build", "python", "sh", "-c", "echo o > /opt/o"], { home, cwd: other }));
    const refused = await runSilo(["clean"], { home, cwd: project });
    expect(refused.exitCode).toBe(125);
    expect(refused.stderr).toContain("--force");
    const caches = await dryThenReal(home, project, "clean", "--caches-only", "--force");
    expect(caches.actions.length).toBeGreaterThan(0);
    expect(caches.actions.every((a) => a.path!.startsWith(join(home, "state/resolved")))).toBe(true);
    expect(existsSync(join(project, ".silo/python/current"))).toBe(true);
    const layers = await dryThenReal(home, project, "clean", "--rootfs-only", "--force");
    expect(layers.actions.map((a) => a.path)).toEqual([join(project, ".silo")]);
    expect(existsSync(join(project, ".silo"))).toBe(false);
    expect(existsSync(join(other, ".silo/python/current"))).toBe(true);
    expect((await runSilo(["run", "python", "-c", "open('/opt/p')"], { home, cwd: project })).exitCode).toBe(1);
  });

  test("silo uninstall frees the tool's layers, caches and the image only it used; --keep-image keeps the image", async () => {
    const project = scratchProject("");
    ok(await runSilo(["install", "busybox", "--image", "docker.io/library/busybox:latest"], { home }));
    const digest = (JSON.parse(ok(await runSilo(["list", "--json"], { home })).stdout) as Record<string, { digest: string }>).busybox!.digest;
    ok(await runSilo(["build", "--global", "busybox", "sh", "-c", "echo g > /g"], { home, cwd: project }));
    mkdirSync(join(home, "cache/busybox/x"), { recursive: true });
    const blobsBefore = readdirSync(join(home, "images/blobs/sha256")).length;
    ok(await runSilo(["uninstall", "busybox", "--keep-image"], { home }));
    expect(existsSync(join(home, "builds/busybox"))).toBe(false);
    expect(existsSync(join(home, "cache/busybox"))).toBe(false);
    expect(existsSync(join(home, "rootfs", digest.slice(7)))).toBe(true);
    ok(await runSilo(["install", "busybox", "--image", "docker.io/library/busybox:latest"], { home }));
    const u = ok(await runSilo(["uninstall", "busybox"], { home }));
    expect(u.stderr).toContain("freed");
    expect(existsSync(join(home, "rootfs", digest.slice(7)))).toBe(false);
    expect(existsSync(join(home, "rootfs", `${digest.slice(7)}.json`))).toBe(false);
    // busybox's manifest, config and layer blobs are gone; python's are all there.
    expect(readdirSync(join(home, "images/blobs/sha256")).length).toBeLessThan(blobsBefore);
    expect(existsSync(join(home, "images/blobs/sha256", digest.slice(7)))).toBe(false);
    expect(ok(await runSilo(["run", "python", "-c", "print(4)"], { home, cwd: project })).stdout.trim()).toBe("4");
  });

  test("the daily gc: silo run starts `silo cache gc --auto` once the stamp is a day old", async () => {
    const h = scratch(makeHome());
    const project = scratchProject("");
    ok(await runSilo(["install", "python"], { home: h }));
    ok(await runSilo(["run", "python", "-c", "1"], { home: h, cwd: project })); // starts the clock
    const stamp = join(h, "state/gc.stamp");
    expect(existsSync(stamp)).toBe(true);
    expect(existsSync(join(h, "state/gc.log"))).toBe(false);
    const old = fakeEntry(h, "auto", 1, 90);
    const dayAgo = new Date(Date.now() - 25 * 3_600_000);
    utimesSync(stamp, dayAgo, dayAgo);
    ok(await runSilo(["run", "python", "-c", "1"], { home: h, cwd: project }));
    expect(statSync(stamp).mtimeMs).toBeGreaterThan(dayAgo.getTime() + 3_600_000);
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(h, "state/gc.log")) && Date.now() < deadline) await Bun.sleep(100);
    expect(await Bun.file(join(h, "state/gc.log")).text()).toContain("auto gc");
    expect(existsSync(join(h, "rootfs", old.slice(7)))).toBe(false);
    // Within the day: no second gc.
    const p = await plan(h, project, "cache", "gc", "--dry-run");
    expect(p.actions).toEqual([]);
  });
});
