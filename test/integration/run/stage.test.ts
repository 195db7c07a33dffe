// The bwrap driver's two set-up stages through dist/silo: the native one (embedded, written once to
// SILO_HOME/libexec) by default, the /bin/sh one with SILO_STAGE=sh or when the native one cannot be
// written; with network relays the native stage is their process, and it ends with the sandbox, passing
// the command's exit code or signal on.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { liveProcessesWith } from "../../helpers/procs.ts";
import { makeHome, makeProject, runSilo, siloBin, type SiloResult } from "../../helpers/silo.ts";

function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
  return r;
}

describe("the bwrap driver's set-up stage", () => {
  let home: string;
  let project: string;
  beforeAll(async () => {
    home = makeHome();
    project = makeProject("");
    ok(await runSilo(["install", "python"], { home }));
  });
  // python's registry entry allows pypi.org: every run here has the proxy relay.
  const run = (code: string, env: Record<string, string> = {}, h = home) => runSilo(["--debug", "run", "python", "-c", code], { home: h, cwd: project, env });

  test("by default the native stage runs the sandbox, from SILO_HOME/libexec, and no second silo process starts", async () => {
    const r = ok(await run("import os; print(os.environ['HTTP_PROXY'])"));
    expect(r.stdout.trim()).toBe("http://127.0.0.1:3128");
    expect(r.stderr).toContain("native stage spawned");
    expect(r.stderr).not.toContain("relay: listening"); // what the relay process (silo __stage) logs
    expect(readdirSync(join(home, "libexec")).filter((n) => n.startsWith("silo-stage-"))).toHaveLength(1);
  });

  test("silo doctor names the stage in use", async () => {
    expect((await runSilo(["doctor"], { home })).stdout).toMatch(/driver bwrap .*set-up stage: native \(.*libexec\/silo-stage-/);
    expect((await runSilo(["doctor"], { home, env: { SILO_STAGE: "sh" } })).stdout).toContain("set-up stage: /bin/sh + unshare (SILO_STAGE=sh)");
  });

  test("the relays' process ends with the sandbox", async () => {
    const r = ok(await run("print('hi')"));
    const id = /sandbox (\d+-[a-z0-9]+) prepared/.exec(r.stderr)?.[1];
    expect(id).toBeDefined();
    // (The run dir's reaper, or the `rm -rf` it became, may still be at work: silo's cleanup, not the sandbox.)
    expect(liveProcessesWith(`run/${id}`).filter((p) => !/^\d+ (rm -rf|\/bin\/sh -c read -r _)/.test(p))).toEqual([]);
  });

  test("with relays the command's exit code and signal pass through the native stage", async () => {
    expect((await run("import sys; sys.exit(42)")).exitCode).toBe(42);
    expect((await run("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")).exitCode).toBe(143);
  });

  test("the egress proxy starts on the sandbox's first connection out, not before", async () => {
    // While a command runs, is there a proxy socket under SILO_HOME/run?
    const proxySocketDuring = async (code: string) => {
      const proc = Bun.spawn([siloBin, "run", "python", "-c", code], {
        cwd: project,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home },
        stdout: "pipe",
        stderr: "pipe",
      });
      try {
        const first = new TextDecoder().decode((await proc.stdout.getReader().read()).value);
        const found = readdirSync(join(home, "run")).some((d) => existsSync(join(home, "run", d, "proxy.sock")));
        return { first: first.trim(), found };
      } finally {
        proc.kill("SIGTERM");
        await proc.exited;
      }
    };
    expect(await proxySocketDuring("import time; print('up', flush=True); time.sleep(20)")).toEqual({ first: "up", found: false });
    // A client that asks the proxy for a host it does not allow gets the proxy's own refusal: it started.
    const ask = [
      "import socket, time",
      "s = socket.create_connection(('127.0.0.1', 3128))",
      "s.sendall(b'CONNECT not-allowed.example:443 HTTP/1.1\\r\\nHost: not-allowed.example:443\\r\\n\\r\\n')",
      "print(s.recv(100).split(b'\\r\\n')[0].decode(), flush=True)",
      "time.sleep(20)",
    ].join("\n");
    expect(await proxySocketDuring(ask)).toEqual({ first: "HTTP/1.1 403 Forbidden", found: true });
  });

  test("once its sandbox runs, `silo run` hands over to the stage's waiter (same pid, a few hundred KiB); with --timing it stays", async () => {
    const during = async (flags: string[]) => {
      const proc = Bun.spawn([siloBin, "run", ...flags, "python", "-c", "import time; print('up', flush=True); time.sleep(20)"], {
        cwd: project,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home },
        stdout: "pipe",
        stderr: "pipe",
      });
      try {
        const got = await proc.stdout.getReader().read();
        if (got.done) throw new Error(`silo ended early: ${await new Response(proc.stderr).text()}`);
        const exe = readlinkSync(`/proc/${proc.pid}/exe`);
        const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))?.[1]);
        proc.kill("SIGTERM");
        return { exe, rssKiB, code: await proc.exited };
      } finally {
        proc.kill("SIGKILL"); // a failed expectation above leaves nothing running
      }
    };
    const handed = await during([]);
    expect(handed.exe).toStartWith(join(home, "libexec", "silo-stage-"));
    expect(handed.rssKiB).toBeLessThan(4096);
    expect(handed.code).toBe(143); // the waiter passed SIGTERM on, and the command's death became its exit code
    const kept = await during(["--timing"]);
    expect(kept.exe).toBe(realpathSync(siloBin));
    expect(kept.code).toBe(143);
  });

  test("a handed-over run keeps its run directory while it runs (past the exec), and it goes once the run ends", async () => {
    // Earlier tests' runs may still be being reaped: only this run's directory counts.
    const before = new Set(readdirSync(join(home, "run")));
    const ours = () => readdirSync(join(home, "run")).filter((d) => !before.has(d));
    const proc = Bun.spawn([siloBin, "run", "python", "-c", "import time; print('up', flush=True); time.sleep(1); print('done')"], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home },
      stdout: "pipe",
      stderr: "pipe",
    });
    await proc.stdout.getReader().read();
    await Bun.sleep(300); // well after the handover: the exec has closed silo's end of the reaper's socket
    expect(ours().filter((d) => existsSync(join(home, "run", d, "handoff.json")))).toHaveLength(1);
    expect(await proc.exited).toBe(0);
    const deadline = Date.now() + 3000;
    while (ours().length > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(ours()).toEqual([]);
  });

  test("the sandbox's writable layer is volatile (its end syncs no filesystem)", async () => {
    const r = ok(await run("print([l for l in open('/proc/self/mountinfo') if l.split()[4] == '/'][0])"));
    expect(r.stdout).toContain(" - overlay ");
    expect(r.stdout).toMatch(/[,\s]volatile|fsync=volatile/);
  });

  test("a run that fails after its stage started leaves no stage behind", async () => {
    ok(await run("pass")); // the stage is written out: the next run starts it ahead
    const proj = makeProject(`passFiles = ["../outside.txt"]\n`);
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const r = await runSilo(["--debug", "run", "python", "-c", "pass"], { home, cwd: proj });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("native stage started ahead of its sandbox");
    expect(r.stderr).toContain("passFiles: refusing");
    const deadline = Date.now() + 3000;
    while (liveProcessesWith(join(home, "libexec")).length > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(liveProcessesWith(join(home, "libexec"))).toEqual([]);
  });

  test("SILO_STAGE=sh: the /bin/sh stage and the relay process give the same sandbox", async () => {
    const r = ok(await run("import os; print(os.environ['HTTP_PROXY'], os.getuid())", { SILO_STAGE: "sh" }));
    expect(r.stdout.trim()).toBe("http://127.0.0.1:3128 0");
    expect(r.stderr).toContain("sh stage spawned");
    expect(r.stderr).toContain("relay: listening");
  });

  test("a native stage that cannot be written out falls back to the /bin/sh stage", async () => {
    const h = makeHome();
    ok(await runSilo(["install", "python"], { home: h }));
    rmSync(join(h, "libexec"), { recursive: true, force: true }); // install's driver check wrote the stage out
    writeFileSync(join(h, "libexec"), "not a directory");
    const r = ok(await run("print('still runs')", {}, h));
    expect(r.stdout.trim()).toBe("still runs");
    expect(r.stderr).toContain("using the /bin/sh stage");
    expect(r.stderr).toContain("sh stage spawned");
  });
});
