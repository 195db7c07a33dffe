// The command's own exit code passes through whatever signal reached silo (issue 13 item 8): under a
// terminal, a command that traps Ctrl-C and exits 42 makes silo exit 42, not 130; only a command killed by
// the signal gives 128+N. Every path: the native stage with its pseudo-terminal, the waiter silo hands the
// run over to, silo staying (--timing), the /bin/sh stage, and without a pseudo-terminal (output piped, the
// terminal still there). silo runs as a shell's foreground job on a real pseudo-terminal
// (security/_pty-shell.py); Ctrl-C is the byte \x03 typed there, SIGTERM/SIGHUP go to silo's process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeProject, siloBin, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome } from "../isolation/_helpers.ts";

const T = 120_000;
const PYTHON = "/usr/bin/python3";
const SHELL = join(import.meta.dir, "../security/_pty-shell.py");
const CTRL_C = ["send", "\u0003"];

interface PtyResult {
  output: string;
  exit: number | null;
  failure: string | null;
}

// A command that dies of SIGINT, SIGTERM and SIGHUP (their default action), once it has said "ready".
const DIES = `import signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_DFL)
print("ready", file=sys.stderr, flush=True)
time.sleep(30)`;
// A shell that traps SIGINT while its foreground child runs, as `bash -c 'trap "exit 42" INT; ...; sleep 30'`
// does (pytest's summary after Ctrl-C works the same way). The child says "ready" itself, so the Ctrl-C
// cannot come before it exists (nor while the shell forks: a shell defers a signal that comes then until
// its child ends, on a terminal too). A shell waits for its foreground child: only a Ctrl-C that reaches
// the child as well (the terminal's whole foreground job) ends it now.
const trapWithChild = (sig: string) => ["--shim=bash", "python", "-c", `trap 'echo trapped >&2; exit 42' ${sig}; python3 -c '${DIES}'`];
// Without a handler: killed by the signal.
const noHandler = ["python", "-c", DIES];
// A handler that counts what arrives, then exits 40 + the count: 41 when the signal came once.
const counting = (sig: string) => [
  "python", "-c", `import signal, sys, time
n = 0
def count(*_):
    global n
    n += 1
signal.signal(signal.${sig}, count)
print("ready", file=sys.stderr, flush=True)
while n == 0:
    time.sleep(0.01)
time.sleep(1)  # a second delivery, if any, comes meanwhile
print("count", n, file=sys.stderr, flush=True)
sys.exit(40 + n)`,
];

describe("the command's exit code after a signal (issue 13 item 8)", () => {
  let home: string;
  let project: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    project = makeProject("");
  }, 300_000);
  afterAll(cleanUp);

  async function onTerminal(args: string[], steps: unknown[], extra: Record<string, string>): Promise<PtyResult> {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", SILO_HOME: home, TERM: "xterm", ...extra };
    const proc = Bun.spawn([PYTHON, SHELL, JSON.stringify([["until", "ready", 30], ...steps]), "--", siloBin, "run", ...args], { cwd: project, env, stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    if (!out.trim()) throw new Error(`_pty-shell.py failed: ${err}`);
    const r = JSON.parse(out) as PtyResult;
    expect(r.failure).toBeNull();
    return r;
  }

  test("host control: on a terminal, a shell that traps Ctrl-C while its child runs exits with its own code", async () => {
    const r = JSON.parse(
      Bun.spawnSync([PYTHON, SHELL, JSON.stringify([["until", "ready", 30], CTRL_C]), "--", "bash", "-c", `trap 'exit 42' INT; ${PYTHON} -c '${DIES}'`], {
        cwd: tmp(),
      }).stdout.toString(),
    ) as PtyResult;
    expect(r.exit).toBe(42);
  }, T);

  // The native stage: handed over to its waiter (plain), or silo staying (--timing); the /bin/sh stage.
  // Signals are sent once the waiter runs (its process's name: silo-stage-*): one that comes during the
  // handover's execve ends the waiter and the sandbox with it (src/runner/drivers/bwrap/handoff.ts).
  const paths: [string, string[], Record<string, string>, unknown[]][] = [
    ["native stage, waiter", [], {}, [["comm", "silo-stage", 30]]],
    ["native stage, silo staying (--timing)", ["--timing"], {}, []],
    ["sh stage", [], { SILO_STAGE: "sh" }, []],
  ];
  // On the terminal (a pseudo-terminal of the sandbox's own, for the native stage), or with output piped
  // (no pseudo-terminal: the terminal's Ctrl-C reaches silo, which passes it on).
  const ttys: [string, (dir: string) => Record<string, string>][] = [
    ["terminal", () => ({})],
    ["stdout to a file", (dir) => ({ STDOUT_FILE: join(dir, "out") })],
  ];

  for (const [path, flags, stageEnv, settle] of paths)
    for (const [tty, ttyEnv] of ttys) {
      const env = () => ({ ...stageEnv, ...ttyEnv(tmp()) });

      test(`${path}, ${tty}: Ctrl-C trapped by a shell with a child running → the shell's 42; not trapped → 130`, async () => {
        const trapped = await onTerminal([...flags, ...trapWithChild("INT")], [...settle, CTRL_C], env());
        expect(trapped.output).toContain("trapped");
        expect(trapped.exit).toBe(42);
        expect((await onTerminal([...flags, ...noHandler], [...settle, CTRL_C], env())).exit).toBe(130);
      }, T);

      test(`${path}, ${tty}: Ctrl-C reaches the command once`, async () => {
        const r = await onTerminal([...flags, ...counting("SIGINT")], [...settle, CTRL_C], env());
        expect(r.output).toContain("count 1");
        expect(r.exit).toBe(41);
      }, T);

      test(`${path}, ${tty}: SIGTERM and SIGHUP to silo: handled → the command's code; not handled → 128+N`, async () => {
        for (const [sig, n] of [["SIGTERM", 15], ["SIGHUP", 1]] as const) {
          const handled = await onTerminal([...flags, ...counting(sig)], [...settle, ["kill", sig]], env());
          expect(`${sig} ${handled.exit}`).toBe(`${sig} 41`);
          const killed = await onTerminal([...flags, ...noHandler], [...settle, ["kill", sig]], env());
          expect(`${sig} ${killed.exit}`).toBe(`${sig} ${128 + n}`);
        }
      }, T);
    }
});
