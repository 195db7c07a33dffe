import { describe, expect, test } from "bun:test";
import { planHostNetwork, proxyEnv } from "../../../src/net/plan.ts";

const input = (over: Partial<Parameters<typeof planHostNetwork>[0]> = {}) => ({ allow: [], deny: [], hostAccess: false, ports: [], tool: "t", ...over });

describe("planHostNetwork", () => {
  test("no allowlist, no hostAccess, no ports: no network, no sockets, no proxy variables", () => {
    const s = planHostNetwork(input(), "/r");
    expect(s).toEqual({ mode: "none", hostAccess: false, ports: [], sshAgent: undefined });
    expect(proxyEnv(s)).toEqual({});
  });
  test("an allowlist: the proxy's socket in the run dir, port 3128 unless given, announced in the environment", () => {
    const s = planHostNetwork(input({ allow: ["pypi.org"] }), "/r");
    expect(s).toMatchObject({ mode: "proxy", proxySocket: "/r/proxy.sock", proxyPort: 3128 });
    expect(proxyEnv(s).HTTPS_PROXY).toBe("http://127.0.0.1:3128");
    expect(planHostNetwork(input({ allow: ["x.org"], proxyPort: 8080 }), "/r").proxyPort).toBe(8080);
  });
  test("hostAccess: a proxy (for host.silo.internal) and the bridge's socket; listed ports kept, none means discover", () => {
    expect(planHostNetwork(input({ hostAccess: true, hostPorts: [5432] }), "/r")).toMatchObject({ mode: "proxy", hostSocket: "/r/host.sock", hostPorts: [5432] });
    expect(planHostNetwork(input({ hostAccess: true }), "/r").hostPorts).toBeUndefined();
  });
  test("port forwards: the forward socket", () => {
    expect(planHostNetwork(input({ ports: [{ host: 8000, guest: 80 }] }), "/r")).toMatchObject({ mode: "none", forwardSocket: "/r/forward.sock" });
  });
  test("a run dir too long for Unix socket names is an error that says what to do", () => {
    expect(() => planHostNetwork(input({ allow: ["x.org"] }), `/${"d".repeat(100)}`)).toThrow(/too long.*/);
  });
});
