/**
 * `silo __stage <owner-pid>`: the network relays of one sandbox. The driver starts it through
 * `unshare --user --map-root-user --net` (the stage joins these namespaces), so it listens inside the
 * sandbox's network namespace while it stays outside the sandbox's pid namespace and filesystem view (it
 * reaches the host's Unix sockets). Protocol with the driver: the network spec on fd 3 (possibly sent a
 * while after start; nothing at all means "not needed"); "ready\n" on stdout once the relays listen (the
 * driver then lets bwrap start the command); it exits when its stdin closes. It fails closed: any error
 * before "ready" means no sandbox.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { EXIT } from "../../../core/errors.ts";
import { log, setDebug } from "../../../core/log.ts";
import { FD } from "./argv.ts";
import type { RelayPayload } from "./launch.ts";

const SIGKILL = 9;

export async function main(argv: string[]): Promise<number> {
  const owner = Number(argv[0]);
  // Ctrl-C in a TTY session reaches the whole foreground group; the relays must outlive it. silo ends them.
  for (const sig of ["SIGINT", "SIGQUIT", "SIGHUP"] as const) process.on(sig, () => {});
  try {
    // Everything that does not need the network spec first: the driver may send it only later.
    const libc = await import("./libc.ts");
    // Die with silo; if it is already gone (the pid we were given is no longer our parent), stop here.
    libc.setParentDeathSignal(SIGKILL);
    if (process.ppid !== owner) return EXIT.FAILURE;
    libc.bringLoopbackUp();
    const { startSandboxRelays } = await import("../../../net/relay.ts");
    const text = readFileSync(FD.ARGS, "utf8");
    if (text === "") return 0; // silo did not need us after all
    const p = JSON.parse(text) as RelayPayload;
    if (p.debug) setDebug(true);
    if (readlinkSync("/proc/self/ns/net") === p.hostNetns) throw new Error("the relay is in the host's network namespace");
    const relays = await startSandboxRelays(p.network);
    process.stdout.write("ready\n");
    log.debug(`relay: listening ${performance.now().toFixed(1)} ms after start`);
    await waitForEof();
    relays.close();
    return 0;
  } catch (e) {
    process.stderr.write(`silo: the sandbox's network relays did not start, so it does not run: ${(e as Error).message}\n`);
    return EXIT.FAILURE;
  }
}

async function waitForEof() {
  const reader = Bun.stdin.stream().getReader();
  while (!(await reader.read()).done);
}
