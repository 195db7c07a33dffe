/**
 * `silo __stage <owner-pid>`: the set-up stage when the sandbox needs network relays. The driver starts it
 * under `unshare --user --map-root-user --mount --net` with its plan on fd 3. Here, inside those namespaces
 * but outside the sandbox's filesystem view and pid namespace, it mounts the overlay, brings up loopback,
 * starts the relays (src/net/relay.ts), then runs bwrap (which shares this network namespace) and stays
 * to forward signals and to keep the relays alive. It fails closed: no relays, no sandbox.
 */
import { openSync, readFileSync, writeFileSync, closeSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { EXIT } from "../../../core/errors.ts";
import { log, setDebug } from "../../../core/log.ts";
import { forwardSignals, signalSandbox } from "../../run.ts";
import { exitCodeFor } from "../../spec.ts";
import { encodeArgs, FD, overlayOptions } from "./argv.ts";
import { launch, type StagePayload } from "./launch.ts";

const SIGKILL = 9;

export async function main(argv: string[]): Promise<number> {
  const owner = Number(argv[0]);
  const p = JSON.parse(readFileSync(FD.ARGS, "utf8")) as StagePayload;
  const fail = (msg: string) => {
    // The driver reports this (no bwrap status file means the stage failed).
    writeFileSync(p.plan.errFile, msg);
    return EXIT.FAILURE;
  };
  if (p.debug) setDebug(true);
  let libc: typeof import("./libc.ts");
  try {
    libc = await import("./libc.ts");
    // Die with silo; if it is already gone (the pid we were given is no longer our parent), stop here.
    libc.setParentDeathSignal(SIGKILL);
  } catch (e) {
    return fail(`the stage cannot make system calls: ${(e as Error).message}`);
  }
  if (process.ppid !== owner) return EXIT.FAILURE;

  const { plan } = p;
  try {
    libc.mount("silo", plan.root, "overlay", overlayOptions(plan.lowers, plan.upper, plan.work));
  } catch (e) {
    if (!plan.tmpfsFallback) return fail(`overlay mount failed: ${(e as Error).message}`);
    try {
      const t = join(plan.runDir, "t");
      mkdirSync(t);
      libc.mount("silo", t, "tmpfs", "mode=0700");
      mkdirSync(join(t, "u"));
      mkdirSync(join(t, "w"));
      libc.mount("silo", plan.root, "overlay", overlayOptions(plan.lowers, join(t, "u"), join(t, "w")));
    } catch (e2) {
      return fail(`overlay mount failed: ${(e as Error).message}; on a tmpfs too: ${(e2 as Error).message}`);
    }
  }

  let relays: { close(): void };
  try {
    libc.bringLoopbackUp();
    const { startSandboxRelays } = await import("../../../net/relay.ts");
    relays = await startSandboxRelays(p.network);
  } catch (e) {
    return fail(`the sandbox's network relays did not start, so it does not run: ${(e as Error).message}`);
  }

  const status = openSync(plan.statusFile, "w");
  const enc = new TextEncoder();
  const seccomp = Uint8Array.from(Buffer.from(p.seccomp, "base64"));
  const proc = launch([p.tools.bwrap, "--args", String(FD.ARGS), "--", ...p.argv], {
    env: {},
    stdio: "inherit",
    fds: [encodeArgs(p.args), seccomp, enc.encode(p.hosts), enc.encode(p.resolv), status],
  });
  closeSync(status);
  log.debug(`stage: bwrap started (pid ${proc.pid}) with relays, ${performance.now().toFixed(1)} ms after the stage started`);
  const stop = forwardSignals((sig) => signalSandbox(proc.pid, sig), { tty: p.tty });
  try {
    const code = await proc.exited;
    return exitCodeFor(code, typeof proc.signalCode === "string" ? proc.signalCode : null);
  } finally {
    stop();
    relays.close();
  }
}
