import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cgroup2Mount, cgroupDir, describeLimits, detectLimits, type CgroupHost } from "../../../src/runner/drivers/bwrap/limits.ts";
import { tmp } from "../../helpers/silo.ts";

// These machines: memory and pids are cgroup v1, a cgroup2 (hybrid) with only hugetlb, PID 1 not systemd.
const HYBRID_MOUNTS = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 30 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_SELF = "8:pids:/\n4:memory:/process_api/6af1\n3:cpu,cpuacct:/\n0::/\n";
// A systemd host with a delegated user session (unified hierarchy only).
const UNIFIED_MOUNTS = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
const SLICE = "/user.slice/user-1000.slice/user@1000.service/app.slice";
const USER_SCOPE = `${SLICE}/vte-spawn-1.scope`;

const host = (o: { uid?: number; kernel?: string; selfCgroup: string; mountinfo: string; files?: Record<string, string>; writable?: string[] }): CgroupHost => ({
  uid: o.uid ?? 1000,
  kernel: o.kernel ?? "6.18.0",
  selfCgroup: o.selfCgroup,
  mountinfo: o.mountinfo,
  readFile: (p) => o.files?.[p] ?? null,
  writable: (p) => (o.writable ?? []).includes(p),
});

describe("limits detection (the native stage's cgroup rules: silo-stage.c cgroup_find)", () => {
  test("the cgroup2 mount point is found by filesystem type, after the optional fields", () => {
    expect(cgroup2Mount(HYBRID_MOUNTS)).toBe("/sys/fs/cgroup/unified");
    expect(cgroup2Mount(UNIFIED_MOUNTS)).toBe("/sys/fs/cgroup");
    expect(cgroup2Mount("30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n")).toBeNull();
  });
  test("this process's directory in a v1 hierarchy: by controller, in a comma-joined list too; a sub-tree mount", () => {
    expect(cgroupDir(HYBRID_MOUNTS, HYBRID_SELF, "pids")).toBe("/sys/fs/cgroup/pids");
    expect(cgroupDir(HYBRID_MOUNTS, HYBRID_SELF, "memory")).toBe("/sys/fs/cgroup/memory/process_api/6af1");
    expect(cgroupDir(HYBRID_MOUNTS, HYBRID_SELF, "cpu")).toBe("/sys/fs/cgroup/cpu,cpuacct");
    expect(cgroupDir(HYBRID_MOUNTS, HYBRID_SELF, null)).toBe("/sys/fs/cgroup/unified");
    // A container's mount of its own sub-tree (root field /docker/abc): paths below it only.
    const sub = "38 30 0:35 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
    expect(cgroupDir(sub, "8:pids:/docker/abc/x\n", "pids")).toBe("/sys/fs/cgroup/pids/x");
    expect(cgroupDir(sub, "8:pids:/docker/abc\n", "pids")).toBe("/sys/fs/cgroup/pids");
    expect(cgroupDir(sub, "8:pids:/elsewhere\n", "pids")).toBeNull();
  });
  test("a hybrid host (v1 memory and pids), unprivileged: processes capped by RLIMIT_NPROC, cpus and memory not, and said so", () => {
    const s = detectLimits(host({ selfCgroup: HYBRID_SELF, mountinfo: HYBRID_MOUNTS, files: { "/sys/fs/cgroup/unified/cgroup.subtree_control": "\n" } }));
    expect(s).toEqual({ rootfs: true, rlimit: true, cgroup: "/sys/fs/cgroup/unified", v2Parent: null, controllers: [], v1Pids: null });
    expect(describeLimits(s)).toContain("/tmp, /dev/shm and the writable layer: sizes enforced (tmpfs)");
    expect(describeLimits(s)).toContain("processes: enforced (RLIMIT_NPROC)");
    expect(describeLimits(s)).toContain("cpus/memory: NOT enforced (no writable cgroup v2 beside /sys/fs/cgroup/unified offers them: needs a delegated cgroup v2");
  });
  test("as root on that host: a child of its pids v1 cgroup caps processes; memory and cpu are never taken from v1", () => {
    const u = "/sys/fs/cgroup/unified";
    const s = detectLimits(host({
      uid: 0, selfCgroup: HYBRID_SELF, mountinfo: HYBRID_MOUNTS,
      files: { [`${u}/cgroup.subtree_control`]: "\n" },
      writable: [u, `${u}/cgroup.procs`, `${u}/cgroup.subtree_control`, "/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory/process_api/6af1"],
    }));
    expect(s).toMatchObject({ rlimit: false, v2Parent: null, controllers: [], v1Pids: "/sys/fs/cgroup/pids" });
    expect(describeLimits(s)).toContain("processes: enforced (pids.max of the cgroup v1 /sys/fs/cgroup/pids/silo-<pid>)");
    expect(describeLimits(s)).toContain("cpus/memory: NOT enforced");
    // The /bin/sh stage makes no cgroup: then root's processes are not capped, and that is said.
    expect(describeLimits(s, true)).toContain("processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC, and the /bin/sh stage makes no cgroup)");
    // A read-only pids hierarchy (a container): nothing, and said so.
    const ro = detectLimits(host({ uid: 0, selfCgroup: HYBRID_SELF, mountinfo: HYBRID_MOUNTS }));
    expect(ro.v1Pids).toBeNull();
    expect(describeLimits(ro)).toContain("processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC, and no pids cgroup is writable here)");
  });
  test("a delegated systemd --user slice: the sandbox's cgroup is a sibling of this process's scope, with the slice's controllers", () => {
    const parent = `/sys/fs/cgroup${SLICE}`;
    const files = { [`${parent}/cgroup.subtree_control`]: "cpu memory pids\n" };
    const self = `0::${USER_SCOPE}\n`;
    const s = detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files, writable: [parent, `${parent}/cgroup.procs`] }));
    expect(s).toEqual({ rootfs: true, rlimit: true, cgroup: `/sys/fs/cgroup${USER_SCOPE}`, v2Parent: parent, controllers: ["cpu", "memory", "pids"], v1Pids: null });
    expect(describeLimits(s)).toContain(`processes: enforced (pids.max of the cgroup v2 ${parent}/silo-<pid>, and RLIMIT_NPROC)`);
    expect(describeLimits(s)).toContain(`cpus/memory: enforced (the cgroup v2 ${parent}/silo-<pid>)`);
    // Not writable (its cgroup.procs, or itself), or no controllers given to children: nothing.
    expect(detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files, writable: [parent] })).v2Parent).toBeNull();
    expect(detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files })).v2Parent).toBeNull();
    const none = { [`${parent}/cgroup.subtree_control`]: "\n" };
    expect(detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files: none, writable: [parent, `${parent}/cgroup.procs`] })).controllers).toEqual([]);
    // Only memory given: cpus said to be missing.
    const mem = { [`${parent}/cgroup.subtree_control`]: "memory\n" };
    const m = detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files: mem, writable: [parent, `${parent}/cgroup.procs`] }));
    expect(describeLimits(m)).toContain(`cpus/memory: memory enforced, cpu NOT (the cgroup v2 ${parent} does not offer cpu)`);
  });
  test("root in the root cgroup of a unified host: the sandbox's cgroup is the root's child", () => {
    const files = { "/sys/fs/cgroup/cgroup.subtree_control": "cpuset cpu io memory pids\n" };
    const s = detectLimits(host({ uid: 0, selfCgroup: "0::/\n", mountinfo: UNIFIED_MOUNTS, files, writable: ["/sys/fs/cgroup", "/sys/fs/cgroup/cgroup.procs"] }));
    expect(s).toMatchObject({ v2Parent: "/sys/fs/cgroup", controllers: ["cpu", "memory", "pids"], v1Pids: null, rlimit: false });
    expect(describeLimits(s)).toContain("processes: enforced (pids.max of the cgroup v2 /sys/fs/cgroup/silo-<pid>)");
  });
  test("no cgroup v2 at all; a kernel before 6.6 keeps the writable layer on disk, and says so", () => {
    const s = detectLimits(host({ kernel: "6.1.0-18-amd64", selfCgroup: "4:memory:/\n", mountinfo: "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" }));
    expect(s.cgroup).toBeNull();
    expect(s.rootfs).toBe(false);
    expect(describeLimits(s)).toContain("no cgroup v2 mounted");
    expect(describeLimits(s)).toContain("the writable layer: NOT capped (Linux < 6.6");
  });
  test("a fake tree on disk, read through the host's own file functions", async () => {
    const root = tmp("silo-cgroup-");
    const parent = join(root, "app.slice");
    mkdirSync(join(parent, "term.scope"), { recursive: true });
    writeFileSync(join(parent, "cgroup.subtree_control"), "memory pids\n");
    writeFileSync(join(parent, "cgroup.procs"), "");
    const { accessSync, constants, readFileSync } = await import("node:fs");
    const s = detectLimits({
      uid: 1000, kernel: "6.8.0", selfCgroup: "0::/app.slice/term.scope\n", mountinfo: `29 23 0:26 / ${root} rw - cgroup2 cgroup2 rw\n`,
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
    expect(s).toMatchObject({ cgroup: join(parent, "term.scope"), v2Parent: parent, controllers: ["memory", "pids"] });
  });
});
