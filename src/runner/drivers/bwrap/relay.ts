/**
 * The driver's side of the network relays: once the stage has its own network namespace, start
 * `silo __stage` in it (stage.ts) and wait until it listens. Called while bwrap waits on --block-fd.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { SiloError } from "../../../core/errors.ts";
import { isDebug } from "../../../core/log.ts";
import type { RunSpec } from "../../spec.ts";
import { buildRelayArgv, STAGE_PATH, type HostTools } from "./argv.ts";
import { launch, type RelayPayload } from "./launch.ts";
import type { SandboxPlan } from "./plan.ts";

const NS_TIMEOUT_MS = 10_000;

export async function startRelay(spec: RunSpec, plan: SandboxPlan, stage: { pid: number; exitCode: number | null }, tools: HostTools) {
  const fail = (msg: string, hint?: string) => new SiloError("E_NETWORK", `the sandbox's network relays did not start: ${msg}`, hint);
  if (!tools.nsenter) throw fail("nsenter is missing", "sudo apt install util-linux (it ships unshare and nsenter)");
  if (spec.self.length === 0) throw fail("RunSpec.self is empty, so silo cannot start itself");
  const hostNetns = readlinkSync("/proc/self/ns/net");
  // unshare creates the namespaces a moment after it starts, then writes the uid/gid maps: wait for all of
  // it, so nsenter joins the right namespaces, and as root there (exec without a mapped uid drops all caps).
  const deadline = performance.now() + NS_TIMEOUT_MS;
  for (;;) {
    let ns: string | null = null;
    let mapped = false;
    try {
      ns = readlinkSync(`/proc/${stage.pid}/ns/net`);
      mapped = readFileSync(`/proc/${stage.pid}/uid_map`, "utf8").trim() !== "" && readFileSync(`/proc/${stage.pid}/gid_map`, "utf8").trim() !== "";
    } catch {
      // gone
    }
    if (ns && ns !== hostNetns && mapped) break;
    if (ns === null || stage.exitCode !== null) throw fail("the sandbox's stage ended before its network namespace existed");
    if (performance.now() > deadline) throw fail("the sandbox's stage did not create its network namespace in time");
    await Bun.sleep(1);
  }

  const payload: RelayPayload = { network: spec.network, hostNetns, debug: isDebug() };
  const { proc } = launch(buildRelayArgv(spec, plan, stage.pid, tools.nsenter), {
    env: { PATH: STAGE_PATH },
    stdio: "pipe",
    fds: [new TextEncoder().encode(JSON.stringify(payload))],
  });
  const stdout = proc.stdout as unknown as ReadableStream<Uint8Array>;
  const reader = stdout.getReader();
  let got = "";
  while (!got.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    got += new TextDecoder().decode(value);
  }
  if (!got.startsWith("ready")) {
    await proc.exited;
    throw fail(`the relay process exited with ${proc.exitCode} (see its message above)`);
  }
  reader.releaseLock();
  const stdin = proc.stdin as unknown as import("bun").FileSink;
  return {
    pid: proc.pid,
    /**
     * Close the relays: EOF on their stdin ends them. silo does not wait for that (it would only add to the
     * run's time); should silo exit first, their parent-death signal ends them.
     */
    stop() {
      stdin.end();
      proc.unref();
    },
  };
}
