// THREATS.md invariant 8 (Bounded), with 9 (Fail closed) for what cannot be enforced: the sandbox cannot
// fill the host's memory through /tmp or /dev/shm (RAM tmpfs), nor its disk or memory through the writable
// layer (the overlay upper of a thrown-away run, now a tmpfs of resources.rootfs), nor fork the host to death.
// Small caps only: /tmp and /dev/shm capped at 8 MiB and filled with 20 MiB, the writable layer capped at 16
// MiB and written 40 MiB; the fork loop is bounded by its own count (200 children that exit after a few
// seconds) as well as by the cap, and the whole run by a SIGKILL timeout. The process cap is RLIMIT_NPROC for
// a normal user; as root (which the kernel exempts from it) a pids cgroup the native stage makes (v1 on these
// machines), removed after; the /bin/sh stage makes none, and as root --debug says the cap is not enforced.
// cpus and memory need a delegated cgroup v2, which these machines lack: doctor and --debug say so (the
// detection itself is tested on fake trees, test/unit/runner/limits.test.ts). Writes to /workspace are the
// user's disk: not capped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, siloBin, type SiloResult } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

const T = 120_000;
const asRoot = process.getuid?.() === 0;

/** runSilo with a hard stop: SIGKILL after `ms` (silo's sandbox dies with it: --die-with-parent). */
async function runBounded(args: string[], home: string, cwd: string, env: Record<string, string> = {}, ms = 60_000): Promise<SiloResult & { killed: boolean }> {
  const proc = Bun.spawn([siloBin, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    proc.kill("SIGKILL");
  }, ms);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { stdout, stderr, exitCode, killed };
}

/** Forks up to 200 children (each sleeps 3 s, then exits); prints how many it made and the error that stopped it. */
const FORK_LOOP = `import os, time
n, err = 0, "none"
try:
    while n < 200:
        if os.fork() == 0:
            time.sleep(3); os._exit(0)
        n += 1
except OSError as e:
    err = f"{e.errno} {e.strerror}"
print(n, err, flush=True)
try:
    while True: os.wait()
except ChildProcessError:
    pass`;

describe("security: the sandbox is bounded (invariant 8)", () => {
  let home: string;
  let capped: string;
  let open: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    // Lowering a limit needs no trust: an untrusted project file may only lower (config/resolve.ts).
    capped = makeProject(`[resources]\ntmp = "8m"\npids = 64\nrootfs = "16m"\n`);
    open = makeProject("");
  }, 300_000);
  afterAll(cleanUp);

  /** A shell command in the sandbox (through python: the tool's shims run python). */
  const sh = (cmd: string) => ["run", "python", "-c", `import os, sys; sys.exit(os.waitstatus_to_exitcode(os.system(${JSON.stringify(cmd)})))`];
  const dd = "dd if=/dev/zero of=/tmp/fill bs=1M count=20 2>&1; echo exit=$?";

  test("a /tmp filler: 20 MiB fit in the default /tmp, and stop at 8 MiB with ENOSPC under a cap", async () => {
    // Without the cap the write goes through (what an unbounded RAM tmpfs allows, at any size).
    const free = ok(await runSilo(sh(dd), { home, cwd: open }));
    expect(free.stdout).toContain("exit=0");
    const full = ok(await runSilo(sh(`${dd}; du -sm /tmp/fill`), { home, cwd: capped }));
    expect(full.stdout).toContain("No space left on device");
    expect(full.stdout).toContain("exit=1");
    expect(Number(/(\d+)\s+\/tmp\/fill/.exec(full.stdout)?.[1])).toBeLessThanOrEqual(8);
  }, T);

  test("a /dev/shm filler: 20 MiB fit by default, and stop at /tmp's cap with ENOSPC; /dev itself is read-only", async () => {
    const shm = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=20 2>&1; echo exit=$?";
    // bwrap's own /dev is an unbounded tmpfs: without a mount of its own, /dev/shm is a directory of it.
    const free = ok(await runSilo(sh(`${shm}; df -m /dev/shm | tail -1`), { home, cwd: open }));
    expect(free.stdout).toContain("exit=0");
    const full = ok(await runSilo(sh(`${shm}; du -sm /dev/shm/fill; touch /dev/planted 2>&1; echo touch=$?`), { home, cwd: capped }));
    expect(full.stdout).toContain("No space left on device");
    expect(full.stdout).toContain("exit=1");
    expect(Number(/(\d+)\s+\/dev\/shm\/fill/.exec(full.stdout)?.[1])).toBeLessThanOrEqual(8);
    expect(full.stdout).toContain("Read-only file system");
    expect(full.stdout).toContain("touch=1");
  }, T);

  test("a writable-layer filler: 40 MiB into the image go through by default, held in RAM, not SILO_HOME's disk; under a cap they stop at 16 MiB with ENOSPC; nothing is left", async () => {
    const fill = "dd if=/dev/zero of=/usr/local/fill bs=1M count=40 2>&1; echo exit=$?";
    // Without a cap on it (the default, a quarter of the host's memory) the write goes through. While the
    // sandbox holds it, the run directory on the host's disk has none of it (before: 40 MiB in SILO_HOME/run).
    const marker = join(open, "written");
    const running = runSilo(sh(`${fill}; touch /workspace/written; sleep 4`), { home, cwd: open });
    for (let i = 0; i < 300 && !existsSync(marker); i++) await Bun.sleep(100);
    expect(existsSync(marker)).toBe(true);
    const du = Bun.spawnSync(["du", "-sm", join(home, "run")], { stdout: "pipe" });
    expect(Number(du.stdout.toString().split("\t")[0])).toBeLessThan(5);
    const free = ok(await running);
    expect(free.stdout).toContain("exit=0");
    // Under the cap: ENOSPC in the sandbox, as from a full disk (a clear error from the tool).
    const full = ok(await runSilo(sh(`${fill}; du -sm /usr/local/fill`), { home, cwd: capped }));
    expect(full.stdout).toContain("No space left on device");
    expect(full.stdout).toContain("exit=1");
    expect(Number(/(\d+)\s+\/usr\/local\/fill/.exec(full.stdout)?.[1])).toBeLessThanOrEqual(16);
    // The host is fine, and nothing is left: the tmpfs went with the sandbox's mount namespace, and the
    // run directories with the reaper.
    expect(Bun.spawnSync(["true"]).exitCode).toBe(0);
    for (let i = 0; i < 50 && readdirSync(join(home, "run")).some((n) => !n.endsWith(".sock")); i++) await Bun.sleep(100);
    expect(readdirSync(join(home, "run")).filter((n) => /^\d+-/.test(n))).toEqual([]);
  }, T);

  test("writes to /workspace are the user's disk and are not capped by /tmp's or the writable layer's size", async () => {
    ok(await runSilo(sh("dd if=/dev/zero of=/workspace/big bs=1M count=20 2>/dev/null"), { home, cwd: capped }));
    expect(statSync(join(capped, "big")).size).toBe(20 * 1024 * 1024);
  }, T);

  test("an untrusted project file cannot raise a limit, only lower it; a size below 1m is refused", async () => {
    const raising = makeProject(`[resources]\ntmp = "1t"\nrootfs = "1t"\npids = 1000000\n`);
    const r = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: raising }));
    expect(r.stderr).toContain(" 8192 processes");
    expect(r.stderr).not.toContain("1048576 MiB");
    expect(r.stderr).toContain("ignoring resources.tmp (only a lower value applies untrusted), resources.rootfs (only a lower value applies untrusted), resources.pids (only a lower value applies untrusted)");
    const lowering = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: capped }));
    expect(lowering.stderr).toContain("limits: /tmp and /dev/shm 8 MiB each, writable layer 16 MiB, 64 processes");
    // "0" (or 100k, which rounds to 0 MiB) read as "no cap" before: /tmp was unbounded from an untrusted file.
    const zero = makeProject(`[resources]\ntmp = "0"\n`);
    const z = await runSilo(["run", "python", "-c", "pass"], { home, cwd: zero });
    expect(z.exitCode).toBe(125);
    expect(z.stderr).toContain("silo.toml:2:1: resources.tmp: `0` is below the smallest limit, 1m");
  }, T);

  if (asRoot) {
    test("as root the kernel exempts the sandbox from RLIMIT_NPROC: a fork loop runs free under the /bin/sh stage (and --debug says so), and ends at the pids cgroup's cap with EAGAIN under the native stage, which removes its cgroup after", async () => {
      // The positive control: the /bin/sh stage sets only RLIMIT_NPROC, which root ignores: all 200 start.
      const free = await runBounded(["--debug", "run", "python", "-c", FORK_LOOP], home, capped, { SILO_STAGE: "sh" });
      expect(free.killed).toBe(false);
      expect(free.stdout.trim()).toBe("200 none");
      expect(free.stderr).toContain("processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC, and the /bin/sh stage makes no cgroup)");
      const bomb = await runBounded(["--debug", "run", "python", "-c", FORK_LOOP], home, capped);
      expect(bomb.killed).toBe(false);
      expect(bomb.exitCode).toBe(0);
      const [n, errno, ...msg] = bomb.stdout.trim().split(" ");
      expect(Number(n)).toBeLessThan(64);
      expect(`${errno} ${msg.join(" ")}`).toBe("11 Resource temporarily unavailable");
      expect(bomb.stderr).toContain("processes: enforced (pids.max of the cgroup v1");
      const cgroup = /the sandbox's cgroups: (\S+)/.exec(bomb.stderr)?.[1] ?? "";
      expect(cgroup).toMatch(/\/silo-\d+$/);
      // Its reaper removes it once the stage has ended.
      for (let i = 0; i < 50 && existsSync(cgroup); i++) await Bun.sleep(100);
      expect(existsSync(cgroup)).toBe(false);
      expect(Bun.spawnSync(["true"]).exitCode).toBe(0);
    }, T);
    test("cpus and memory are not enforced on this host (memory is cgroup v1, PID 1 not systemd), and --debug and silo doctor say so", async () => {
      const r = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: capped }));
      expect(r.stderr).toContain("cpus/memory: NOT enforced");
      const d = await runSilo(["doctor"], { home, cwd: capped });
      expect(d.stdout).toContain("processes: enforced (pids.max of the cgroup v1");
      expect(d.stdout).toContain("cpus/memory: NOT enforced");
    }, T);
  } else {
    for (const stage of ["native", "sh"])
      test(`a fork loop ends at the cap with EAGAIN (${stage} stage), and the host stays responsive`, async () => {
        const env: Record<string, string> = stage === "sh" ? { SILO_STAGE: "sh" } : {};
        // Without the cap (the default, 8192) all 200 children start.
        const free = await runBounded(["run", "python", "-c", FORK_LOOP], home, open, env);
        expect(free.killed).toBe(false);
        expect(free.stdout.trim()).toBe("200 none");
        const bomb = await runBounded(["--debug", "run", "python", "-c", FORK_LOOP], home, capped, env);
        expect(bomb.killed).toBe(false);
        expect(bomb.exitCode).toBe(0);
        const [n, errno, ...msg] = bomb.stdout.trim().split(" ");
        expect(Number(n)).toBeLessThan(64);
        expect(`${errno} ${msg.join(" ")}`).toBe("11 Resource temporarily unavailable");
        expect(bomb.stderr).toContain("processes: enforced (RLIMIT_NPROC)");
        // The host is untouched: its own processes still start.
        expect(Bun.spawnSync(["true"]).exitCode).toBe(0);
      }, T);
    test("cpus and memory are not enforced for a normal user here (no delegated cgroup v2), and --debug and silo doctor say so", async () => {
      const r = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: capped }));
      expect(r.stderr).toContain("cpus/memory: NOT enforced");
      const d = await runSilo(["doctor"], { home, cwd: capped });
      expect(d.stdout).toContain("processes: enforced (RLIMIT_NPROC)");
      expect(d.stdout).toContain("cpus/memory: NOT enforced");
    }, T);
  }
});

describe("security: per-user kernel counters and the OOM killer (invariant 8)", () => {
  let home: string;
  let proj: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    proj = makeProject("");
  }, 300_000);
  afterAll(cleanUp);

  const probe = `import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while len(fds) < 100000:
    fd = libc.inotify_init()
    if fd < 0: break
    fds.append(fd)
print(json.dumps({"reached": len(fds), "errno": ctypes.get_errno(), "oom": open("/proc/self/oom_score_adj").read().strip()}))`;
  const hostLimit = () => Number(Bun.spawnSync(["cat", "/proc/sys/user/max_inotify_instances"]).stdout.toString());

  test("inotify instances: a plain user namespace sees no cap of its own; the sandbox stops at half the user's host limit", async () => {
    // The control: a new user namespace's own limit is unlimited; only the chain up to the host's per-user
    // count (shared with the user's editors and watchers) stops it, so a sandbox could take them all.
    const plain = Bun.spawnSync(["unshare", "--user", "--map-root-user", "cat", "/proc/sys/user/max_inotify_instances"]);
    expect(plain.stdout.toString().trim()).toBe("2147483647");
    const r = ok(await runSilo(["run", "python", "-c", probe], { home, cwd: proj }));
    const got = JSON.parse(r.stdout) as { reached: number; errno: number; oom: string };
    expect(got.errno).toBe(24); // EMFILE: the namespace's cap, not the host user's
    expect(got.reached).toBeGreaterThan(0);
    expect(got.reached).toBeLessThanOrEqual(Math.floor(hostLimit() / 2));
    // The OOM killer's first choice: killing the sandbox frees its tmpfs mounts. Both stages (the /bin/sh
    // one does not halve the inotify limits: it cannot read the host's from inside its namespace).
    expect(got.oom).toBe("1000");
    const sh = ok(await runSilo(["run", "python", "-c", "print(open('/proc/self/oom_score_adj').read().strip())"], { home, cwd: proj, env: { SILO_STAGE: "sh" } }));
    expect(sh.stdout.trim()).toBe("1000");
    expect(readFileSync("/proc/self/oom_score_adj", "utf8").trim()).not.toBe("1000"); // silo's caller is untouched
  }, T);
});
