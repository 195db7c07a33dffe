// The egress proxy in a process of its own (proxy-dies tests). argv[2]: { socketPath, allow, hosts }.
import { startEgressProxy } from "../../../src/net/proxy.ts";

const o = JSON.parse(process.argv[2]!) as { socketPath: string; allow: string[]; hosts: Record<string, string[]> };
await startEgressProxy({
  socketPath: o.socketPath,
  allow: o.allow,
  deny: [],
  hostAccess: false,
  tool: "test",
  lookup: async (h) => o.hosts[h] ?? [],
});
console.log("ready");
