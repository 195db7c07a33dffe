// THREATS.md invariants 4 and 5: the sandbox cannot touch silo. It runs in a session and process group of
// its own, with or without a terminal (then on a pseudo-terminal of its own), so `kill(0, SIGKILL)` from
// inside kills only the sandbox: silo, its waiter and its reaper live on and move away what the sandbox
// planted. And if silo itself is killed, its reaper (a process the sandbox cannot signal) still does.
// The terminal tests drive silo as a shell's foreground job on a real pseudo-terminal (_pty-shell.py).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, siloBin, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome } from "../isolation/_helpers.ts";

const T = 60_000;
const PYTHON = "/usr/bin/python3";
const SHELL = join(import.meta.dir, "_pty-shell.py");

interface PtyResult {
  output: string;
  exit: number | null;
  stops: string[];
  pid: number;
  failure: string | null;
}

describe("security: the sandbox cannot signal or outlive silo (invariants 4, 5)", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
  }, 300_000);
  afterAll(cleanUp);

  const env = (extra: Record<string, string> = {}) => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home, TERM: "xterm", ...extra,
  });

  /** Run argv as the foreground job of a shell on a real pseudo-terminal; see _pty-shell.py for `steps`. */
  async function onTerminal(argv: string[], cwd: string, steps: unknown[] = [], extra: Record<string, string> = {}): Promise<PtyResult> {
    const proc = Bun.spawn([PYTHON, SHELL, JSON.stringify(steps), "--", ...argv], { cwd, env: env(extra), stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    if (!out.trim()) throw new Error(`_pty-shell.py failed: ${err}`);
    const r = JSON.parse(out) as PtyResult;
    expect(r.failure).toBeNull();
    return r;
  }

  /** Every file a quarantine record holds, relative to its files/ directory. */
  const quarantined = () => {
    const dir = join(home, "quarantine");
    if (!existsSync(dir)) return [];
    return readdirSync(dir).flatMap((id) => (existsSync(join(dir, id, "files")) ? readdirSync(join(dir, id, "files")) : []));
  };

  const plantAndKill = `import os, signal
open("/workspace/.envrc", "w").write("echo planted\\n")
print("tty", os.isatty(0), os.isatty(1), flush=True)
try:
    os.kill(-1, signal.SIGKILL)  # every process it can see: only its own pid namespace
except ProcessLookupError:
    pass
os.kill(0, signal.SIGKILL)  # its whole process group`;

  test("host control: a job's kill(0, SIGKILL) kills the processes of its group, the shell's job leader with it", async () => {
    const r = await onTerminal(["sh", "-c", `${PYTHON} -c 'import os, signal; os.kill(0, signal.SIGKILL)'; echo survived`], tmp());
    expect(r.exit).toBe(-9); // the job's leader (sh) died of it
    expect(r.output).not.toContain("survived");
  }, T);

  for (const stage of ["native", "sh"] as const)
    test(`with a terminal (${stage} stage), kill(0, SIGKILL) and kill(-1, SIGKILL) inside kill only the sandbox; silo quarantines what it planted`, async () => {
      const project = makeProject("");
      const before = quarantined().length;
      const r = await onTerminal([siloBin, "run", "python", "-c", plantAndKill], project, [], stage === "sh" ? { SILO_STAGE: "sh" } : {});
      expect(r.output).toContain("tty True True");
      expect(r.exit).toBe(128 + 9); // silo itself survived and reports the command's death by SIGKILL
      expect(existsSync(join(project, ".envrc"))).toBe(false);
      expect(quarantined().length).toBe(before + 1);
      expect(r.output).toContain("quarantine");
    }, T);

  test("without a terminal too: kill(0, SIGKILL) inside leaves silo alive", async () => {
    const project = makeProject("");
    const proc = Bun.spawn([siloBin, "run", "python", "-c", plantAndKill], { cwd: project, env: env(), stdout: "pipe", stderr: "pipe" });
    expect(await proc.exited).toBe(128 + 9);
    expect(proc.signalCode).toBeNull();
    expect(existsSync(join(project, ".envrc"))).toBe(false);
  }, T);

  test("silo SIGKILLed while the sandbox runs: its reaper still moves the planted .envrc to quarantine", async () => {
    const project = makeProject("");
    const before = quarantined().length;
    const proc = Bun.spawn(
      [siloBin, "run", "python", "-c", `import time\nopen("/workspace/.envrc", "w").write("echo planted\\n")\nprint("planted", flush=True)\ntime.sleep(60)`],
      { cwd: project, env: env(), stdout: "pipe", stderr: "pipe" },
    );
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("planted")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    // The attack got this far: the file is on the host, and silo is about to die before its exit-time check.
    expect(readFileSync(join(project, ".envrc"), "utf8")).toBe("echo planted\n");
    proc.kill("SIGKILL");
    await proc.exited;
    expect(proc.signalCode).toBe("SIGKILL");
    for (let i = 0; i < 200 && existsSync(join(project, ".envrc")); i++) await Bun.sleep(50);
    expect(existsSync(join(project, ".envrc"))).toBe(false);
    for (let i = 0; i < 200 && quarantined().length === before; i++) await Bun.sleep(50);
    expect(quarantined().length).toBe(before + 1);
  }, T);

  test("a terminal of its own: input and output pass, isatty is true for exactly the descriptors that were terminals", async () => {
    const project = makeProject("");
    const r = await onTerminal(
      [siloBin, "run", "python", "-c", `import os, sys
name = input("name? ")
print("hello", name, [os.isatty(f) for f in (0, 1, 2)], os.getsid(0) == os.getpid())`],
      project,
      [["until", "name? ", 20], ["send", "bob\r"]],
    );
    expect(r.output).toContain("hello bob [True, True, True] True");
    expect(r.exit).toBe(0);
  }, T);

  test("with a terminal on stdout, `2>file` sends stderr to the file, not to the terminal", async () => {
    const project = makeProject("");
    const file = join(tmp(), "err.txt");
    const r = await onTerminal(
      [siloBin, "run", "python", "-c", `import os, sys
print("out", os.isatty(1), os.isatty(2), flush=True)
print("err-line", file=sys.stderr)`],
      project,
      [],
      { STDERR_FILE: file },
    );
    expect(r.output).toContain("out True False");
    expect(r.output).not.toContain("err-line");
    expect(readFileSync(file, "utf8")).toBe("err-line\n");
  }, T);

  test("stdout piped (stdin a terminal, --tty): the output's bytes arrive unchanged", async () => {
    const project = makeProject("");
    const file = join(tmp(), "out.bin");
    const r = await onTerminal(
      [siloBin, "run", "--tty", "python", "-c", "import os, sys; sys.stdout.buffer.write(bytes(range(256)) * 64 + b'\\n\\r\\n' + str(os.isatty(0)).encode())"],
      project,
      [],
      { STDOUT_FILE: file },
    );
    expect(r.exit).toBe(0);
    const want = Buffer.concat([Buffer.from(Array.from({ length: 256 * 64 }, (_, i) => i % 256)), Buffer.from("\n\r\nTrue")]);
    expect(Buffer.from(readFileSync(file)).equals(want)).toBe(true);
  }, T);

  test("the window size inside is the terminal's, and follows a resize", async () => {
    const project = makeProject("");
    const r = await onTerminal(
      [siloBin, "run", "python", "-c", `import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGWINCH])
print("size", os.get_terminal_size(), flush=True)
signal.sigwait([signal.SIGWINCH])
print("winch", os.get_terminal_size(), flush=True)`],
      project,
      [["until", "size", 20], ["resize", 40, 120]],
      { PTY_SIZE: "33x101" },
    );
    expect(r.output).toContain("size os.terminal_size(columns=101, lines=33)");
    expect(r.output).toContain("winch os.terminal_size(columns=120, lines=40)");
    expect(r.exit).toBe(0);
  }, T);

  test("Ctrl-Z stops silo with its job, as the shell sees it; continued, the command finishes", async () => {
    const project = makeProject("");
    const r = await onTerminal(
      [siloBin, "run", "python", "-c", `import sys
print("ready", flush=True)
line = sys.stdin.readline()
print("got", line.strip(), flush=True)`],
      project,
      [["until", "ready", 20], ["send", "\u001a"], ["stopped", 20], ["fg"], ["send", "more\r"], ["until", "got more", 20]],
    );
    expect(r.stops).toEqual(["T"]); // silo's process, stopped (as /proc/<pid>/stat says)
    expect(r.exit).toBe(0);
  }, T);

  test("Ctrl-C reaches the command through its terminal; silo lives on and passes its exit code", async () => {
    const project = makeProject("");
    const r = await onTerminal(
      [siloBin, "run", "python", "-c", `import sys, time
try:
    print("ready", flush=True); time.sleep(30)
except KeyboardInterrupt:
    print("interrupted", flush=True); sys.exit(7)`],
      project,
      [["until", "ready", 20], ["send", "\u0003"], ["until", "interrupted", 20]],
    );
    expect(r.exit).toBe(7);
  }, T);
});
