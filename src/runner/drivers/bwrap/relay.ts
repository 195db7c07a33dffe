/**
 * The driver's side of the network relays. The relay process starts first and makes the user and network
 * namespaces the sandbox's stage then joins; it says "ns" once they exist and "ready" once its relays
 * listen (stage.ts). Reading those two lines is all the synchronisation there is.
 */
import { readlinkSync } from "node:fs";
import { SiloError } from "../../../core/errors.ts";
import { isDebug } from "../../../core/log.ts";
import type { RunSpec } from "../../spec.ts";
import { buildRelayArgv, STAGE_PATH, type HostTools } from "./argv.ts";
import { launch, type RelayPayload } from "./launch.ts";

export type Relay = Awaited<ReturnType<typeof startRelay>>;

export const relayError = (msg: string, hint?: string) => new SiloError("E_NETWORK", `the sandbox's network relays did not start: ${msg}`, hint);

export function startRelay(spec: RunSpec, tools: HostTools, ownerPid = process.pid) {
  if (!tools.nsenter) throw relayError("nsenter is missing", "sudo apt install util-linux (it ships unshare and nsenter)");
  if (spec.self.length === 0) throw relayError("RunSpec.self is empty, so silo cannot start itself");
  const payload: RelayPayload = { network: spec.network, hostNetns: readlinkSync("/proc/self/ns/net"), debug: isDebug() };
  const { proc } = launch(buildRelayArgv(spec, ownerPid, tools), {
    env: { PATH: STAGE_PATH },
    stdio: "pipe",
    fds: [new TextEncoder().encode(JSON.stringify(payload))],
  });
  const reader = (proc.stdout as unknown as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  /** The next line the relay says; fails closed on anything else or on its exit. */
  const expect = async (word: string) => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value);
    }
    const nl = buffered.indexOf("\n");
    const line = nl < 0 ? buffered : buffered.slice(0, nl);
    buffered = nl < 0 ? "" : buffered.slice(nl + 1);
    if (line !== word) {
      proc.kill("SIGKILL");
      await proc.exited;
      throw relayError(`the relay process exited with ${proc.exitCode ?? proc.signalCode} (see its message above)`);
    }
  };
  const stdin = proc.stdin as unknown as import("bun").FileSink;
  return {
    pid: proc.pid,
    /** Resolves once the relay's namespaces exist (the stage may join them). */
    namespaces: () => expect("ns"),
    /** Resolves once the relays listen. */
    ready: () => expect("ready"),
    /**
     * Close the relays: EOF on their stdin ends them. silo does not wait for that (it would only add to the
     * run's time); should silo exit first, their parent-death signal ends them.
     */
    stop() {
      reader.releaseLock();
      stdin.end();
      proc.unref();
    },
    kill() {
      proc.kill("SIGKILL");
    },
  };
}
