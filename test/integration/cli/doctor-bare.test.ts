// Invariant 2 (THREATS.md): `silo doctor` recommends safe.bareRepository = explicit, which makes host git
// refuse a bare repository a sandbox left in a project (silo also quarantines those it finds at exit).
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, runSilo, tmp } from "../../helpers/silo.ts";

test("silo doctor names safe.bareRepository until it is explicit", async () => {
  const home = makeHome();
  const userHome = tmp("silo-doctor-home-");
  const env = { HOME: userHome, GIT_CONFIG_NOSYSTEM: "1" };
  const unset = await runSilo(["doctor"], { home, env });
  expect(unset.stdout).toContain("safe.bareRepository is unset (all)");
  expect(unset.stdout).toContain("fix: git config --global safe.bareRepository explicit");
  writeFileSync(join(userHome, ".gitconfig"), "[safe]\n\tbareRepository = explicit\n");
  const set = await runSilo(["doctor"], { home, env });
  expect(set.stdout).toContain("git        safe.bareRepository = explicit");
});
