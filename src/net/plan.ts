/**
 * What the host side of one sandbox's network will be, decided without starting anything (and without
 * importing the proxy): the NetworkSpec the driver needs, and the environment that announces the proxy.
 * host.ts starts what it describes.
 */
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { DEFAULT_PROXY_PORT, HOST_ALIAS_ADDRESS, type NetworkSpec } from "../runner/spec.ts";
import type { DenyInfo } from "./proxy.ts";
import type { Lookup } from "./policy.ts";

export interface NetworkPolicyInput {
  /** Host patterns the tool may reach through the proxy. Empty (and no hostAccess): no egress at all. */
  allow: string[];
  deny: string[];
  /** `host.silo.internal` reaches the host's loopback services. */
  hostAccess: boolean;
  /** Host loopback ports to relay for hostAccess; missing or empty: every port listening on host loopback at start. */
  hostPorts?: number[];
  /** Host port → sandbox port forwards. */
  ports: { host: number; guest: number }[];
  /** Host ssh-agent socket to bind at /run/silo/ssh-agent.sock (the driver binds it). */
  sshAgent?: string;
  tool: string;
  /** Once per denied host; print one stderr line (`info.message` holds the what and the fix). */
  onDeny?: (host: string, info: DenyInfo) => void;
  /** Port the proxy relay listens on inside the sandbox (default 3128). */
  proxyPort?: number;
  /** Name resolution for the proxy (tests). */
  lookup?: Lookup;
}

/** The NetworkSpec for `input`, its sockets under `runDir`. */
export function planHostNetwork(input: NetworkPolicyInput, runDir: string): NetworkSpec {
  // sockaddr_un holds 108 bytes; the longest name used here is proxy.sock.http (plain-HTTP server).
  if (new TextEncoder().encode(join(runDir, "proxy.sock.http")).length > 107)
    throw new SiloError("E_NETWORK", `the run directory ${runDir} is too long for Unix socket names`, "set SILO_HOME to a shorter path");
  const spec: NetworkSpec = { mode: "none", hostAccess: input.hostAccess, ports: [...input.ports], sshAgent: input.sshAgent };
  if (input.ports.length > 0) spec.forwardSocket = join(runDir, "forward.sock");
  // Any allow entry means a proxy; one with only invalid patterns (config validation reports them) then
  // allows nothing, as no allowlist would. Validating here would cost the run its regular expressions.
  if (input.allow.length > 0 || input.hostAccess) {
    spec.mode = "proxy";
    spec.proxySocket = join(runDir, "proxy.sock");
    spec.proxyPort = input.proxyPort ?? DEFAULT_PROXY_PORT;
  }
  if (input.hostAccess) {
    spec.hostSocket = join(runDir, "host.sock");
    if (input.hostPorts?.length) spec.hostPorts = [...input.hostPorts];
  }
  return spec;
}

/** Environment that points HTTP clients (and JVMs, which ignore the variables) at the in-sandbox relay. */
export function proxyEnv(spec: NetworkSpec): Record<string, string> {
  if (spec.mode !== "proxy") return {};
  const port = spec.proxyPort ?? DEFAULT_PROXY_PORT;
  const url = `http://127.0.0.1:${port}`;
  const noProxy = "localhost,127.0.0.1,::1";
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    JAVA_TOOL_OPTIONS:
      `-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=${port} -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=${port} ` +
      `-Dhttp.nonProxyHosts=localhost|127.0.0.1`,
  };
}

/**
 * One TCP relay inside the sandbox: where it listens, the host-side Unix socket it leads to, and for
 * hostAccess the port to announce first (a 2-byte header). Both relay implementations take this list:
 * the relay process (relay.ts) and the native stage (its argv, bwrap/argv.ts nativeRelays).
 */
export interface RelayRoute {
  hostname: string;
  port: number;
  socket: string;
  header?: number;
}

/** The TCP relays of a network spec, in a fixed order. `hostPorts`: the hostAccess ports, resolved. */
export function relayRoutes(net: NetworkSpec, hostPorts: number[]): RelayRoute[] {
  const routes: RelayRoute[] = [];
  if (net.mode === "proxy") {
    if (!net.proxySocket) throw new SiloError("E_NETWORK", "network mode is proxy but no proxy socket was given");
    routes.push({ hostname: "127.0.0.1", port: net.proxyPort ?? DEFAULT_PROXY_PORT, socket: net.proxySocket });
  }
  if (net.hostAccess && net.hostSocket)
    for (const port of hostPorts) routes.push({ hostname: HOST_ALIAS_ADDRESS, port, socket: net.hostSocket, header: port });
  return routes;
}

/** The proxy's onDeny for a run: one stderr line per denied host, with the proxy's own reason. */
export const denyWarning = (tool: string) => (_host: string, info: { message: string }) => log.warn(`${tool}: ${info.message.split("\n").join(" ")}`);

/** Does a sandbox with this network need relays in its network namespace (and so a set-up stage)? */
export function needsRelays(net: NetworkSpec): boolean {
  return net.mode === "proxy" || net.hostAccess || net.ports.length > 0;
}
