// `silo __register` starts once a handed-over sandbox has run 100 ms; a command that ends meanwhile takes
// its run dir with it. Registering then finds no handoff.json: nothing to do, and nothing on the user's
// stderr (an attacker pass saw "internal error: ENOENT ... handoff.json" after a command had finished).
import { expect, test } from "bun:test";
import { join } from "node:path";
import { runSilo, tmp } from "../../helpers/silo.ts";

test("__register of a run whose directory is gone exits 0 without a word; other verbs still fail", async () => {
  const gone = join(tmp(), "run", "1-x", "handoff.json");
  const r = await runSilo(["__register", gone], { home: tmp() });
  expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  const after = await runSilo(["__after", gone, "0", "0"], { home: tmp() });
  expect(after.exitCode).toBe(125);
});
