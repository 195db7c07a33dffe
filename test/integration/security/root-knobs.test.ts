// THREATS.md invariants 2 and 4: the sandbox never holds host privilege, and leaves nothing on the host. Run as root (CI, containers, devboxes),
// the sandbox's uid 0 is host uid 0 (so that what it writes in /workspace stays the caller's), and the
// kernel's root-owned knobs open for writing by their owner whatever user namespace it is in: a pipe
// handler in kernel/core_pattern runs as host root. Each knob is probed by open(O_WRONLY) only, never
// written. As root the host control shows each existing knob is writable there; as an unprivileged user
// none is, on the host or inside.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, constants, openSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok, pyJson } from "../isolation/_helpers.ts";

const T = 60_000;
const asRoot = process.getuid?.() === 0;

/** Host-root-ish knobs: sysctls, magic files in /proc, and sysfs. Absent ones are fine (not every kernel has them). */
const KNOBS = [
  "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/kernel/hotplug", "/proc/sys/vm/drop_caches",
  "/proc/sys/vm/overcommit_memory", "/proc/sys/fs/file-max", "/proc/sys/fs/binfmt_misc/register", "/proc/sys/fs/binfmt_misc/status",
  "/proc/sys/kernel/sysrq", "/proc/sys/kernel/panic", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/proc/kcore", "/proc/kmsg",
  "/proc/mtrr", "/proc/acpi/wakeup", "/proc/irq/default_smp_affinity", "/proc/bus/pci/devices",
  "/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/power/state", "/sys/fs/cgroup/cgroup.procs",
  "/sys/fs/cgroup/cgroup.subtree_control", "/sys/module/kernel/parameters/panic",
];

/** Sysctls that belong to the reader's own namespaces (ipc, pid, uts, net, user). */
const OWN_NAMESPACE_SYSCTL =
  /^\/proc\/sys\/(fs\/mqueue\/|kernel\/(msg\w*|sem|shm\w*|auto_msgmni|pid_max|ns_last_pid|hostname|domainname)$|net\/|user\/)/;

function openableForWrite(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}

describe("security: root's kernel knobs stay out of the sandbox's reach (invariant 4)", () => {
  let home: string;
  let project: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    project = makeProject("");
  }, 300_000);
  afterAll(cleanUp);

  test("no host knob opens for writing inside, though as root every existing one does on the host", async () => {
    const onHost = KNOBS.filter(openableForWrite);
    if (asRoot) {
      // The attack works without the barrier: host root may open them all (core_pattern above all).
      expect(onHost).toContain("/proc/sys/kernel/core_pattern");
      expect(onHost).toContain("/proc/sys/vm/drop_caches");
    } else {
      expect(onHost).toEqual([]);
    }
    const inside = await pyJson<Record<string, string>>(
      home,
      project,
      `out = {}
for p in ${JSON.stringify(KNOBS)}:
    try:
        os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK)); out[p] = "WRITABLE"
    except OSError as e: out[p] = e.strerror
print(json.dumps(out))`,
    );
    expect(Object.entries(inside).filter(([, v]) => v === "WRITABLE")).toEqual([]);
    // As root covered (read-only); else its owner, root, is not mapped inside.
    expect(inside["/proc/sys/kernel/hostname"]).toBe(asRoot ? "Read-only file system" : "Permission denied");
  }, T);

  test("nothing under /proc outside the sandbox's own processes, and nothing under /sys, opens for writing as a knob", async () => {
    // A walk, not a list: any file whose mode has a write bit and that the sandbox may open for writing,
    // apart from its own /proc/<pid> entries and world-writable files (/proc/pressure triggers). (As root, a
    // file without a write bit opens for writing too, by CAP_DAC_OVERRIDE over a mapped owner; it has no
    // write operation.)
    const found = await pyJson<string[]>(
      home,
      project,
      `out = []
for top in ("/proc", "/sys"):
    for root, dirs, files in os.walk(top):
        parts = root.split("/")
        if top == "/proc" and len(parts) > 2 and (parts[2].isdigit() or parts[2] in ("self", "thread-self")):
            dirs[:] = []; continue
        for f in files:
            p = os.path.join(root, f)
            try:
                mode = os.stat(p).st_mode
                if mode & 0o002 or not mode & 0o222: continue
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK)); out.append(p)
            except OSError: pass
print(json.dumps(out))`,
    );
    // Unprivileged, the sandbox owns its own ipc, pid, uts, net and user namespaces, and their sysctls
    // (message queue limits, pid_max, hostname, ...) are its to change; they are not the host's.
    expect(found.filter((p) => !OWN_NAMESPACE_SYSCTL.test(p))).toEqual([]);
  }, T);

  test("the host's device nodes keep their mode and times: as root the host may change them, the sandbox may not", async () => {
    const NODES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];
    const before = NODES.map((n) => statSync(n));
    // The control: chmod to the mode it already has changes nothing but the ctime, and works for the
    // owner only. Host root owns them, so the sandbox's root (host uid 0 when silo runs as root) would too.
    const onHost = NODES.filter((n, i) => {
      try {
        chmodSync(n, before[i]!.mode & 0o7777);
        return true;
      } catch {
        return false;
      }
    });
    expect(onHost).toEqual(asRoot ? NODES : []);
    const after = NODES.map((n) => statSync(n));
    const inside = await pyJson<Record<string, string>>(
      home,
      project,
      `out = {}
for p in ${JSON.stringify(NODES)}:
    try:
        os.chmod(p, os.stat(p).st_mode & 0o7777); out[p] = "CHANGED"
    except OSError as e: out[p] = e.strerror
    try:
        os.utime(p, (0, 0)); out[p] += " TIMES"
    except OSError: pass
open("/dev/null", "w").write("still a device")
out["zero"] = open("/dev/zero", "rb").read(4).hex()
out["urandom"] = str(len(open("/dev/urandom", "rb").read(16)))
print(json.dumps(out))`,
    );
    for (const n of NODES) expect(inside[n]).toBe(asRoot ? "Read-only file system" : "Operation not permitted");
    expect(inside.zero).toBe("00000000");
    expect(inside.urandom).toBe("16");
    // Nothing reached the host: modes and times as they were after the control.
    NODES.forEach((n, i) => {
      const st = statSync(n);
      expect([st.mode, st.mtimeMs, st.ctimeMs]).toEqual([after[i]!.mode, after[i]!.mtimeMs, after[i]!.ctimeMs]);
    });
  }, T);

  test("its own user namespace; what it creates in /workspace belongs to whoever ran silo", async () => {
    const r = await pyJson<{ ns: string; uid: number }>(
      home,
      project,
      `open("/workspace/made-inside", "w").close()
print(json.dumps({"ns": os.readlink("/proc/self/ns/user"), "uid": os.getuid()}))`,
    );
    expect(r.uid).toBe(0); // root inside
    expect(r.ns).not.toBe(readlinkSync("/proc/self/ns/user"));
    expect(statSync(join(project, "made-inside")).uid).toBe(process.getuid!());
    ok(await runSilo(["run", "python", "-c", "pass"], { home, cwd: project }));
  }, T);
});
