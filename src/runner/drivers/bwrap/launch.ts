/**
 * Starting processes with extra file descriptors (bwrap's --args, --seccomp, --ro-bind-data, status fd),
 * shared by the driver (which starts the stage) and the silo stage (which starts bwrap). Data goes through
 * socket pairs so nothing secret (the command's environment) touches the disk or a command line.
 */
import { closeSync, writeSync } from "node:fs";
import type { SandboxPlan } from "./plan.ts";
import type { HostTools } from "./argv.ts";
import type { NetworkSpec } from "../../spec.ts";

/** An extra descriptor for the child, from fd 3 on: bytes to send, or an fd of ours to pass as is. */
export type ExtraFd = Uint8Array | number;

export interface LaunchOptions {
  env: Record<string, string>;
  stdio: "inherit" | "pipe";
  /** fds 3, 4, ... in order. */
  fds: ExtraFd[];
}

export function launch(argv: string[], opts: LaunchOptions) {
  const io = opts.stdio === "pipe" ? "pipe" : "inherit";
  const extra = opts.fds.map((f) => (typeof f === "number" ? f : "pipe"));
  const proc = Bun.spawn(argv, {
    env: opts.env,
    stdio: [io, io, "inherit", ...extra] as never,
  });
  opts.fds.forEach((f, i) => {
    if (typeof f === "number") return;
    const fd = proc.stdio[3 + i] as unknown as number;
    writeAll(fd, f);
    closeSync(fd);
  });
  return proc;
}

/** Write everything; the socket may be non-blocking and the reader not there yet. */
function writeAll(fd: number, data: Uint8Array) {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Bun.sleepSync(1);
    }
  }
}

/** What the driver hands to `silo __stage` on fd 3. */
export interface StagePayload {
  plan: SandboxPlan;
  tools: HostTools;
  /** bwrap's options (through `--args`). */
  args: string[];
  /** The command (spec.argv), after `--` on bwrap's command line. */
  argv: string[];
  seccomp: string; // base64
  hosts: string;
  resolv: string;
  network: NetworkSpec;
  tty: boolean;
  debug: boolean;
}
