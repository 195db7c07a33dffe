import { describe, expect, test } from "bun:test";
import { cgroup2Mount, describeLimits, detectLimits, type CgroupHost } from "../../../src/runner/drivers/bwrap/limits.ts";

// These machines: memory and pids are cgroup v1, a cgroup2 (hybrid) with only hugetlb, PID 1 not systemd.
const HYBRID_MOUNTS = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_SELF = "8:pids:/\n4:memory:/process_api/6af1\n0::/\n";
// A systemd host with a delegated user session (unified hierarchy only).
const UNIFIED_MOUNTS = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
const USER_SCOPE = "/user.slice/user-1000.slice/user@1000.service/app.slice/silo.scope";

const host = (o: { uid?: number; selfCgroup: string; mountinfo: string; files?: Record<string, string>; writable?: string[] }): CgroupHost => ({
  uid: o.uid ?? 1000,
  selfCgroup: o.selfCgroup,
  mountinfo: o.mountinfo,
  readFile: (p) => o.files?.[p] ?? null,
  writable: (p) => (o.writable ?? []).includes(p),
});

describe("limits detection", () => {
  test("the cgroup2 mount point is found by filesystem type, after the optional fields", () => {
    expect(cgroup2Mount(HYBRID_MOUNTS)).toBe("/sys/fs/cgroup/unified");
    expect(cgroup2Mount(UNIFIED_MOUNTS)).toBe("/sys/fs/cgroup");
    expect(cgroup2Mount("30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n")).toBeNull();
  });
  test("a hybrid host (v1 memory and pids), unprivileged: processes capped, cpus and memory not, and said so", () => {
    const s = detectLimits(host({ selfCgroup: HYBRID_SELF, mountinfo: HYBRID_MOUNTS, files: { "/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n" } }));
    expect(s).toEqual({ processes: true, cgroup: "/sys/fs/cgroup/unified", controllers: [] });
    expect(describeLimits(s)).toContain("processes: enforced (RLIMIT_NPROC)");
    expect(describeLimits(s)).toContain("cpus/memory: NOT enforced (the cgroup v2 /sys/fs/cgroup/unified is not writable or lacks cpu, memory");
  });
  test("as root on that host: even a writable v2 root offers no pids, so the process cap is not enforced, and said so", () => {
    const d = "/sys/fs/cgroup/unified";
    const s = detectLimits(host({ uid: 0, selfCgroup: HYBRID_SELF, mountinfo: HYBRID_MOUNTS, files: { [`${d}/cgroup.controllers`]: "hugetlb\n" }, writable: [d, `${d}/cgroup.subtree_control`] }));
    expect(s.processes).toBe(false);
    expect(s.controllers).toEqual([]);
    expect(describeLimits(s)).toContain("processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC, and there is no writable pids cgroup v2)");
  });
  test("a delegated systemd --user scope: its controllers count only where the directory and subtree_control are writable", () => {
    const d = `/sys/fs/cgroup${USER_SCOPE}`;
    const files = { [`${d}/cgroup.controllers`]: "cpuset cpu io memory pids\n" };
    const self = `0::${USER_SCOPE}\n`;
    expect(detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files, writable: [d, `${d}/cgroup.subtree_control`] }))).toEqual({
      processes: true, cgroup: d, controllers: ["cpu", "memory", "pids"],
    });
    expect(detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files, writable: [d] })).controllers).toEqual([]);
    expect(detectLimits(host({ selfCgroup: self, mountinfo: UNIFIED_MOUNTS, files })).controllers).toEqual([]);
  });
  test("no cgroup v2 at all", () => {
    const s = detectLimits(host({ selfCgroup: "4:memory:/\n", mountinfo: "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" }));
    expect(s.cgroup).toBeNull();
    expect(describeLimits(s)).toContain("no cgroup v2 mounted");
  });
});
