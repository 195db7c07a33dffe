import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { listSandboxes, registerSandbox, stateDbPath } from "../../../src/runner/state.ts";
import { tmp } from "../../helpers/silo.ts";

const entry = (id: string, pid: number) => ({ id, tool: "python", project: "/p", pid, driver: "bwrap", started: Date.now() });

test("a registered sandbox is listed until it removes itself", async () => {
  const home = tmp();
  const remove = await registerSandbox(home, entry("a", process.pid));
  expect((await listSandboxes(home)).map((e) => e.id)).toEqual(["a"]);
  remove();
  expect(await listSandboxes(home)).toEqual([]);
});

test("entries of dead or reused pids are reaped", async () => {
  const home = tmp();
  const dead = Bun.spawnSync(["true"]).pid;
  await registerSandbox(home, entry("dead", dead));
  await registerSandbox(home, entry("live", process.pid));
  await registerSandbox(home, entry("reused", process.pid));
  // Same pid, different start time: the process that registered is gone and another one took its pid.
  const db = new Database(stateDbPath(home));
  db.query("UPDATE sandboxes SET pid_start = pid_start - 1 WHERE id = 'reused'").run();
  db.close();
  expect((await listSandboxes(home)).map((e) => e.id)).toEqual(["live"]);
  const after = new Database(stateDbPath(home));
  expect(after.query("SELECT id FROM sandboxes ORDER BY id").all()).toEqual([{ id: "live" }]);
  after.close();
});
