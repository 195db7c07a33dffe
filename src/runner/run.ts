/**
 * Signals between silo and a sandboxed command. bwrap does not forward signals (its monitor dies of them,
 * and with --die-with-parent the sandbox then dies of SIGKILL), and the sandbox's pid 1 ignores what it has
 * no handler for, so silo delivers a signal straight to the command: the children of bwrap's pid 1.
 */
import { readdirSync, readFileSync } from "node:fs";

export type ForwardedSignal = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGQUIT";

const ALL: ForwardedSignal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/**
 * Catch SIGINT/SIGTERM/SIGHUP/SIGQUIT while a sandbox runs and hand each to `deliver`. The command runs in
 * a session of its own, with or without a TTY, so nothing sent to silo's process group (Ctrl-C from
 * silo's terminal among them) reaches it but through here. (With a TTY and the native stage the terminal
 * is raw and Ctrl-C travels through the sandbox's own pseudo-terminal instead.) Returns the function that
 * removes the handlers.
 */
export function forwardSignals(deliver: (sig: ForwardedSignal) => void): () => void {
  const handlers = ALL.map((sig) => {
    const h = () => deliver(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

/**
 * Send `sig` to the command running under bwrap. `monitorPid` is the process silo started: bwrap itself
 * once the stage has exec'd into it, or the native stage that stays as the relays and bwrap's parent.
 * Before bwrap has started its sandbox (still in the stage), the stage process itself gets the signal.
 */
export function signalSandbox(monitorPid: number, sig: NodeJS.Signals): void {
  const bwrap = commName(monitorPid) === "bwrap" ? monitorPid : childPids(monitorPid).find((c) => commName(c) === "bwrap");
  const targets = bwrap ? childPids(bwrap).flatMap(childPids) : [];
  if (targets.length === 0) targets.push(monitorPid);
  for (const pid of targets) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

/** Direct children of a process (CONFIG_PROC_CHILDREN, else a scan of /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return scanChildren(pid);
  }
}

function scanChildren(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may contain spaces and parentheses, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

function commName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** The start time of a process (clock ticks since boot), to tell a live pid from a reused one. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return null;
  }
}
