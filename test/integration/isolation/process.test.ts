// Environment, processes, signals, exit codes and the kernel interface of the sandbox, through the built
// binary. Every probe first shows the thing is reachable on the host, then that it is not inside.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { liveProcessesWith } from "../../helpers/procs.ts";
import { makeProject, runSilo, siloBin } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok, pyJson } from "./_helpers.ts";

const T = 60_000;
/** Host-side probes through Bun's FFI (no python on the host needed). */
const hostProbe = (what: string) => [process.execPath, join(import.meta.dir, "_host-probe.ts"), what];
/** dev.tty.legacy_tiocsti = 0 (Linux 6.2+) forbids TIOCSTI on the host too: then there is nothing to show. */
const tiocstiOnHost = (() => {
  try {
    return readFileSync("/proc/sys/dev/tty/legacy_tiocsti", "utf8").trim() !== "0";
  } catch {
    return true;
  }
})();

describe("isolation: processes and environment", () => {
  let home: string;
  let project: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    project = makeProject("");
  }, 300_000);
  afterAll(cleanUp);

  test("silo doctor finds the bwrap driver working here", async () => {
    const r = ok(await runSilo(["doctor"], { home, cwd: project }));
    expect(r.stdout).toMatch(/driver bwrap\s+ok\s+bubblewrap \d/);
  }, T);

  test("a canary environment variable of the host is absent; the environment is the tool's", async () => {
    expect(process.env.PATH).toBeDefined();
    const env = await pyJson<Record<string, string>>(home, project, "print(json.dumps(dict(os.environ)))", { SILO_CANARY_ENV: "host-secret" });
    expect(env.SILO_CANARY_ENV).toBeUndefined();
    expect(Object.values(env).join("\n")).not.toContain("host-secret");
    expect(env.HOME).toBe("/root");
    expect(env.SILO_HOME).toBeUndefined();
  }, T);

  test("an untrusted project's passEnv is not honoured (a trusted one is)", async () => {
    const proj = makeProject(`passEnv = ["SILO_CANARY_PASS"]\n`);
    const env = { SILO_CANARY_PASS: "from-host" };
    const untrusted = await runSilo(["run", "python", "-c", "import os; print(os.environ.get('SILO_CANARY_PASS'))"], { home, cwd: proj, env });
    expect(ok(untrusted).stdout.trim()).toBe("None");
    expect(untrusted.stderr).toContain("passEnv");
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const trusted = await runSilo(["run", "python", "-c", "import os; print(os.environ.get('SILO_CANARY_PASS'))"], { home, cwd: proj, env });
    expect(ok(trusted).stdout.trim()).toBe("from-host");
  }, T);

  test("host processes are invisible in /proc and cannot be signalled", async () => {
    const sleeper = Bun.spawn(["sleep", "60"]);
    try {
      expect(existsSync(`/proc/${sleeper.pid}`)).toBe(true);
      process.kill(sleeper.pid, 0); // reachable on the host
      const r = await pyJson<{ visible: boolean; kill: string; pids: number[] }>(
        home,
        project,
        `pid = ${sleeper.pid}
try:
    os.kill(pid, 9); k = "sent"
except ProcessLookupError: k = "no such process"
except PermissionError: k = "permission denied"
print(json.dumps({"visible": os.path.exists(f"/proc/{pid}"), "kill": k, "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}))`,
      );
      expect(r.visible).toBe(false);
      expect(r.kill).toBe("no such process");
      expect(Math.max(...r.pids)).toBeLessThan(20); // only the sandbox's own few processes
      expect(sleeper.exitCode).toBeNull();
    } finally {
      sleeper.kill("SIGKILL");
    }
  }, T);

  test("seccomp: keyctl, bpf, ptrace and mount are refused inside", async () => {
    const probe = `import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": {"keyctl": 250, "bpf": 321, "ptrace": 101, "mount": 165}, "aarch64": {"keyctl": 219, "bpf": 280, "ptrace": 117, "mount": 40}}[platform.machine()]
out = {}
for name, n in nr.items():
    r = libc.syscall(n, 0, 0, 0, 0, 0)
    out[name] = ctypes.get_errno() if r < 0 else "ok"
print(json.dumps(out))`;
    // On the host keyctl answers (a bad keyring id: EINVAL or ENOKEY, not EPERM).
    const host = Bun.spawnSync(hostProbe("keyctl"), { stdout: "pipe" }).stdout.toString().trim();
    expect(host).not.toBe("1");
    expect(host).not.toBe("");
    expect(await pyJson(home, project, probe)).toEqual({ keyctl: 1, bpf: 1, ptrace: 1, mount: 1 });
  }, T);

  test.skipIf(!tiocstiOnHost)("TIOCSTI cannot push input into the caller's terminal", async () => {
    const inject = `import fcntl, termios, sys
try:
    fcntl.ioctl(sys.stdin.fileno(), termios.TIOCSTI, b"#"); print("INJECTED")
except OSError as e: print("REFUSED", e.errno)`;
    // `script` gives the command a real terminal, as a user's shell would.
    const onHost = Bun.spawnSync(["script", "-qec", hostProbe("tiocsti").join(" "), "/dev/null"], { stdout: "pipe", stdin: "pipe" });
    expect(onHost.stdout.toString()).toContain("INJECTED");
    const inSandbox = Bun.spawnSync(["script", "-qec", `${siloBin} run --tty python -c '${inject}'`, "/dev/null"], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home, TERM: "xterm" },
      stdout: "pipe",
      stdin: "pipe",
    });
    const out = inSandbox.stdout.toString();
    expect(out).toContain("REFUSED 1");
    expect(out).not.toContain("INJECTED");
  }, T);

  test("exit codes 0, 1, 42 pass through; a missing command is 127; death by signal n is 128+n", async () => {
    for (const code of [0, 1, 42]) {
      const r = await runSilo(["run", "python", "-c", `import sys; sys.exit(${code})`], { home, cwd: project });
      expect(r.exitCode).toBe(code);
    }
    const missing = await runSilo(["run", "--shim", "no-such-command", "python"], { home, cwd: project });
    expect(missing.exitCode).toBe(127);
    for (const [sig, n] of [["SIGTERM", 15], ["SIGKILL", 9]] as const) {
      const r = await runSilo(["run", "python", "-c", `import os, signal; os.kill(os.getpid(), signal.${sig})`], { home, cwd: project });
      expect(r.exitCode).toBe(128 + n);
    }
  }, T);

  test("stdin, stdout and stderr pass through byte-exact, with EOF", async () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7919) % 256);
    const proc = Bun.spawn([siloBin, "run", "python", "-c", "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[::-1]); sys.stderr.write(str(len(d)))"], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home },
      stdin: bytes,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    expect(err).toBe("70000");
    expect(Buffer.from(out).equals(Buffer.from(bytes.reverse()))).toBe(true);
    const echo = await runSilo(["run", "python", "-c", "import sys; print(sys.stdin.read())"], { home, cwd: project, stdin: "hi" });
    expect(echo.stdout).toBe("hi\n");
  }, T);

  test("SIGINT, SIGTERM and SIGHUP sent to silo reach the tool", async () => {
    for (const [sig, n] of [["SIGTERM", 15], ["SIGINT", 2], ["SIGHUP", 1]] as const) {
      const proc = Bun.spawn(
        // os.write, not print: the signal may land while print("ready") is still flushing.
        [siloBin, "run", "python", "-c", `import os, signal, sys, time\nsignal.signal(signal.${sig}, lambda *a: (os.write(1, b"got ${n}\\n"), os._exit(${n})))\nos.write(1, b"ready\\n")\ntime.sleep(30)`],
        { cwd: project, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home }, stdout: "pipe", stderr: "pipe" },
      );
      const reader = proc.stdout.getReader();
      let out = "";
      while (!out.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      proc.kill(sig);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      expect({ sig, code: await proc.exited, out: out.trim() }).toEqual({ sig, code: n, out: `ready\ngot ${n}` });
    }
  }, T);

  test("a SIGKILLed silo leaves no process, no mount and no run directory (its reapers remove them)", async () => {
    const mark = `silo-kill-mark-${process.pid}-${Date.now()}`;
    const proc = Bun.spawn([siloBin, "run", "python", "-c", `import time; print("up", flush=True); time.sleep(60) # ${mark}`], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home },
      stdout: "pipe",
    });
    const reader = proc.stdout.getReader();
    await reader.read(); // "up": the sandbox is running
    expect(liveProcessesWith(mark).length).toBeGreaterThan(0);
    const runDirs = () => (existsSync(join(home, "run")) ? readdirSync(join(home, "run")).filter((d) => d.startsWith(`${proc.pid}-`)) : []);
    expect(runDirs().length).toBeGreaterThan(0);
    proc.kill("SIGKILL");
    await proc.exited;
    let left = liveProcessesWith(mark);
    for (let i = 0; i < 50 && left.length; i++) {
      await Bun.sleep(100);
      left = liveProcessesWith(mark);
    }
    expect(left).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(join(home, "run"));
    for (let i = 0; i < 100 && runDirs().length; i++) await Bun.sleep(50);
    expect(runDirs()).toEqual([]);
    ok(await runSilo(["run", "python", "-c", "pass"], { home, cwd: project }));
  }, T);

  test("silo shell is a real terminal: job control, Ctrl-C stops the foreground job, not the shell", async () => {
    const lines = ["sleep 30 & jobs; kill %1; wait %1; echo killed=$?", "sleep 30; echo never", "stty size; echo after-ctrl-c; exit 3"];
    // Feed the lines one by one (Ctrl-C only once `sleep 30` runs), through a pty made by `script`.
    const feeder = [
      "sleep 1.5", `printf '%s\\n' '${lines[0]}'`, "sleep 0.5", `printf '%s\\n' '${lines[1]}'`, "sleep 1",
      "printf '\\003'", "sleep 0.5", `printf '%s\\n' '${lines[2]}'`, "sleep 1",
    ].join("; ");
    const r = Bun.spawnSync(["sh", "-c", `(${feeder}) | script -qec "stty cols 101 rows 33; ${siloBin} shell python" /dev/null`], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home, TERM: "xterm" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = r.stdout.toString().replaceAll("\r", "");
    expect(out).toContain("killed=143");
    expect(out).toContain("33 101");
    expect(out).toContain("after-ctrl-c");
    expect(out).not.toMatch(/^never/m);
    expect(r.exitCode).toBe(3);
  }, T);

  test("silo status lists a running sandbox, and not once it has ended", async () => {
    const proc = Bun.spawn([siloBin, "run", "python", "-c", "import time; print('up', flush=True); time.sleep(30)"], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home },
      stdout: "pipe",
    });
    await proc.stdout.getReader().read();
    // A sandbox is recorded once it has run for a moment (short commands never touch the database).
    type Row = { tool: string; pid: number; project: string };
    let during: Row[] = [];
    for (let i = 0; i < 30 && !during.some((e) => e.pid === proc.pid); i++) {
      await Bun.sleep(100);
      during = JSON.parse(ok(await runSilo(["status", "--json"], { home, cwd: project })).stdout) as Row[];
    }
    expect(during.filter((e) => e.pid === proc.pid).map((e) => [e.tool, e.project])).toEqual([["python", project]]);
    proc.kill("SIGKILL"); // not even a chance to remove its entry: status reaps it
    await proc.exited;
    const after = JSON.parse(ok(await runSilo(["status", "--json"], { home, cwd: project })).stdout) as { pid: number }[];
    expect(after.filter((e) => e.pid === proc.pid)).toEqual([]);
  }, T);

  test("20 concurrent runs of one tool all succeed", async () => {
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => runSilo(["run", "python", "-c", `print(${i} * 2)`], { home, cwd: project })),
    );
    expect(runs.map((r) => `${r.exitCode} ${r.stdout.trim()}${r.exitCode ? ` ${r.stderr}` : ""}`)).toEqual(
      Array.from({ length: 20 }, (_, i) => `0 ${i * 2}`),
    );
  }, 120_000);
});
