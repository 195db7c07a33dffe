/**
 * Which of a sandbox's limits (THREATS.md invariant 8) this host lets the bwrap driver enforce, said by
 * `silo doctor` and `--debug`. /tmp's and /dev/shm's sizes (bwrap `--size`) and the writable layer's (a
 * tmpfs upper, native/silo-stage.c mount_upper_tmpfs) hold everywhere. The process cap is RLIMIT_NPROC,
 * which the kernel does not apply to host root, and a cgroup's pids.max where there is one; cpus and
 * memory need a cgroup v2 with those controllers that this user may write.
 *
 * The native stage makes and joins that cgroup itself (silo-stage.c "cgroups", the same rules as
 * `detectLimits` here, which its tests run on fake trees): cgroup v2, a sibling `silo-<pid>` of this
 * process's cgroup P (a cgroup holding processes cannot give controllers to children; P itself when P is
 * the root), so P's parent must be writable (directory and cgroup.procs), and only the controllers in its
 * cgroup.subtree_control count; cgroup v1, for root only (never delegated) and only pids: a child of this
 * process's cgroup in the pids hierarchy. The /bin/sh stage makes none.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { release } from "node:os";
import { dirname, join } from "node:path";

/** What the detection reads; tests give it a fake tree. */
export interface CgroupHost {
  uid: number;
  /** os.release(): tmpfs holds the user.* xattrs of an overlay upper since Linux 6.6. */
  kernel: string;
  /** /proc/self/cgroup */
  selfCgroup: string;
  /** /proc/self/mountinfo */
  mountinfo: string;
  readFile(path: string): string | null;
  writable(path: string): boolean;
}

export interface LimitSupport {
  /** The writable layer is a capped tmpfs (else, Linux < 6.6, the stage keeps it on disk). */
  rootfs: boolean;
  /** RLIMIT_NPROC holds (not for host root). */
  rlimit: boolean;
  /** This process's cgroup v2 directory, when one is mounted. */
  cgroup: string | null;
  /** Where the sandbox's cgroup v2 goes (a sibling of `cgroup`, or under it when it is the root), when writable. */
  v2Parent: string | null;
  /** Controllers (cpu, memory, pids) the sandbox's cgroup v2 gets. */
  controllers: string[];
  /** Root only: where the sandbox's cgroup v1 for pids goes, when writable (and v2 gives no pids). */
  v1Pids: string | null;
}

interface MountLine {
  root: string;
  mountPoint: string;
  fstype: string;
  superOptions: string[];
}

function parseMountinfo(mountinfo: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!post) continue;
    const f = pre!.split(" ");
    const [fstype, , opts] = post.split(" ");
    out.push({ root: f[3] ?? "/", mountPoint: f[4] ?? "", fstype: fstype ?? "", superOptions: (opts ?? "").split(",") });
  }
  return out;
}

/** The cgroup2 mount point from mountinfo (field 5; the filesystem type follows " - "). */
export function cgroup2Mount(mountinfo: string): string | null {
  return parseMountinfo(mountinfo).find((m) => m.fstype === "cgroup2")?.mountPoint ?? null;
}

/**
 * This process's directory in a hierarchy: v2 (`controller` null: fstype cgroup2, the `0::PATH` line) or
 * the v1 one with `controller`. A mount of a sub-tree (its root field not "/") counts for paths below it.
 */
export function cgroupDir(mountinfo: string, selfCgroup: string, controller: string | null): string | null {
  const m = parseMountinfo(mountinfo).find((l) => (controller ? l.fstype === "cgroup" && l.superOptions.includes(controller) : l.fstype === "cgroup2"));
  if (!m) return null;
  for (const line of selfCgroup.split("\n")) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, id, ctl, path] = match;
    if (controller ? !ctl!.split(",").includes(controller) : id !== "0" || ctl !== "") continue;
    let rel = path!;
    if (m.root !== "/") {
      if (rel !== m.root && !rel.startsWith(`${m.root}/`)) return null;
      rel = rel.slice(m.root.length) || "/";
    }
    return rel === "/" ? m.mountPoint : `${m.mountPoint}${rel}`;
  }
  return null;
}

export function detectLimits(h: CgroupHost): LimitSupport {
  const cgroup = cgroupDir(h.mountinfo, h.selfCgroup, null);
  let v2Parent: string | null = null;
  let controllers: string[] = [];
  if (cgroup) {
    const parent = cgroup === cgroup2Mount(h.mountinfo) ? cgroup : dirname(cgroup);
    const subtree = h.readFile(join(parent, "cgroup.subtree_control"));
    if (h.writable(parent) && h.writable(join(parent, "cgroup.procs")) && subtree !== null) {
      controllers = subtree.trim().split(/\s+/).filter((c) => ["cpu", "memory", "pids"].includes(c));
      if (controllers.length > 0) v2Parent = parent;
    }
  }
  let v1Pids: string | null = null;
  if (h.uid === 0 && !controllers.includes("pids")) {
    const dir = cgroupDir(h.mountinfo, h.selfCgroup, "pids");
    if (dir && h.writable(dir)) v1Pids = dir;
  }
  const [major = 0, minor = 0] = h.kernel.split(".").map((n) => parseInt(n, 10));
  return { rootfs: major > 6 || (major === 6 && minor >= 6), rlimit: h.uid !== 0, cgroup, v2Parent, controllers, v1Pids };
}

/** One line for `silo doctor` and `--debug`. The /bin/sh stage (`shellStage`) makes no cgroup. */
export function describeLimits(support: LimitSupport, shellStage = false): string {
  const s = shellStage ? { ...support, v2Parent: null, controllers: [], v1Pids: null } : support;
  const parts = [
    s.rootfs
      ? "/tmp, /dev/shm and the writable layer: sizes enforced (tmpfs)"
      : "/tmp and /dev/shm: sizes enforced (tmpfs); the writable layer: NOT capped (Linux < 6.6: a tmpfs cannot hold an overlay upper in a user namespace, so it stays on disk)",
  ];
  const pidsCgroup = s.controllers.includes("pids") ? `the cgroup v2 ${s.v2Parent}/silo-<pid>` : s.v1Pids ? `the cgroup v1 ${s.v1Pids}/silo-<pid>` : null;
  parts.push(
    pidsCgroup
      ? `processes: enforced (pids.max of ${pidsCgroup}${s.rlimit ? ", and RLIMIT_NPROC" : ""})`
      : s.rlimit
        ? "processes: enforced (RLIMIT_NPROC)"
        : `processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC, and ${shellStage ? "the /bin/sh stage makes no cgroup" : "no pids cgroup is writable here"})`,
  );
  const missing = ["cpu", "memory"].filter((c) => !s.controllers.includes(c));
  const has = ["cpu", "memory"].filter((c) => s.controllers.includes(c));
  const why = !s.cgroup
    ? "no cgroup v2 mounted"
    : !s.v2Parent
      ? `no writable cgroup v2 beside ${s.cgroup} offers them`
      : `the cgroup v2 ${s.v2Parent} does not offer ${missing.join(", ")}`;
  const fix = "needs a delegated cgroup v2, e.g. systemd-run --user --scope";
  parts.push(
    missing.length === 0
      ? `cpus/memory: enforced (the cgroup v2 ${s.v2Parent}/silo-<pid>)`
      : has.length
        ? `cpus/memory: ${has.join(", ")} enforced, ${missing.join(", ")} NOT (${why})`
        : `cpus/memory: NOT enforced (${why}: ${fix})`,
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
    kernel: release(),
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
