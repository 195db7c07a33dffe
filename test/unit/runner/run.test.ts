import { expect, test } from "bun:test";
import { childPids, forwardSignals, processStartTime } from "../../../src/runner/run.ts";

test("childPids finds a process's children", async () => {
  const p = Bun.spawn(["sh", "-c", "sleep 5 & sleep 5 & wait"], { stdout: "ignore" });
  let kids: number[] = [];
  for (let i = 0; i < 100 && kids.length < 2; i++) {
    await Bun.sleep(10);
    kids = childPids(p.pid);
  }
  expect(kids.length).toBe(2);
  for (const k of kids) process.kill(k, "SIGKILL");
  p.kill("SIGKILL");
  await p.exited;
});

test("processStartTime is stable for a live process and null for a dead one", () => {
  expect(processStartTime(process.pid)).toBe(processStartTime(process.pid));
  expect(processStartTime(Bun.spawnSync(["true"]).pid)).toBeNull();
});

test("forwardSignals hands SIGINT/SIGTERM/SIGHUP on (the sandbox's own session gets nothing of silo's terminal), until stopped", () => {
  const got: string[] = [];
  const stop = forwardSignals((s) => got.push(s));
  process.emit("SIGINT" as never);
  process.emit("SIGTERM" as never);
  process.emit("SIGHUP" as never);
  stop();
  process.emit("SIGHUP" as never);
  expect(got).toEqual(["SIGINT", "SIGTERM", "SIGHUP"]);
});
