// THREATS.md invariant 8 (Bounded), with 9 (Fail closed) for what cannot be enforced: the sandbox cannot
// fill the host's memory through /tmp (a RAM tmpfs) or fork the host to death. Small caps only: /tmp is
// capped at 8 MiB and filled with 20 MiB; the fork loop is bounded by its own count (200 children that
// exit after a few seconds) as well as by the cap, and the whole run by a SIGKILL timeout. As root the
// kernel exempts the sandbox from RLIMIT_NPROC, so there the test asserts that silo says the cap is not
// enforced (--debug, silo doctor) and runs no fork loop. Writes to /workspace are the user's disk: not capped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
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
    capped = makeProject(`[resources]\ntmp = "8m"\npids = 64\n`);
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

  test("writes to /workspace are the user's disk and are not capped by /tmp's size", async () => {
    ok(await runSilo(sh("dd if=/dev/zero of=/workspace/big bs=1M count=20 2>/dev/null"), { home, cwd: capped }));
    expect(statSync(join(capped, "big")).size).toBe(20 * 1024 * 1024);
  }, T);

  test("an untrusted project file cannot raise a limit, only lower it", async () => {
    const raising = makeProject(`[resources]\ntmp = "1t"\npids = 1000000\n`);
    const r = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: raising }));
    expect(r.stderr).toContain(" 8192 processes");
    expect(r.stderr).not.toContain("1048576 MiB");
    const lowering = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: capped }));
    expect(lowering.stderr).toContain("limits: /tmp 8 MiB, 64 processes");
  }, T);

  if (asRoot) {
    test("as root the process cap is not enforced (the kernel exempts root), and --debug and silo doctor say so", async () => {
      const r = ok(await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: capped }));
      expect(r.stderr).toContain("processes: NOT enforced (running as root: the kernel exempts root from RLIMIT_NPROC");
      const d = await runSilo(["doctor"], { home, cwd: capped });
      expect(d.stdout).toContain("processes: NOT enforced (running as root");
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
  }
});
