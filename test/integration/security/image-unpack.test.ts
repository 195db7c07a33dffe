// THREATS.md invariant 2 (no setuid/setgid or device files the host would act on later) and invariant 3
// (a SILO_HOME another user could have written is not used). A hostile image carries character and block
// devices, a FIFO and setuid/setgid-root files. A naive extraction as root makes real device nodes on the
// host; silo's unpack makes none (the sandbox has its own /dev), keeps the FIFO (anyone may make one) and
// keeps the setuid bits (inert in the sandbox: user namespace, no_new_privs) where no other user can reach
// them: SILO_HOME is 0700, tightened once when found wider, refused when someone else owns it.
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, statSync, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import { emptyHome, runSilo, tmp } from "../../helpers/silo.ts";
import { makeImage, pushToRegistry } from "../image/_registry.ts";
import { makeTar, type TEntry } from "../../unit/image/_tarball.ts";

const asRoot = process.getuid?.() === 0;
const REPO = "silo-test/hostile-unpack";

const HOSTILE: TEntry[] = [
  { name: "bin/", type: "dir" },
  { name: "bin/sh", data: "#!/bin/sh\n", mode: 0o755 },
  { name: "dev/", type: "dir" },
  { name: "dev/mem", type: "char", devmajor: 1, devminor: 1, mode: 0o666 },
  { name: "opt/", type: "dir" },
  { name: "opt/disk", type: "block", devmajor: 7, devminor: 0, mode: 0o666 },
  { name: "opt/pipe", type: "fifo", mode: 0o644 },
  { name: "opt/suid", data: "#!/bin/sh\nid\n", mode: 0o4755, uid: 0, gid: 0 },
  { name: "opt/sgid", data: "#!/bin/sh\nid\n", mode: 0o2755, uid: 0, gid: 0 },
];

/** Every path under `dir` (lstat, never following a link) with its stats. */
function walk(dir: string, out: { path: string; st: Stats }[] = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    out.push({ path: p, st });
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

beforeAll(async () => {
  await pushToRegistry(REPO, "1", makeImage([HOSTILE]));
});

describe("a hostile image's device nodes and setuid files", () => {
  test("control: a naive `tar -x` of the layer makes what it asks for (as root: real device nodes)", () => {
    const dir = tmp("silo-naive-");
    writeFileSync(join(dir, "layer.tar"), makeTar(HOSTILE));
    mkdirSync(join(dir, "x"));
    const r = Bun.spawnSync(["tar", "-xf", join(dir, "layer.tar"), "-C", join(dir, "x")], { stderr: "pipe" });
    if (asRoot) {
      expect(r.exitCode).toBe(0);
      const mem = lstatSync(join(dir, "x/dev/mem"));
      expect(mem.isCharacterDevice()).toBe(true);
      expect(mem.rdev).toBe((1 << 8) | 1); // makedev(1, 1): /dev/mem
      expect(lstatSync(join(dir, "x/opt/disk")).isBlockDevice()).toBe(true);
      const suid = statSync(join(dir, "x/opt/suid"));
      expect([suid.uid, suid.mode & 0o7777]).toEqual([0, 0o4755]);
    } else {
      // Without root the kernel refuses mknod: the attack is root's to suffer, and silo below runs the same way.
      expect(r.stderr.toString()).toMatch(/dev\/mem: Cannot mknod/);
    }
  });

  test("through silo: no device node anywhere in the rootfs; FIFO and setuid bits kept, in a 0700 SILO_HOME", async () => {
    const home = emptyHome();
    const r = await runSilo(["install", "--quiet", "hostile", "--image", `${REPO}:1`], { home });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/installed hostile@1/);
    const roots = readdirSync(join(home, "rootfs")).filter((n) => !n.includes("."));
    expect(roots.length).toBe(1);
    const rootfs = join(home, "rootfs", roots[0]!);
    const entries = walk(rootfs);
    expect(entries.length).toBeGreaterThan(5);
    expect(entries.filter((e) => e.st.isCharacterDevice() || e.st.isBlockDevice()).map((e) => e.path)).toEqual([]);
    expect(lstatSync(join(rootfs, "opt/pipe")).isFIFO()).toBe(true);
    expect(statSync(join(rootfs, "opt/suid")).mode & 0o7777).toBe(0o4755);
    expect(statSync(join(rootfs, "opt/sgid")).mode & 0o7777).toBe(0o2755);
    // Those setuid files are out of every other user's reach: nobody else may enter SILO_HOME.
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });
});

describe("SILO_HOME is the user's alone", () => {
  test("a missing SILO_HOME is created 0700", async () => {
    const parent = tmp("silo-parent-");
    const home = join(parent, "a", "home");
    const r = await runSilo(["list"], { home, cwd: parent });
    expect(r.exitCode).toBe(0);
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });

  test("a SILO_HOME open to others is tightened to 0700, with one notice, once", async () => {
    const home = emptyHome();
    chmodSync(home, 0o755);
    // Control: as found, every user may enter it and read what it holds.
    expect(statSync(home).mode & 0o005).toBe(0o005);
    const first = await runSilo(["list"], { home });
    expect(first.exitCode).toBe(0);
    expect(first.stderr.trim().split("\n")).toEqual([expect.stringMatching(/SILO_HOME .* was open to other users \(mode 755\); made it 0700/)]);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    const second = await runSilo(["list"], { home });
    expect({ code: second.exitCode, err: second.stderr }).toEqual({ code: 0, err: "" });
  });

  test("a SILO_HOME another user owns is refused (exit 125, one clear line), and left as it was", async () => {
    // As root: a directory given to nobody; unprivileged: one root owns.
    let home = "/usr/share";
    if (asRoot) {
      home = tmp("silo-other-");
      chmodSync(home, 0o755);
      chownSync(home, 65534, 65534);
    }
    const before = statSync(home);
    const r = await runSilo(["list"], { home });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toMatch(/SILO_HOME .* belongs to uid \d+, not to you/);
    expect(r.stderr).not.toMatch(/ at |\.ts:\d+/);
    const after = statSync(home);
    expect([after.mode, after.uid]).toEqual([before.mode, before.uid]);
  });
});
