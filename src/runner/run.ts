/**
 * Signals between silo and a sandboxed command. bwrap does not forward signals (its monitor dies of them,
 * and with --die-with-parent the sandbox then dies of SIGKILL), and the sandbox's pid 1 ignores what it has
 * no handler for, so silo delivers a signal straight to the command: the children of bwrap's pid 1 (a
 * Ctrl-C or Ctrl-\ to their foreground job, as a terminal would: deliveryTarget).
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
  // Each group once: a process in the command's foreground job gets one Ctrl-C, not one per sibling.
  const targets = new Set(bwrap ? childPids(bwrap).flatMap(childPids).map((pid) => deliveryTarget(pid, sig)) : []);
  if (targets.size === 0) targets.add(monitorPid);
  for (const pid of targets) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

/**
 * Where `sig` for the command `pid` goes (native/silo-stage.c delivery_target does the same for the
 * waiter). SIGINT and SIGQUIT are what a terminal sends, to its whole foreground job: the foreground group
 * of the command's terminal (its pseudo-terminal) or, with none, the command's process group, a shell's
 * foreground child among them (a shell that traps SIGINT waits for that child, and goes on when the child
 * did not die of it). A negative pid: that group. SIGTERM and SIGHUP are what `kill` sends to one process:
 * the command alone. Without a terminal the sandbox's pid 1 is in that group, and ignores them (no handler).
 */
export function deliveryTarget(pid: number, sig: NodeJS.Signals): number {
  if (sig !== "SIGINT" && sig !== "SIGQUIT") return pid;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid pgrp session tty_nr tpgid: comm may hold anything, so after the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pgrp = Number(f[2]), tpgid = Number(f[5]);
    return tpgid > 0 ? -tpgid : pgrp > 0 ? -pgrp : pid;
  } catch {
    return pid; // gone: the kill says so
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
