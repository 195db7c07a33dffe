import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { discoverHostPorts, proxyEnv } from "../../../src/net/host.ts";
import { hostsEntries, HOST_INTERNAL_ADDR, needsRelays } from "../../../src/net/relay.ts";
import type { NetworkSpec } from "../../../src/runner/spec.ts";
import { tmp } from "../../helpers/silo.ts";

const none: NetworkSpec = { mode: "none", hostAccess: false, ports: [] };

describe("proxyEnv", () => {
  test("nothing without a proxy", () => {
    expect(proxyEnv(none)).toEqual({});
  });
  test("every spelling clients look at, and the JVM properties", () => {
    const env = proxyEnv({ ...none, mode: "proxy", proxySocket: "/x", proxyPort: 3128 });
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) expect(env[k]).toBe("http://127.0.0.1:3128");
    expect(env.NO_PROXY).toStartWith("localhost,127.0.0.1");
    expect(env.JAVA_TOOL_OPTIONS).toContain("-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128");
    expect(env.JAVA_TOOL_OPTIONS).toContain("-Dhttp.proxyPort=3128");
  });
  test("the port follows the spec", () => {
    expect(proxyEnv({ ...none, mode: "proxy", proxyPort: 9000 }).HTTPS_PROXY).toBe("http://127.0.0.1:9000");
  });
});

describe("needsRelays / hostsEntries", () => {
  test("no relays for a closed sandbox", () => {
    expect(needsRelays(none)).toBe(false);
    expect(hostsEntries(none)).toBe("");
  });
  test("relays for a proxy, hostAccess or forwarded ports", () => {
    expect(needsRelays({ ...none, mode: "proxy", proxySocket: "/p" })).toBe(true);
    expect(needsRelays({ ...none, hostAccess: true, hostSocket: "/h" })).toBe(true);
    expect(needsRelays({ ...none, ports: [{ host: 1, guest: 2 }], forwardSocket: "/f" })).toBe(true);
  });
  test("host.silo.internal maps to the relay address", () => {
    expect(hostsEntries({ ...none, hostAccess: true })).toBe(`${HOST_INTERNAL_ADDR}\thost.silo.internal\n`);
  });
});

describe("discoverHostPorts", () => {
  test("LISTEN sockets on 127.0.0.1, 0.0.0.0, ::1 and :: only", () => {
    const dir = tmp("silo-procnet-");
    const head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    writeFileSync(
      join(dir, "tcp"),
      head +
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n" + // 127.0.0.1:8080
        "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1\n" + // 0.0.0.0:22
        "   2: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1\n" + // 127.0.0.53:53
        "   3: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4 1\n" + // established
        "   4: 0A00000A:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1\n", // 10.0.0.10
    );
    writeFileSync(
      join(dir, "tcp6"),
      head +
        "   0: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 0 0 0 0 0 6 1\n" + // [::1]:5432
        "   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 7 1\n", // [::]:80
    );
    expect(discoverHostPorts(dir)).toEqual([22, 80, 5432, 8080]);
  });
  test("a missing /proc/net gives no ports", () => {
    expect(discoverHostPorts("/nonexistent-procnet")).toEqual([]);
  });
});
