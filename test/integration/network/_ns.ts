// Runs inside a network namespace a test made (`unshare --user --map-root-user --net`): brings loopback up,
// starts the sandbox relays for the NetworkSpec given as argv[2] (JSON), prints "ready", and keeps them
// running until stdin closes. Tests run commands inside with nsenter (_helpers.ts `inNamespace`).
import { startSandboxRelays } from "../../../src/net/relay.ts";
import type { NetworkSpec } from "../../../src/runner/spec.ts";

const up = Bun.spawnSync(["ip", "link", "set", "lo", "up"]);
if (up.exitCode !== 0) {
  console.error(`ip link set lo up failed: ${up.stderr}`);
  process.exit(2);
}
const spec = JSON.parse(process.argv[2] ?? "{}") as NetworkSpec;
const relays = await startSandboxRelays(spec);
console.log("ready");
for await (const _ of Bun.stdin.stream()) {
  // wait for EOF
}
relays.close();
process.exit(0);
