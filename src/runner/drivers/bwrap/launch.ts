/**
 * Starting processes with extra file descriptors (bwrap's --args, --seccomp, --ro-bind-data, --block-fd).
 * Data goes through socket pairs so nothing secret (the command's environment) touches the disk or a
 * command line. Bun closes every descriptor of ours that is not listed, so nothing else leaks in.
 */
import { closeSync } from "node:fs";
import { writeAll } from "../../../core/fs.ts";
import type { NetworkSpec } from "../../spec.ts";

/** An extra descriptor for the child, from fd 3 on: bytes to send (then closed), or "hold" to keep our end. */
export type ExtraFd = Uint8Array | "hold";

export interface LaunchOptions {
  env: Record<string, string>;
  /** stdin and stdout: the caller's, or pipes to silo. stderr always passes through. */
  stdio: "inherit" | "pipe";
  /** fds 3, 4, ... in order. */
  fds: ExtraFd[];
  /** In a session of its own (setsid). */
  detached?: boolean;
}

export function launch(argv: string[], opts: LaunchOptions) {
  const io = opts.stdio === "pipe" ? "pipe" : "inherit";
  const proc = Bun.spawn(argv, {
    env: opts.env,
    detached: opts.detached,
    stdio: [io, io, "inherit", ...opts.fds.map(() => "pipe")] as never,
  });
  const held: number[] = [];
  opts.fds.forEach((f, i) => {
    const fd = proc.stdio[3 + i] as unknown as number;
    if (f === "hold") return held.push(fd);
    writeAll(fd, f);
    closeSync(fd);
  });
  return { proc, held };
}

/** What the driver hands to the relay process (`silo __stage`) on fd 3. */
export interface RelayPayload {
  network: NetworkSpec;
  /** The host's network namespace (readlink of /proc/self/ns/net): the relay refuses to run in it. */
  hostNetns: string;
  debug: boolean;
}
