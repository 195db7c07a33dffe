/**
 * The relays that run INSIDE the sandbox's network namespace (called by the driver's set-up stage, after
 * loopback is up). The namespace has loopback only, so these relays are the sandbox's only way out, and
 * each leads to one host-side Unix socket (a filesystem path, so it crosses namespaces):
 *
 *   127.0.0.1:<proxyPort>          → net.proxySocket   (the allowlisting egress proxy)
 *   127.0.0.2:<p> for p in hostPorts → net.hostSocket  (hostAccess: host loopback port p)
 *   net.forwardSocket (Unix)       → 127.0.0.1:<guest> (port forwards from the host into the sandbox)
 *
 * If the host side dies, connections to it fail and nothing else leads out: the sandbox fails closed.
 */
import type { Socket, SocketListener } from "bun";
import { rmSync } from "node:fs";
import { SiloError } from "../core/errors.ts";
import { HOST_ALIAS_ADDRESS, type NetworkSpec } from "../runner/spec.ts";
import { listenWithPortHeader, loopbackTargets, newEnd, pipeHandlers, portHeader, relayTo, type End } from "./pipe.ts";
import { relayRoutes, type RelayRoute } from "./plan.ts";
import { HOST_INTERNAL_NAME } from "./policy.ts";

export { HOST_INTERNAL_NAME };
/** The sandbox's `host.silo.internal`. */
export const HOST_INTERNAL_ADDR = HOST_ALIAS_ADDRESS;

export { needsRelays } from "./plan.ts";

/** Lines for the sandbox's /etc/hosts (the driver writes the file). */
export function hostsEntries(net: NetworkSpec): string {
  return net.hostAccess ? `${HOST_INTERNAL_ADDR}\t${HOST_INTERNAL_NAME}\n` : "";
}

export interface SandboxRelays {
  /** The port the proxy relay listens on (useful when `proxyPort` was 0: any free port). */
  proxyPort?: number;
  close(): void;
}

/** The host ports hostAccess relays: the configured ones, else what the host bridge found listening. */
export async function resolveHostPorts(net: NetworkSpec): Promise<number[]> {
  if (!net.hostAccess || !net.hostSocket) return [];
  if (net.hostPorts) return net.hostPorts;
  const { fetchHostPorts } = await import("./bridges.ts");
  return fetchHostPorts(net.hostSocket).catch((e) => {
    throw new SiloError("E_NETWORK", `cannot get the host's ports for hostAccess: ${(e as Error).message}`);
  });
}

const routeHandlers = (r: RelayRoute) => ({
  ...pipeHandlers,
  open(s: Socket<End>) {
    s.data = newEnd();
    // The proxy's route (no port header) carries the proxy's cut mark: a cut tunnel resets the client.
    const toProxy = r.header === undefined;
    void relayTo(s, [{ unix: r.socket }], toProxy ? undefined : portHeader(r.header!), toProxy);
  },
});

export async function startSandboxRelays(net: NetworkSpec): Promise<SandboxRelays> {
  const listeners: SocketListener<End>[] = [];
  const cleanup: string[] = [];
  const close = () => {
    for (const l of listeners.splice(0)) l.stop(true);
    for (const p of cleanup.splice(0)) rmSync(p, { force: true });
  };
  let proxyPort: number | undefined;
  for (const r of relayRoutes(net, await resolveHostPorts(net))) {
    try {
      const l = Bun.listen<End>({ hostname: r.hostname, port: r.port, exclusive: true, allowHalfOpen: true, socket: routeHandlers(r) });
      listeners.push(l);
      if (net.mode === "proxy" && proxyPort === undefined) proxyPort = l.port;
    } catch (e) {
      close();
      throw new SiloError("E_NETWORK", `cannot listen on ${r.hostname}:${r.port} inside the sandbox: ${(e as Error).message}`);
    }
  }

  if (net.ports.length > 0 && net.forwardSocket) {
    const guests = new Set(net.ports.map((p) => p.guest));
    try {
      listeners.push(
        listenWithPortHeader(net.forwardSocket, (sock, port, rest) => {
          if (!guests.has(port)) return void sock.end();
          void relayTo(sock, loopbackTargets(port), rest);
        }),
      );
      cleanup.push(net.forwardSocket);
    } catch (e) {
      close();
      throw new SiloError("E_NETWORK", `cannot listen on ${net.forwardSocket}: ${(e as Error).message}`);
    }
  }
  return { proxyPort, close };
}
