/**
 * Everything silo starts on the host for one sandbox's network, behind one call: the egress proxy (when
 * anything is allowed or hostAccess is on), the hostAccess bridge, and the port forwards. plan.ts says
 * what they will be (the NetworkSpec, with no import of this module's weight); the in-sandbox side is
 * relay.ts (or the driver's native stage).
 */
import { chmodSync, mkdirSync } from "node:fs";
import type { NetworkSpec } from "../runner/spec.ts";
import { startHostAccessBridge, startPortForwards, type Closable } from "./bridges.ts";
import { planHostNetwork, type NetworkPolicyInput } from "./plan.ts";
import { validatePattern } from "./allowlist.ts";
import { startEgressProxy } from "./proxy.ts";

export { checkPortsFree, discoverHostPorts, startHostAccessBridge, startPortForwards } from "./bridges.ts";
export { startEgressProxy, type DenyInfo, type EgressProxyOptions } from "./proxy.ts";
export { HOST_INTERNAL_ADDR, HOST_INTERNAL_NAME, hostsEntries, needsRelays, startSandboxRelays } from "./relay.ts";
export { planHostNetwork, proxyEnv, type NetworkPolicyInput } from "./plan.ts";

export interface HostNetwork {
  spec: NetworkSpec;
  close(): Promise<void>;
}

/** Which parts of the host side to start now (`startHostSide`); the default is all of them. */
export interface StartParts {
  ports?: boolean;
  proxy?: boolean;
  bridge?: boolean;
}

/**
 * Start the host side for one run under `runDir` (created, mode 0700). Ports are bound first, so a taken
 * port fails (SiloError E_NETWORK) before anything else starts. Invalid allow/deny patterns are ignored
 * here (config validation reports them; `validatePattern`).
 */
export async function startHostNetwork(input: NetworkPolicyInput, runDir: string): Promise<HostNetwork> {
  const spec = planHostNetwork(input, runDir);
  return { spec, close: (await startHostSide(input, spec, runDir)).close };
}

/**
 * Start `parts` of the host side that `spec` (from planHostNetwork) describes. A run may start the proxy
 * only once its sandbox is launching: nothing inside can connect before its command runs, and the native
 * stage's relays wait for the proxy's socket to appear.
 */
export async function startHostSide(
  input: NetworkPolicyInput,
  spec: NetworkSpec,
  runDir: string,
  parts: StartParts = {},
): Promise<{ close(): Promise<void> }> {
  const want = { ports: true, proxy: true, bridge: true, ...parts };
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  chmodSync(runDir, 0o700);
  const started: Closable[] = [];
  const close = async () => {
    for (const c of started.splice(0).reverse()) await c.close().catch(() => undefined);
  };
  try {
    if (want.ports && spec.forwardSocket) started.push(await startPortForwards(input.ports, spec.forwardSocket));
    if (want.proxy && spec.mode === "proxy" && spec.proxySocket)
      started.push(
        await startEgressProxy({
          socketPath: spec.proxySocket,
          allow: input.allow.filter((p) => validatePattern(p) === null),
          deny: input.deny.filter((p) => validatePattern(p) === null),
          hostAccess: input.hostAccess,
          hostPorts: input.hostPorts,
          tool: input.tool,
          onDeny: input.onDeny,
          lookup: input.lookup,
        }),
      );
    // Without configured ports (missing or empty) the relay asks the bridge, which discovers them meanwhile.
    if (want.bridge && spec.hostSocket) started.push(await startHostAccessBridge({ socketPath: spec.hostSocket, ports: spec.hostPorts }));
  } catch (e) {
    await close();
    throw e;
  }
  return { close };
}
