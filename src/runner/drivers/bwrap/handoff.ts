/**
 * Handing a run over. Once its sandbox is under way, `silo run` replaces itself (execve: same pid, same
 * stdio) with the native stage's waiter (`silo-stage --wait`, native/silo-stage.c), so neither the rest
 * of silo's JavaScript nor the kernel's teardown of a ~40 MiB Bun process is on the path of the command's
 * exit code: that teardown now happens while the command runs. Measured in one interleaved run: 3 to 6 ms
 * off every `silo run python -c pass`.
 *
 * The waiter keeps what silo did after the sandbox: it passes signals on to the command, takes the exit
 * code from bwrap's status, registers the sandbox for `silo status` once it has run 100 ms
 * (`silo __register`), starts the egress proxy on the sandbox's first connection out (`silo __proxy`), and
 * when the sandbox failed, or it may have planted a protected path, hands over to `silo __after`, which
 * reports and cleans up as silo would have. All three read RUNDIR/handoff.json (written here, in the run
 * directory, mode 0700; it holds no environment: only what they need). The run directory goes when the
 * process ends, whatever it runs by then: the native stage's reaper follows silo's pid (a pidfd), not
 * just its socket, which the exec closes (core/fs.ts adoptReaper).
 *
 * A signal is silo's until the exec and the waiter's once it has set its handlers. One that comes in the
 * few microseconds between silo's last turn of its event loop and the execve is caught by silo and not
 * passed on; one that comes during the exec itself (the kernel tears silo down: ~2 ms) ends the waiter
 * with the default action, and with it the sandbox (the command is killed, not signalled).
 *
 * Only `silo run`-like runs with stdio inherited, no build capture, no --timing, and no host-side servers
 * other than the proxy are handed over (RunHooks.handoff says so); the rest wait in silo as before.
 */
import { writeFileSync } from "node:fs";
import { flushTrace, mark } from "../../../core/trace.ts";
import { join } from "node:path";
import type { NetworkPolicyInput } from "../../../net/plan.ts";
import type { NetworkSpec, RunSpec } from "../../spec.ts";
import type { SandboxEntry } from "../../state.ts";
import type { SandboxPlan } from "./plan.ts";

/** What the caller adds for the helpers (RunHooks.handoff). */
export interface HandoffHooks {
  /** The egress proxy `silo __proxy` starts (net/host.ts startHostSide, the proxy part; no callbacks). */
  proxy?: { input: Omit<NetworkPolicyInput, "onDeny" | "lookup">; spec: NetworkSpec; runDir: string };
  /**
   * The protected names (app/protect.ts): RUNDIR/watch gets `watch` (silo-stage.c `changed` reads it); when
   * a line says one may have changed, `silo __after` checks `snapshot` and quarantines what was planted.
   */
  protect?: { watch: string[]; snapshot: unknown };
  /**
   * The project's git guard (src/app/git-guard.ts; `silo __after` reads the rest): more RUNDIR/watch lines
   * (silo-stage.c `changed`): the .git overlay's upper has an entry, a .git below the project changed.
   */
  git?: { watch: string[] };
}

/** The part of a RunSpec that telling a failed command from a failed sandbox needs (lookup.ts). */
export type ExecSpec = Pick<RunSpec, "argv" | "cwd" | "env" | "layers" | "mounts" | "workspace">;

export interface HandoffFile extends HandoffHooks {
  home: string;
  interpret: { spec: ExecSpec; statusFile: string; errFile: string };
  register: SandboxEntry;
}

export interface HandOff {
  stagePath: string;
  stagePid: number;
  spec: RunSpec;
  plan: SandboxPlan;
  home: string;
  started: number;
  hooks: HandoffHooks;
}

/** Write RUNDIR/handoff.json and RUNDIR/watch, then exec the waiter. Returns only if that failed. */
export async function handOff(h: HandOff): Promise<Error> {
  const { spec, plan } = h;
  const file: HandoffFile = {
    home: h.home,
    interpret: {
      // The command's PATH only: the environment stays off the disk.
      spec: { argv: spec.argv.slice(0, 1), cwd: spec.cwd, env: { PATH: spec.env.PATH ?? "" }, layers: spec.layers, mounts: spec.mounts, workspace: spec.workspace },
      statusFile: plan.statusFile,
      errFile: plan.errFile,
    },
    register: { id: plan.id, tool: spec.tool, project: spec.workspace, pid: process.pid, driver: "bwrap", started: h.started },
    ...h.hooks,
  };
  try {
    writeFileSync(join(plan.runDir, "handoff.json"), JSON.stringify(file), { mode: 0o600 });
    const watch = [...(h.hooks.protect?.watch ?? []), ...(h.hooks.git?.watch ?? [])];
    writeFileSync(join(plan.runDir, "watch"), watch.map((l) => `${l}\n`).join(""), { mode: 0o600 });
    // For the stage's reaper: if silo's process ends, killed, before `silo __after` settled what the sandbox
    // may have planted, the reaper runs this (native/silo-stage.c reap_quarantine).
    if (watch.length)
      writeFileSync(join(plan.runDir, "after"), [...spec.self, "__quarantine", join(plan.runDir, "handoff.json")].map((a) => `${a}\0`).join(""), { mode: 0o600 });
  } catch (e) {
    return e as Error;
  }
  const argv = [
    "silo-stage", "--wait", String(h.stagePid), plan.runDir, spec.tty ? "1" : "0", h.hooks.proxy ? "1" : "0", "--", ...spec.self,
  ];
  // One turn of the event loop: a signal that came while the files were written reaches silo's handler,
  // which passes it to the command, before the exec leaves no handler to run.
  await new Promise((resolve) => setImmediate(resolve));
  mark("handoff");
  flushTrace();
  try {
    process.execve!(h.stagePath, argv, process.env as Record<string, string>);
  } catch (e) {
    return e as Error;
  }
  return new Error("process.execve returned");
}
