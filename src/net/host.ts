/**
 * Everything silo starts on the host for one sandbox's network, behind one call: the egress proxy (when
 * anything is allowed or hostAccess is on), the hostAccess bridge, and the port forwards. It returns the
 * filled NetworkSpec for the driver; the in-sandbox side is relay.ts.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import type { NetworkSpec } from "../runner/spec.ts";
import { validatePattern } from "./allowlist.ts";
import { startHostAccessBridge, startPortForwards, type Closable } from "./bridges.ts";
import type { Lookup } from "./policy.ts";
import { startEgressProxy, type DenyInfo } from "./proxy.ts";
import { DEFAULT_PROXY_PORT } from "./relay.ts";

export { checkPortsFree, discoverHostPorts, startHostAccessBridge, startPortForwards } from "./bridges.ts";
export { startEgressProxy, type DenyInfo, type EgressProxyOptions } from "./proxy.ts";
export { HOST_INTERNAL_ADDR, HOST_INTERNAL_NAME, hostsEntries, needsRelays, startSandboxRelays } from "./relay.ts";

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

export interface HostNetwork {
  spec: NetworkSpec;
  close(): Promise<void>;
}

/**
 * Start the host side for one run under `runDir` (created, mode 0700). Ports are bound first, so a taken
 * port fails (SiloError E_NETWORK) before anything else starts. Invalid allow/deny patterns are ignored
 * here (config validation reports them; `validatePattern`).
 */
export async function startHostNetwork(input: NetworkPolicyInput, runDir: string): Promise<HostNetwork> {
  // sockaddr_un holds 108 bytes; the longest name used here is proxy.sock.http (plain-HTTP server).
  if (Buffer.byteLength(join(runDir, "proxy.sock.http")) > 107)
    throw new SiloError("E_NETWORK", `the run directory ${runDir} is too long for Unix socket names`, "set SILO_HOME to a shorter path");
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  chmodSync(runDir, 0o700);
  const started: Closable[] = [];
  const close = async () => {
    for (const c of started.splice(0).reverse()) await c.close().catch(() => undefined);
  };
  const allow = input.allow.filter((p) => validatePattern(p) === null);
  const deny = input.deny.filter((p) => validatePattern(p) === null);
  const spec: NetworkSpec = { mode: "none", hostAccess: input.hostAccess, ports: [...input.ports], sshAgent: input.sshAgent };
  try {
    if (input.ports.length > 0) {
      spec.forwardSocket = join(runDir, "forward.sock");
      started.push(await startPortForwards(input.ports, spec.forwardSocket));
    }
    if (allow.length > 0 || input.hostAccess) {
      spec.mode = "proxy";
      spec.proxySocket = join(runDir, "proxy.sock");
      spec.proxyPort = input.proxyPort ?? DEFAULT_PROXY_PORT;
      started.push(
        await startEgressProxy({
          socketPath: spec.proxySocket,
          allow,
          deny,
          hostAccess: input.hostAccess,
          tool: input.tool,
          onDeny: input.onDeny,
          lookup: input.lookup,
        }),
      );
    }
    if (input.hostAccess) {
      spec.hostSocket = join(runDir, "host.sock");
      // Without configured ports (missing or empty) the relay asks the bridge, which discovers them meanwhile.
      const listed = input.hostPorts?.length ? [...input.hostPorts] : undefined;
      if (listed) spec.hostPorts = listed;
      started.push(await startHostAccessBridge({ socketPath: spec.hostSocket, ports: listed }));
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { spec, close };
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
