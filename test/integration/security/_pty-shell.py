# A terminal and a minimal job-control shell around one command, for the TTY tests (process.test.ts).
#
#   python3 _pty-shell.py STEPS_JSON -- COMMAND...
#
# The command runs as a shell's foreground job would: in a process group of its own, on a pseudo-terminal
# that is the controlling terminal of the "shell" (its parent, a session leader). STEPS is a list of
#   ["until", TEXT, SECONDS]   read the terminal until TEXT has appeared (fails after SECONDS)
#   ["send", TEXT]             type TEXT (\u001a is Ctrl-Z, \u0003 Ctrl-C)
#   ["resize", ROWS, COLS]     resize the terminal (its foreground group gets SIGWINCH)
#   ["stopped", SECONDS]       wait until the job stops, as a shell sees it (waitpid WUNTRACED); record its
#                              /proc state; the shell takes the terminal back
#   ["fg"]                     give the job the terminal again and continue it (SIGCONT), as `fg` does
#   ["kill", SIGNAL]           send SIGNAL to the job's process (not its group)
#   ["comm", TEXT, SECONDS]    wait until the job's process runs a program whose name starts with TEXT
#                              (/proc/PID/comm) and catches SIGINT (its handlers are set): silo handing
#                              its run over to its waiter (an execve), the waiter ready for signals
# then the job's end is awaited. Prints one JSON object: output, exit code, stop states, job pid, failure.
# The command's stdout and stderr go to the terminal, unless STDOUT_FILE / STDERR_FILE name a file for one;
# PTY_SIZE="ROWSxCOLS" sets the terminal's size before the command starts.
import fcntl, json, os, pty, select, signal, struct, sys, termios, time

steps = json.loads(sys.argv[1])
cmd = sys.argv[sys.argv.index("--") + 1:]
master, slave = pty.openpty()
if os.environ.get("PTY_SIZE"):
    rows, cols = (int(x) for x in os.environ["PTY_SIZE"].split("x"))
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
report_r, report_w = os.pipe()
order_r, order_w = os.pipe()

shell = os.fork()
if shell == 0:
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        for fd, name in ((1, "STDOUT_FILE"), (2, "STDERR_FILE")):
            if os.environ.get(name):
                os.dup2(os.open(os.environ[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        for fd in (report_r, report_w, order_r, order_w, slave):
            os.close(fd)
        os.execvp(cmd[0], cmd)
    try:
        os.setpgid(job, job)  # as shells do, in both processes: whichever comes first
    except PermissionError:
        pass  # the job has exec'd already (after its own setpgid)
    os.write(report_w, f"P{job}\n".encode())
    while True:
        _, status = os.waitpid(job, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            with open(f"/proc/{job}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            os.tcsetpgrp(0, os.getpgrp())
            os.write(report_w, f"S{state}\n".encode())
            os.read(order_r, 1)  # "fg"
            os.tcsetpgrp(0, job)
            os.killpg(job, signal.SIGCONT)
            continue
        os.write(report_w, f"E{os.waitstatus_to_exitcode(status)}\n".encode())
        os._exit(0)

# The slave stays open here too: the master then never reads EIO, which can come before the last bytes
# a finished job wrote are read.
out = b""
reports = b""
result = {"stops": [], "failure": None}


def pump(until=lambda: False, seconds=0.0):
    """Read the terminal and the shell's reports until `until()` or `seconds` pass; True if until() held."""
    global out, reports
    end = time.monotonic() + seconds
    while True:
        if until():
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([master, report_r], [], [], min(left, 0.05))
        if master in r:
            try:
                out += os.read(master, 65536)
            except OSError:
                pass
        if report_r in r:
            reports += os.read(report_r, 4096)


def lines():
    return reports.decode().split("\n")


pump(lambda: lines()[0].startswith("P"), 10)
result["pid"] = int(lines()[0][1:])
for step in steps:
    kind = step[0]
    if kind == "until":
        if not pump(lambda: step[1].encode() in out, step[2]):
            result["failure"] = f"no {step[1]!r} within {step[2]} s"
            break
    elif kind == "send":
        os.write(master, step[1].encode())
    elif kind == "resize":
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", step[1], step[2], 0, 0))
    elif kind == "stopped":
        n = len(result["stops"])
        if not pump(lambda: sum(1 for l in lines() if l.startswith("S")) > n, step[1]):
            result["failure"] = f"the job did not stop within {step[1]} s"
            break
        result["stops"] = [l[1:] for l in lines() if l.startswith("S")]
    elif kind == "fg":
        os.write(order_w, b"c")
    elif kind == "kill":
        os.kill(result["pid"], getattr(signal, step[1]))
    elif kind == "comm":
        def runs(prefix=step[1]):
            try:
                with open(f"/proc/{result['pid']}/comm") as f:
                    if not f.read().startswith(prefix):
                        return False
                with open(f"/proc/{result['pid']}/status") as f:
                    caught = next(l for l in f if l.startswith("SigCgt:")).split()[1]
                return int(caught, 16) & (1 << (signal.SIGINT - 1)) != 0
            except (OSError, StopIteration):
                return False
        if not pump(runs, step[2]):
            result["failure"] = f"the job did not become {step[1]!r} within {step[2]} s"
            break
pump(lambda: any(l.startswith("E") for l in lines()), 30)
ends = [l for l in lines() if l.startswith("E")]
result["exit"] = int(ends[0][1:]) if ends else None
pump(seconds=0.2)
if not ends:
    os.kill(shell, signal.SIGKILL)
    os.killpg(result["pid"], signal.SIGKILL)
result["output"] = out.decode(errors="replace").replace("\r\n", "\n")
print(json.dumps(result))
