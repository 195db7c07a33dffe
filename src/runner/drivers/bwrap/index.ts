/**
 * The bwrap driver: Linux, rootless. See argv.ts for how a sandbox is put together, seccomp.ts for the
 * system-call filter, probe.ts for what a machine needs, stage.ts for the relay path.
 */
import { readFileSync } from "node:fs";
import { EXIT, SiloError } from "../../../core/errors.ts";
import { isDebug, log } from "../../../core/log.ts";
import { homePaths, siloHome } from "../../../core/paths.ts";
import type { Driver, SandboxProcess } from "../../driver.ts";
import { forwardSignals, signalSandbox } from "../../run.ts";
import { exitCodeFor, type RunResult, type RunSpec } from "../../spec.ts";
import {
  buildBwrapArgs, buildHostsFile, buildResolvConf, buildStageArgv, encodeArgs, STAGE_PATH, type HostTools,
} from "./argv.ts";
import { launch, type StagePayload } from "./launch.ts";
import { checkSpec, cleanStaleRuns, makePlan, removeTree, type SandboxPlan } from "./plan.ts";
import { buildSeccompFilter, nativeSeccompArch } from "./seccomp.ts";

async function spawnSandbox(spec: RunSpec, stdio: "inherit" | "pipe"): Promise<SandboxProcess> {
  const t0 = performance.now();
  const home = siloHome();
  const runRoot = homePaths(home).run;
  checkSpec(spec, home);
  const tools = await hostTools();
  const arch = nativeSeccompArch();
  if (!arch) throw new SiloError("E_DRIVER", `the bwrap driver supports x86_64 and aarch64, not ${process.arch}`);
  const plan = makePlan(spec, runRoot);
  const args = buildBwrapArgs(spec, plan);
  const seccomp = buildSeccompFilter(arch);
  const hosts = buildHostsFile(spec);
  const resolv = buildResolvConf(spec);
  const enc = new TextEncoder();
  const argv = buildStageArgv(spec, plan, tools);
  let fds;
  if (!plan.relays) fds = [encodeArgs(args), seccomp, enc.encode(hosts), enc.encode(resolv)];
  else {
    const payload: StagePayload = {
      plan, tools, args, argv: spec.argv, seccomp: Buffer.from(seccomp).toString("base64"), hosts, resolv,
      network: spec.network, tty: spec.tty, debug: isDebug(),
    };
    fds = [enc.encode(JSON.stringify(payload))];
  }
  if (spec.resources.cpus || spec.resources.memoryMB) log.debug("bwrap: resource limits are not enforced by this driver");
  const t1 = performance.now();
  const proc = launch(argv, { env: { PATH: STAGE_PATH, ...(isDebug() ? { SILO_DEBUG: "1" } : {}) }, stdio, fds });
  log.debug(`bwrap: sandbox ${plan.id} prepared in ${(t1 - t0).toFixed(1)} ms, stage spawned in ${(performance.now() - t1).toFixed(1)} ms (${plan.relays ? "silo stage with relays" : "sh stage"})`);

  const { registerSandbox } = await import("../../state.ts");
  const registered = registerSandbox(home, {
    id: plan.id, tool: spec.tool, project: spec.workspace, pid: process.pid, driver: "bwrap", started: Date.now(),
  }).catch((e) => {
    log.debug(`bwrap: could not record the sandbox for silo status: ${e}`);
    return () => {};
  });

  const exited = (async (): Promise<RunResult> => {
    const code = await proc.exited;
    const t2 = performance.now();
    const result = await interpret(spec, plan, code, signalName(proc.signalCode));
    removeTree(plan.runDir);
    if (spec.captureUpper) removeTree(plan.work);
    (await registered)();
    cleanStaleRuns(runRoot);
    log.debug(`bwrap: sandbox ${plan.id} ran ${(t2 - t1).toFixed(1)} ms, cleaned up in ${(performance.now() - t2).toFixed(1)} ms`);
    return result;
  })();

  return {
    stdin: stdio === "pipe" ? (proc.stdin as unknown as import("bun").FileSink) : undefined,
    stdout: stdio === "pipe" ? (proc.stdout as unknown as ReadableStream<Uint8Array>) : undefined,
    exited,
    // The silo stage forwards signals itself; the sh stage has exec'd into bwrap, whose command we signal.
    kill: (sig = "SIGTERM") => (plan.relays ? proc.kill(sig) : signalSandbox(proc.pid, sig)),
  };
}

/** Turn how the stage ended into the command's exit code, reporting silo's own failures. */
async function interpret(spec: RunSpec, plan: SandboxPlan, code: number | null, signal: string | null): Promise<RunResult> {
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
/** unshare, sh, mount and bwrap from the host's PATH (or their usual places). */
export async function hostTools(): Promise<HostTools> {
  if (toolsCache) return toolsCache;
  const find = (name: string, ...fallbacks: string[]) =>
    Bun.which(name) ?? Bun.which(name, { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }) ?? fallbacks[0] ?? null;
  const t = { unshare: find("unshare"), sh: find("sh", "/bin/sh"), mount: find("mount"), bwrap: find("bwrap") };
  const missing = Object.entries(t).filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) {
    const { probeBwrap } = await import("./probe.ts");
    const p = await probeBwrap();
    throw new SiloError("E_DRIVER", p.ok ? `missing on this machine: ${missing.join(", ")}` : p.reason, p.ok ? undefined : p.fix);
  }
  toolsCache = t as HostTools;
  return toolsCache;
}

const driver: Driver = {
  name: "bwrap",
  probe: async () => (await import("./probe.ts")).probeBwrap(),
  spawn: spawnSandbox,
  async run(spec) {
    const sandbox = await spawnSandbox(spec, "inherit");
    const stop = forwardSignals((sig) => sandbox.kill(sig), { tty: spec.tty });
    try {
      return await sandbox.exited;
    } finally {
      stop();
    }
  },
};

export default driver;
