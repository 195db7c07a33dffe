import bwrap from "./drivers/bwrap/index.ts";
import type { RunResult, RunSpec } from "./spec.ts";

export type DriverName = "bwrap" | "qemu" | "apple";
export const driverNames: DriverName[] = ["bwrap", "qemu", "apple"];

export type ProbeResult = { ok: true; detail?: string } | { ok: false; reason: string; fix: string };

/** A started sandbox. With `stdio: "pipe"` the caller owns stdin/stdout (LSP proxy); stderr always passes through. */
export interface SandboxProcess {
  stdin?: import("bun").FileSink;
  stdout?: ReadableStream<Uint8Array>;
  /** Resolves when the sandbox is gone (and cleaned up) with the command's exit code. */
  exited: Promise<RunResult>;
  kill(signal?: NodeJS.Signals): void;
  /**
   * Replace silo (same process) with a helper that finishes the run as `run` would: signals, the exit code,
   * reporting (bwrap: the native stage's waiter). Offered only when RunHooks.handoff allows it; returns only
   * if it could not, and then the sandbox is silo's to wait for as usual.
   */
  handOff?(): Promise<void>;
}

/** What the caller starts alongside the sandbox. */
export interface RunHooks {
  /**
   * Called once the sandbox's process exists, before its command can have started (the bwrap driver:
   * right after sending the native stage its message, or before releasing the relays' block fd).
   * Host-side helpers the command needs only once it runs start here, in parallel with the sandbox's own
   * set-up. If it throws, the sandbox is killed and spawn/run rejects with that error.
   */
  afterLaunch?(): Promise<void>;
  /**
   * The host side the command reaches only by connecting (the egress proxy). A driver that learns when the
   * sandbox first connects (the bwrap driver's native stage signals it) starts it then, so a command that
   * never uses the network never pays for it; any other starts it right after afterLaunch, failing closed
   * in the same way. A failure to start it later is reported, and the connection fails (closed).
   */
  onFirstConnection?(): Promise<void>;
  /**
   * Set when nothing of silo is needed after the sandbox but what these helpers do: the driver may then
   * hand the run over (SandboxProcess.handOff) once the sandbox runs, and never return from `run`.
   */
  handoff?: import("./drivers/bwrap/handoff.ts").HandoffHooks;
}

export interface Driver {
  readonly name: DriverName;
  /** Can this driver work on this machine? If not, exactly what to fix. */
  probe(): Promise<ProbeResult>;
  /**
   * Optional: called as soon as the caller knows what the sandbox will need (before the image and the host
   * side of the network are ready), so the driver can start slow helpers in parallel. `network`: the
   * sandbox will have a proxy, host access or port forwards. spawn works the same without it, and a
   * helper that does not fit the spawn (another network, piped stdio) is discarded.
   */
  prewarm?(hint: { network: boolean; self: string[] }): void;
  /** Start the sandbox. `inherit` wires the caller's stdio (and TTY); `pipe` gives stdin/stdout to the caller. */
  spawn(spec: RunSpec, stdio: "inherit" | "pipe", hooks?: RunHooks): Promise<SandboxProcess>;
  /** spawn("inherit"), forward SIGINT/SIGTERM/SIGHUP, and resolve with the exit code (128+n for signal n). */
  run(spec: RunSpec, hooks?: RunHooks): Promise<RunResult>;
}

/** Static loader map: every specifier is a literal so `bun build --compile` keeps the module. bwrap, the Linux
 * driver, is on every run's path and is imported with this module. */
export const driverLoaders: Record<DriverName, () => Promise<Driver>> = {
  bwrap: async () => bwrap,
  qemu: () =>
    import("./drivers/unavailable.ts").then((m) => m.unavailable("qemu", "the qemu micro-VM driver is not built yet")),
  apple: () =>
    import("./drivers/unavailable.ts").then((m) =>
      m.unavailable("apple", "the apple driver needs macOS 26+ and swift-helper, which is not built yet"),
    ),
};
