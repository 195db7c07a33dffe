// Benchmark stand-in for the driver's stage, in a fresh `unshare --user --map-root-user --net`:
// loopback up, then the relays for the NetworkSpec in argv[2] (JSON, or "none"), then exit.
const up = Bun.spawnSync(["ip", "link", "set", "lo", "up"]);
if (up.exitCode !== 0) process.exit(2);
if (process.argv[2] !== "none") {
  const { startSandboxRelays } = await import("../../src/net/relay.ts");
  const r = await startSandboxRelays(JSON.parse(process.argv[2]!));
  r.close();
}
export {};
