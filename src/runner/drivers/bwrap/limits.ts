/**
 * Which of a sandbox's limits (THREATS.md invariant 8) this host lets the bwrap driver enforce, said by
 * `silo doctor` and `--debug`. /tmp's size (bwrap `--size`) holds everywhere. The process cap is
 * RLIMIT_NPROC (native/silo-stage.c), which the kernel does not apply to host root. cpus and memory need
 * a cgroup v2 that this user may write, with those controllers; without one they are not enforced.
 * (On a host whose memory and pids controllers are cgroup v1 and whose PID 1 is not systemd there is none
 * for an unprivileged user, and silo does not write to v1 hierarchies as root either.)
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";

/** What the detection reads; tests give it a fake tree. */
export interface CgroupHost {
  uid: number;
  /** /proc/self/cgroup */
  selfCgroup: string;
  /** /proc/self/mountinfo */
  mountinfo: string;
  readFile(path: string): string | null;
  writable(path: string): boolean;
}

export interface LimitSupport {
  /** The process cap holds (RLIMIT_NPROC: not for host root). */
  processes: boolean;
  /** This process's cgroup v2 directory, when one is mounted. */
  cgroup: string | null;
  /** Controllers of that cgroup this user could use for a child cgroup (it is writable). */
  controllers: string[];
}

/** The cgroup2 mount point from mountinfo (field 5; the filesystem type follows " - "). */
export function cgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (post?.startsWith("cgroup2 ")) return pre!.split(" ")[4] ?? null;
  }
  return null;
}

export function detectLimits(h: CgroupHost): LimitSupport {
  const mount = cgroup2Mount(h.mountinfo);
  const rel = /^0::(\/.*)$/m.exec(h.selfCgroup)?.[1];
  const cgroup = mount && rel !== undefined ? (rel === "/" ? mount : join(mount, rel)) : null;
  let controllers: string[] = [];
  // A child cgroup needs the directory writable (mkdir) and the controllers offered to its children.
  if (cgroup && h.writable(cgroup) && h.writable(join(cgroup, "cgroup.subtree_control")))
    controllers = (h.readFile(join(cgroup, "cgroup.controllers")) ?? "").trim().split(/\s+/).filter((c) => ["cpu", "memory", "pids"].includes(c));
  return { processes: h.uid !== 0, cgroup, controllers };
}

/** One line for `silo doctor` and `--debug`. */
export function describeLimits(s: LimitSupport): string {
  const parts = ["/tmp size: enforced"];
  parts.push(
    s.processes
      ? "processes: enforced (RLIMIT_NPROC)"
      : s.controllers.includes("pids")
        ? "processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC; a writable pids cgroup v2 exists, silo does not use it yet)"
        : "processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC, and there is no writable pids cgroup v2)",
  );
  const missing = ["cpu", "memory"].filter((c) => !s.controllers.includes(c));
  parts.push(
    missing.length === 0
      ? `cpus/memory: NOT enforced (a writable cgroup v2 with both exists at ${s.cgroup}; silo does not use it yet)`
      : `cpus/memory: NOT enforced (${s.cgroup ? `the cgroup v2 ${s.cgroup} is not writable or lacks ${missing.join(", ")}` : "no cgroup v2 mounted"}: needs a delegated cgroup v2, e.g. systemd --user)`,
  );
  return parts.join("; ");
}

/** This host, read now (doctor, and --debug only: never on the path of a plain run). */
export function hostLimitSupport(): LimitSupport {
  const read = (p: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return null;
    }
  };
  return detectLimits({
    uid: process.getuid?.() ?? -1,
    selfCgroup: read("/proc/self/cgroup") ?? "",
    mountinfo: read("/proc/self/mountinfo") ?? "",
    readFile: read,
    writable: (p) => {
      try {
        accessSync(p, constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
  });
}
