/**
 * The bwrap driver: Linux, rootless. argv.ts says how a sandbox is put together, plan.ts prepares it on
 * the host, seccomp.ts is the system-call filter, probe.ts what a machine needs, relay.ts + stage.ts the
 * network relays.
 */
import { closeSync, readFileSync } from "node:fs";
import { EXIT, SiloError } from "../../../core/errors.ts";
import { isDebug, log } from "../../../core/log.ts";
import { mark } from "../../../core/trace.ts";
import { homePaths, siloHome } from "../../../core/paths.ts";
import type { Subprocess } from "bun";
import type { Driver, RunHooks, SandboxProcess } from "../../driver.ts";
import { childPids, forwardSignals, signalSandbox } from "../../run.ts";
import { exitCodeFor, type RunResult, type RunSpec } from "../../spec.ts";
import {
  buildBwrapArgs, buildHostsFile, buildResolvConf, buildStageArgv, buildStageMessage, encodeArgs, nativeRelays, nativeStageArgv, STAGE_PATH,
  type HostTools,
} from "./argv.ts";
import { adoptReaper, hasAdoptedReaper, startReaper, writeAll, type Reaper } from "../../../core/fs.ts";
import { needsRelays } from "../../../net/plan.ts";
import { handOff, type ExecSpec } from "./handoff.ts";
import { launch, type ExtraFd } from "./launch.ts";
import { hasNativeStage, nativeStage, stageDescription, writtenNativeStage } from "./native.ts";
import { describeLimits, hostLimitSupport } from "./limits.ts";
import { startRelay, type Relay } from "./relay.ts";
import { checkSpec, cleanStaleRuns, makePlan, removeTreeLater, type SandboxPlan } from "./plan.ts";
import { removeTree } from "../../../core/fs.ts";
import { checkMountTargets } from "./targets.ts";
import { nativeSeccompArch } from "./seccomp.ts";
import { prebuiltSeccompFilters } from "./seccomp-prebuilt.ts" with { type: "macro" };

const SECCOMP_FILTERS = prebuiltSeccompFilters();

const REGISTER_AFTER_MS = 100;

async function spawnSandbox(spec: RunSpec, stdio: "inherit" | "pipe", hooks: RunHooks = {}): Promise<SandboxProcess> {
  const t0 = performance.now();
  const home = siloHome();
  const runRoot = homePaths(home).run;
  checkSpec(spec, home);
  const arch = nativeSeccompArch();
  if (!arch) throw new SiloError("E_DRIVER", `the bwrap driver supports x86_64 and aarch64, not ${process.arch}`);
  // The native stage, when this silo has one, sets the sandbox up and runs its network relays itself;
  // the /bin/sh stage needs the relay process (a second silo) for them.
  const relays = needsRelays(spec.network);
  const nativePath = await nativeStage(home);
  const tools = await hostTools(!nativePath);
  // With the relay process, it goes first (a Bun start is the slow part; `prewarm` may have started it
  // already) and owns the network namespace.
  let relay: Relay | null = null;
  if (relays && !nativePath) relay = prewarmed ?? startRelay(spec.self, tools);
  else prewarmed?.kill();
  prewarmed = null;
  relay?.send(spec.network);
  // The native stage: the one `prewarm` started if it fits (it has made its namespaces meanwhile), else one now.
  let stage = takeWaitingStage(relays, stdio);
  if (nativePath && !stage) {
    try {
      stage = startNativeStage(nativePath, relays, stdio);
    } catch (e) {
      throw new SiloError("E_DRIVER", `cannot start the sandbox's stage ${nativePath}: ${(e as Error).message}`,
        `if ${home} is on a noexec filesystem, set SILO_STAGE=sh (or move SILO_HOME)`);
    }
  }
  let plan: SandboxPlan;
  let fds: ExtraFd[];
  let nativeRelayArgs: string[] = [];
  const enc = new TextEncoder();
  try {
    if (nativePath && relays) {
      const hostPorts = spec.network.hostAccess ? await (await import("../../../net/relay.ts")).resolveHostPorts(spec.network) : [];
      nativeRelayArgs = nativeRelays(spec.network, hostPorts);
    }
    plan = makePlan(spec, runRoot, process.pid, nativePath ? "native" : "sh");
    const args = buildBwrapArgs(spec, plan);
    try {
      checkMountTargets(args, spec.captureUpper ? [...spec.layers, spec.captureUpper] : spec.layers);
    } catch (e) {
      removeTree(plan.runDir);
      throw e;
    }
    fds = [encodeArgs(args), Uint8Array.from(SECCOMP_FILTERS[arch][spec.keepSetuid ? "keepSetuid" : "run"]), enc.encode(buildHostsFile(spec)), enc.encode(buildResolvConf(spec))];
  } catch (e) {
    relay?.kill();
    if (stage) abandonStage(stage);
    throw e;
  }
  if (relay) fds.push("hold"); // bwrap's --block-fd: one byte once the relays listen
  if (isDebug()) logLimits(spec, plan.stage, stage?.proc.pid);
  log.debug(`bwrap: layers ${plan.lowers.join(" ")}`);
  const t1 = performance.now();
  mark("planned");

  // `silo status` learns of a sandbox once it has run for a moment: a short command (the shim calls that
  // dominate) never pays for the state database, nor competes with its own start-up for the CPU.
  const started = Date.now();
  let registered: Promise<() => void> | null = null;
  const registerLater = setTimeout(() => {
    registered = import("../../state.ts")
      .then((m) => m.registerSandbox(home, { id: plan.id, tool: spec.tool, project: spec.workspace, pid: process.pid, driver: "bwrap", started }))
      .catch((e) => {
        log.debug(`bwrap: could not record the sandbox for silo status: ${e}`);
        return () => {};
      });
  }, REGISTER_AFTER_MS);
  // Started once the stage runs (silo is idle then, and the machine has a second core): it removes the run
  // directory when told, or when silo exits, however it exits.
  let reaper: Reaper | null = null;
  const cleanup = async () => {
    clearTimeout(registerLater);
    if (reaper) reaper.release();
    else removeTreeLater(plan.runDir);
    if (spec.captureUpper) removeTree(plan.work);
    if (registered) (await registered)();
  };

  if (relay) {
    try {
      await relay.namespaces();
    } catch (e) {
      relay.kill();
      await cleanup();
      throw e;
    }
  }
  // A run whose caller needs nothing of silo afterwards is handed over to the native stage's waiter once
  // its sandbox is under way (handoff.ts); that waiter then starts the egress proxy, as below.
  // (Only with the stage's own reaper, which follows silo's pid across the exec.)
  const handingOver = stage !== null && stdio === "inherit" && !spec.captureUpper && hooks.handoff !== undefined && hasAdoptedReaper();
  // The egress proxy starts when the native stage's relays first need it (SIGURG from the stage).
  let firstConnection: (() => void) | null = null;
  const onFirstConnection = () => {
    const start = hooks.onFirstConnection;
    if (!start || firstConnection) return;
    firstConnection = () => {
      process.off("SIGURG", firstConnection!);
      log.debug("bwrap: the sandbox's first connection out: starting the egress proxy");
      start().catch((e) => log.error(`${spec.tool}: the network proxy did not start, so its connections fail: ${(e as Error).message}`));
    };
    process.on("SIGURG", firstConnection);
  };
  if (stage && !handingOver) onFirstConnection();
  let launched: { proc: Subprocess; held: number[] };
  if (stage) {
    try {
      writeAll(stage.control, buildStageMessage(spec, plan, tools, nativeRelayArgs, fds as Uint8Array[]));
    } catch {
      // the stage is gone already: its exit says why
    }
    closeSync(stage.control);
    stage.proc.ref();
    launched = { proc: stage.proc, held: [] };
  } else {
    const argv = buildStageArgv(spec, plan, tools, relay?.pid);
    try {
      // Out of silo's session, with a TTY or not (output piped, the terminal is still there): the terminal's
      // Ctrl-C then reaches silo alone (which passes it to the command), not bwrap, which would die of it and
      // take the sandbox down. (The native stage puts bwrap in a session of its own itself: exec_bwrap.)
      launched = launch(argv, { env: { PATH: STAGE_PATH }, stdio, fds, detached: true });
    } catch (e) {
      relay?.kill();
      await cleanup();
      throw new SiloError("E_DRIVER", `cannot start the sandbox's stage ${argv[0]}: ${(e as Error).message}`);
    }
  }
  const { proc, held } = launched;
  mark("launched");
  reaper = startReaper(plan.runDir);
  mark("reaper");
  if (hooks.afterLaunch || hooks.onFirstConnection) {
    try {
      await hooks.afterLaunch?.();
      if (!stage) await hooks.onFirstConnection?.(); // the shell stage cannot tell when: now
    } catch (e) {
      if (firstConnection) process.off("SIGURG", firstConnection);
      // Fail closed: what the command needs did not start, so it must not run.
      killStage(proc.pid);
      await proc.exited;
      relay?.kill();
      for (const fd of held) closeSync(fd);
      await cleanup();
      throw e;
    }
    mark("after launch");
  }
  // What crashed silos left behind goes while this sandbox runs, not on the path of its exit code.
  cleanStaleRuns(runRoot);
  log.debug(`bwrap: sandbox ${plan.id} prepared in ${(t1 - t0).toFixed(1)} ms, ${plan.stage} stage spawned ${(performance.now() - t1).toFixed(1)} ms later`);
  if (relay) {
    const block = held[0]!;
    try {
      await relay.ready();
    } catch (e) {
      // Fail closed: the command must not run without its relays, and bwrap goes on when the fd closes, so
      // the whole sandbox dies before it does.
      killStage(proc.pid);
      await proc.exited;
      closeSync(block);
      await cleanup();
      throw e;
    }
    try {
      writeAll(block, enc.encode("r"));
    } catch {
      // the stage is gone already: its exit says why
    }
    closeSync(block);
    log.debug(`bwrap: relays ready ${(performance.now() - t1).toFixed(1)} ms after the sandbox was prepared`);
  }

  const exited = (async (): Promise<RunResult> => {
    const code = await proc.exited;
    mark("exited");
    if (firstConnection) process.off("SIGURG", firstConnection);
    const t2 = performance.now();
    relay?.stop();
    const result = await interpret(spec, plan, code, signalName(proc.signalCode));
    await cleanup();
    log.debug(`bwrap: sandbox ${plan.id} ran ${(t2 - t1).toFixed(1)} ms, cleaned up in ${(performance.now() - t2).toFixed(1)} ms`);
    return result;
  })();

  return {
    stdin: stdio === "pipe" ? (proc.stdin as unknown as import("bun").FileSink) : undefined,
    stdout: stdio === "pipe" ? (proc.stdout as unknown as ReadableStream<Uint8Array>) : undefined,
    exited,
    // The stage has exec'd into bwrap: signal the command under it.
    kill: (sig = "SIGTERM") => signalSandbox(proc.pid, sig),
    handOff: handingOver
      ? async () => {
          log.debug(`bwrap: handing sandbox ${plan.id} over to the native stage's waiter`);
          const e = await handOff({ stagePath: nativePath!, stagePid: proc.pid, spec, plan, home, started, hooks: hooks.handoff! });
          log.debug(`bwrap: could not hand the run over (${e.message}); silo waits for it`);
          onFirstConnection();
        }
      : undefined,
  };
}

/** Turn how the stage ended into the command's exit code, reporting silo's own failures. */
export async function interpret(spec: ExecSpec, plan: Pick<SandboxPlan, "statusFile" | "errFile">, code: number | null, signal: string | null): Promise<RunResult> {
  const status = readStatus(plan.statusFile);
  if (status.exitCode !== undefined) return { code: status.exitCode };
  if (signal) return { code: exitCodeFor(null, signal), signal };
  if (status.started) {
    // bwrap ran but the command never did: bwrap has said why on stderr (setup error, or execvp failing).
    if (code !== 1) return { code: code ?? EXIT.FAILURE };
    const { classifyExecFailure } = await import("./lookup.ts");
    return { code: classifyExecFailure(spec) };
  }
  let err = "";
  try {
    err = readFileSync(plan.errFile, "utf8").trim();
  } catch {
    // unshare itself failed: it printed its own message
  }
  const { probeBwrap } = await import("./probe.ts");
  const p = await probeBwrap();
  log.error(`could not set up the sandbox${err ? `: ${err}` : ""}`);
  if (!p.ok) log.hint(`${p.reason}; fix: ${p.fix}`);
  return { code: EXIT.FAILURE };
}

/** --debug: the sandbox's limits, which of them this host lets silo enforce (limits.ts), and the stage's cgroups. */
function logLimits(spec: RunSpec, stage: SandboxPlan["stage"], stagePid?: number) {
  const r = spec.resources;
  const layer = spec.captureUpper ? "on disk (a build capture)" : `${r.rootfsMB ?? "unbounded"} MiB`;
  const asked = `/tmp and /dev/shm ${r.tmpMB ?? "unbounded"} MiB each, writable layer ${layer}, ${r.pids ?? "unbounded"} processes, ${r.cpus ?? "all"} cpus, ${r.memoryMB ?? "any"} MiB memory`;
  const support = hostLimitSupport();
  log.debug(`bwrap: limits: ${asked}; ${describeLimits(support, stage === "sh")}`);
  const cgroups = stage === "native" && stagePid ? [support.v2Parent, support.v1Pids].filter((d) => d !== null).map((d) => `${d}/silo-${stagePid}`) : [];
  if (cgroups.length) log.debug(`bwrap: the sandbox's cgroups: ${cgroups.join(" ")}`);
}

/** SIGKILL the stage and the sandbox under it; stopped first, so it cannot start a child meanwhile. */
function killStage(pid: number) {
  try {
    process.kill(pid, "SIGSTOP");
    for (const child of childPids(pid)) process.kill(child, "SIGKILL");
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

export const signalName = (s: unknown): string | null => (typeof s === "string" ? s : null);

export function readStatus(file: string): { started: boolean; exitCode?: number } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { started: false };
  }
  const m = /"exit-code"\s*:\s*(\d+)/.exec(text);
  return { started: true, exitCode: m ? Number(m[1]) : undefined };
}

let toolsCache: HostTools | null = null;
/**
 * bwrap (and, for the shell stage, unshare, sh and mount) from the host's PATH or their usual places; null
 * when one that is needed is missing. Only bwrap is looked up when the native stage runs the sandbox.
 */
function findHostTools(shellStage = true): HostTools | null {
  if (toolsCache && (!shellStage || toolsCache.unshare)) return toolsCache;
  const find = (name: string) => Bun.which(name) ?? Bun.which(name, { PATH: STAGE_PATH });
  const bwrap = toolsCache?.bwrap ?? find("bwrap");
  if (!bwrap) return null;
  if (!shellStage) return (toolsCache = { unshare: "", sh: "", mount: "", bwrap, nsenter: null });
  const t = { unshare: find("unshare"), sh: find("sh") ?? "/bin/sh", mount: find("mount") };
  if (!t.unshare || !t.mount) return null;
  return (toolsCache = { unshare: t.unshare, sh: t.sh, mount: t.mount, bwrap, nsenter: find("nsenter") });
}

export async function hostTools(shellStage = true): Promise<HostTools> {
  const t = findHostTools(shellStage);
  if (t) return t;
  const { probeBwrap } = await import("./probe.ts");
  const p = await probeBwrap();
  throw new SiloError("E_DRIVER", p.ok ? "unshare, mount or bwrap is missing on this machine" : p.reason, p.ok ? undefined : p.fix);
}

/** A relay process started by `prewarm`, waiting for the sandbox that `spawn` will start. */
let prewarmed: Relay | null = null;

/** A native stage waiting for its message (native/silo-stage.c): its control socket, and what it was made for. */
interface WaitingStage {
  proc: Subprocess;
  control: number;
  net: boolean;
  stdio: "inherit" | "pipe";
}
let waiting: WaitingStage | null = null;

/**
 * The native stage's environment: PATH, and SILO_STAGE_MAX_CONNECTIONS (silo's own environment, for the
 * tests: it may only lower the stage's cap on relay connections; config and the sandbox cannot set it).
 */
function stageEnv(): Record<string, string> {
  const max = process.env.SILO_STAGE_MAX_CONNECTIONS;
  return max ? { PATH: STAGE_PATH, SILO_STAGE_MAX_CONNECTIONS: max } : { PATH: STAGE_PATH };
}

/** Start the native stage; its reaper (fd 4) becomes this silo's (core/fs.ts startReaper). Throws when it cannot run. */
function startNativeStage(path: string, net: boolean, stdio: "inherit" | "pipe"): WaitingStage {
  const { proc, held } = launch(nativeStageArgv(path, net), { env: stageEnv(), stdio, fds: ["hold", "hold"] });
  adoptReaper(held[1]!);
  return { proc, control: held[0]!, net, stdio };
}

/** The waiting stage, if it is alive and made for this sandbox; else it is abandoned. */
function takeWaitingStage(net: boolean, stdio: "inherit" | "pipe"): WaitingStage | null {
  const s = waiting;
  waiting = null;
  if (!s) return null;
  if (s.net === net && s.stdio === stdio && s.proc.exitCode === null && s.proc.signalCode === null) return s;
  abandonStage(s);
  return null;
}

/** Its control socket closed before a message, a stage exits quietly; it is killed to be sure. */
function abandonStage(s: WaitingStage) {
  closeSync(s.control);
  killStage(s.proc.pid);
  s.proc.unref();
}

const driver: Driver = {
  name: "bwrap",
  async probe() {
    const p = await (await import("./probe.ts")).probeBwrap();
    const shellStage = !(await nativeStage(siloHome()));
    return p.ok ? { ...p, detail: `${p.detail}; set-up stage: ${await stageDescription(siloHome())}\n             limits: ${describeLimits(hostLimitSupport(), shellStage)}` } : p;
  },
  prewarm(hint) {
    if (hasNativeStage()) {
      // Only once it is written out (the first run writes it): prewarm must not wait. For `spawn("inherit")`.
      const path = writtenNativeStage(siloHome());
      if (!path || waiting) return;
      try {
        waiting = startNativeStage(path, hint.network, "inherit");
        waiting.proc.unref(); // if no sandbox comes (an error first), silo exits, and the stage with it
        log.debug("bwrap: native stage started ahead of its sandbox");
      } catch {
        // spawn will say what is wrong
      }
      return;
    }
    // The relay process is only for the sh stage.
    if (!hint.network || prewarmed) return;
    const tools = findHostTools();
    try {
      if (tools) prewarmed = startRelay(hint.self, tools);
    } catch {
      // spawn will say what is wrong
    }
  },
  spawn: spawnSandbox,
  async run(spec, hooks) {
    // Catch signals from the start: one arriving while the sandbox is set up is delivered once it exists.
    let sandbox: SandboxProcess | null = null;
    const pending: NodeJS.Signals[] = [];
    const stop = forwardSignals((sig) => (sandbox ? sandbox.kill(sig) : pending.push(sig)));
    try {
      sandbox = await spawnSandbox(spec, "inherit", hooks);
      for (const sig of pending) sandbox.kill(sig);
      await sandbox.handOff?.(); // returns only if silo could not hand over
      return await sandbox.exited;
    } finally {
      stop();
    }
  },
};

export default driver;
