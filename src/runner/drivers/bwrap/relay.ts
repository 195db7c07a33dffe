/**
 * The driver's side of the network relays. The relay process starts first (as early as `prewarm`, while
 * silo still prepares the image and the host side of the network) and makes the user and network
 * namespaces the sandbox's stage then joins. It says "ns" once they exist and "ready" once its relays
 * listen (stage.ts), after it has been sent the network spec. Those two lines are all the synchronisation.
 */
import { closeSync, readlinkSync } from "node:fs";
import { SiloError } from "../../../core/errors.ts";
import { isDebug } from "../../../core/log.ts";
import type { NetworkSpec } from "../../spec.ts";
import { buildRelayArgv, STAGE_PATH, type HostTools } from "./argv.ts";
import { writeAll } from "../../../core/fs.ts";
import { launch, type RelayPayload } from "./launch.ts";

export type Relay = ReturnType<typeof startRelay>;

export const relayError = (msg: string, hint?: string) => new SiloError("E_NETWORK", `the sandbox's network relays did not start: ${msg}`, hint);

export function startRelay(self: string[], tools: HostTools, ownerPid = process.pid) {
  if (!tools.nsenter) throw relayError("nsenter is missing", "sudo apt install util-linux (it ships unshare and nsenter)");
  if (self.length === 0) throw relayError("RunSpec.self is empty, so silo cannot start itself");
  const { proc, held } = launch(buildRelayArgv(self, ownerPid, tools), { env: { PATH: STAGE_PATH }, stdio: "pipe", fds: ["hold"] });
  // Until a sandbox uses it, the relay must not keep silo alive (an error before then just exits).
  proc.unref();
  const payloadFd = held[0]!;
  let sent = false;
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
  const closePayload = () => {
    if (sent) return;
    sent = true;
    closeSync(payloadFd);
  };
  return {
    pid: proc.pid,
    /** Hand over the network spec; the relays listen once they have it. */
    send(network: NetworkSpec) {
      const payload: RelayPayload = { network, hostNetns: readlinkSync("/proc/self/ns/net"), debug: isDebug() };
      writeAll(payloadFd, new TextEncoder().encode(JSON.stringify(payload)));
      closePayload();
    },
    /** Resolves once the relay's namespaces exist (the stage may join them). */
    namespaces: () => expect("ns"),
    /** Resolves once the relays listen. */
    ready: () => expect("ready"),
    /**
     * Close the relays: EOF on their stdin ends them. silo does not wait for that (it would only add to the
     * run's time); should silo exit first, their parent-death signal ends them.
     */
    stop() {
      closePayload();
      reader.releaseLock();
      stdin.end();
    },
    kill() {
      closePayload();
      proc.kill("SIGKILL");
    },
  };
}
