// Benchmark relay (its own process, in the host's namespace): 127.0.0.1:<any free port> → argv[2]; prints the port.
import { startSandboxRelays } from "../../src/net/relay.ts";

const r = await startSandboxRelays({ mode: "proxy", proxySocket: process.argv[2]!, proxyPort: 0, hostAccess: false, ports: [] });
console.log(r.proxyPort);
