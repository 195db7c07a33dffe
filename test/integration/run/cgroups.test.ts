// The native stage finds the cgroups it puts a sandbox in (silo-stage.c cgroup_find) by the same rules as
// limits.ts detectLimits, which `silo doctor` and --debug report. Both are run here on the same fake trees
// (real directories, a fake /proc/self/cgroup and mountinfo): a hybrid host like these machines, a delegated
// systemd --user slice, root in a unified hierarchy's root cgroup. (That the cgroup is made, joined, limited
// and removed is tested for real as root in test/integration/security/limits.test.ts.)
import { describe, expect, test } from "bun:test";
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { detectLimits } from "../../../src/runner/drivers/bwrap/limits.ts";
import { tmp } from "../../helpers/silo.ts";

const stage = join(import.meta.dir, "../../../dist/.native", `${process.platform}-${process.arch}`, "silo-stage");

/** What the stage would make, one "vN DIR controllers..." line each, with its pid in DIR replaced by PID. */
function stageSays(selfCgroup: string, mountinfo: string, uid: number): string[] {
  const dir = tmp("silo-cg-proc-");
  writeFileSync(join(dir, "cgroup"), selfCgroup);
  writeFileSync(join(dir, "mountinfo"), mountinfo);
  const r = Bun.spawnSync([stage, "--cgroups-of", join(dir, "cgroup"), join(dir, "mountinfo"), String(uid)], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString().trim().split("\n").filter(Boolean).map((l) => l.replace(/\/silo-\d+/, "/silo-PID"));
}

/** What limits.ts says for the same files, in the stage's format. */
function siloSays(selfCgroup: string, mountinfo: string, uid: number): string[] {
  const s = detectLimits({
    uid, kernel: release(), selfCgroup, mountinfo,
    readFile: (p) => {
      try {
        return readFileSync(p, "utf8");
      } catch {
        return null;
      }
    },
    writable: (p) => {
      try {
        accessSync(p, constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
  });
  const out: string[] = [];
  const order = ["pids", "memory", "cpu"].filter((c) => s.controllers.includes(c));
  if (s.v2Parent) out.push(`v2 ${s.v2Parent}/silo-PID ${order.join(" ")}`);
  if (s.v1Pids) out.push(`v1 ${s.v1Pids}/silo-PID pids`);
  return out;
}

const dirs = (root: string, ...paths: string[]) => paths.forEach((p) => mkdirSync(join(root, p), { recursive: true }));

describe("the native stage's cgroups agree with limits.ts", () => {
  test("a hybrid host (pids v1, an empty cgroup2): as root a child of its pids cgroup; as a user none", () => {
    const root = tmp("silo-cg-");
    dirs(root, "pids/ci", "unified", "memory");
    writeFileSync(join(root, "unified/cgroup.subtree_control"), "\n");
    writeFileSync(join(root, "unified/cgroup.procs"), "");
    const info = [
      `34 30 0:31 / ${root}/memory rw,relatime - cgroup cgroup rw,memory`,
      `38 30 0:35 / ${root}/pids rw,relatime - cgroup cgroup rw,pids`,
      `40 30 0:37 / ${root}/unified rw,relatime - cgroup2 cgroup2 rw`,
    ].join("\n");
    const self = "8:pids:/ci\n4:memory:/\n0::/\n";
    expect(stageSays(self, info, 0)).toEqual([`v1 ${root}/pids/ci/silo-PID pids`]);
    expect(siloSays(self, info, 0)).toEqual(stageSays(self, info, 0));
    expect(stageSays(self, info, 1000)).toEqual([]);
    expect(siloSays(self, info, 1000)).toEqual([]);
  });
  test("a delegated slice: a sibling of this process's scope, with the slice's controllers", () => {
    const root = tmp("silo-cg-");
    dirs(root, "user.slice/app.slice/term.scope");
    writeFileSync(join(root, "user.slice/app.slice/cgroup.subtree_control"), "memory pids\n");
    writeFileSync(join(root, "user.slice/app.slice/cgroup.procs"), "");
    const info = `29 23 0:26 / ${root} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate`;
    const self = "0::/user.slice/app.slice/term.scope\n";
    for (const uid of [0, 1000]) {
      expect(stageSays(self, info, uid)).toEqual([`v2 ${root}/user.slice/app.slice/silo-PID pids memory`]);
      expect(siloSays(self, info, uid)).toEqual(stageSays(self, info, uid));
    }
    // No controllers given to the slice's children: nothing (and no v1 either: there is none).
    writeFileSync(join(root, "user.slice/app.slice/cgroup.subtree_control"), "\n");
    expect(stageSays(self, info, 0)).toEqual([]);
    expect(siloSays(self, info, 0)).toEqual([]);
  });
  test("root in the root cgroup of a unified hierarchy: the root's child, with cpu, memory and pids", () => {
    const root = tmp("silo-cg-");
    writeFileSync(join(root, "cgroup.subtree_control"), "cpuset cpu io memory pids\n");
    writeFileSync(join(root, "cgroup.procs"), "");
    const info = `29 23 0:26 / ${root} rw - cgroup2 cgroup2 rw`;
    expect(stageSays("0::/\n", info, 0)).toEqual([`v2 ${root}/silo-PID pids memory cpu`]);
    expect(siloSays("0::/\n", info, 0)).toEqual(stageSays("0::/\n", info, 0));
  });
});
