/**
 * What the native stage's waiter (silo-stage --wait; runner/drivers/bwrap/handoff.ts) runs of silo after
 * a run was handed over to it, each with RUNDIR/handoff.json:
 *
 *   silo __register FILE           record the sandbox for `silo status` (once it has run 100 ms)
 *   silo __proxy FILE              the egress proxy, on the sandbox's first connection out, until SIGTERM
 *   silo __quarantine FILE         (run by the stage's reaper) silo's process ended, killed, before `__after`
 *                                  had settled the protected names and .git: settle them now
 *   silo __after FILE CODE SIGNAL  the sandbox ended without an exit code from bwrap, or a protected name
 *                                  may have changed (RUNDIR/watch), or the sandbox wrote to .git: report as
 *                                  `silo run` does, quarantine what the sandbox planted, apply its git
 *                                  writes (git-apply.ts), and exit with the code `silo run` would have
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { homePaths } from "../core/paths.ts";
import { mark } from "../core/trace.ts";
import type { HandoffFile } from "../runner/drivers/bwrap/handoff.ts";
import { signalNameOf } from "../runner/spec.ts";
import type { GitGuard } from "./git-guard.ts";

export async function main(verb: string, args: string[]): Promise<number> {
  let text: string;
  try {
    text = readFileSync(args[0] ?? "", "utf8");
  } catch (e) {
    // `__register` starts once the sandbox has run 100 ms; a command that ends meanwhile takes its run dir
    // (and this file) with it. Nothing is left to register: not an error for the user to see.
    if (verb === "__register" && (e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
  const file = JSON.parse(text) as HandoffFile;
  if (verb === "__register") {
    const { registerSandbox } = await import("../runner/state.ts");
    await registerSandbox(file.home, file.register); // its row goes when `silo status` finds the pid gone
    return 0;
  }
  if (verb === "__proxy") return proxy(file);
  if (verb === "__quarantine") {
    await settle(file, file.home, args[0]!);
    return 0;
  }
  // SILO_TRACE=1 shows that the waiter handed over (tests tell a quiet exit from a checked one by it).
  mark("__after");
  const code = Number(args[1]);
  const { interpret } = await import("../runner/drivers/bwrap/index.ts");
  const result = await interpret(file.interpret.spec, file.interpret, code >= 0 ? code : null, signalNameOf(Number(args[2])));
  await settle(file, undefined, args[0]!);
  return result.code;
}

/** Settle the protected names and .git, then say so (RUNDIR/settled): the stage's reaper runs `__quarantine` only without it. */
async function settle(file: HandoffFile, home: string | undefined, path: string) {
  if (file.protect) {
    const { settleProtected } = await import("./protect.ts");
    await settleProtected(homePaths(home), file.protect.snapshot as import("./protect.ts").ProtectSnapshot);
  }
  if (file.git) (await import("./git-apply.ts")).finishGit(file.git as GitGuard, homePaths(home));
  if (file.protect || file.git) writeFileSync(join(dirname(path), "settled"), "");
}

async function proxy(file: HandoffFile): Promise<number> {
  const p = file.proxy;
  if (!p) return 0;
  const { startHostSide } = await import("../net/host.ts");
  const { denyWarning } = await import("../net/plan.ts");
  const started = await startHostSide({ ...p.input, onDeny: denyWarning(p.input.tool) }, p.spec, p.runDir, { ports: false, proxy: true, bridge: false });
  // Until the waiter ends it (SIGTERM, or its parent-death signal). A Ctrl-C is the command's business.
  process.on("SIGINT", () => {});
  process.on("SIGQUIT", () => {});
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGHUP"] as const) process.on(sig, () => resolve());
  });
  await started.close();
  return 0;
}
