import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { classifyExecFailure } from "../../../src/runner/drivers/bwrap/lookup.ts";
import type { RunSpec } from "../../../src/runner/spec.ts";
import { tmp } from "../../helpers/silo.ts";

const layer = tmp();
mkdirSync(join(layer, "usr/bin"), { recursive: true });
symlinkSync("usr/bin", join(layer, "bin"));
writeFileSync(join(layer, "usr/bin/python3.11"), "#!");
chmodSync(join(layer, "usr/bin/python3.11"), 0o755);
symlinkSync("python3.11", join(layer, "usr/bin/python3"));
symlinkSync("/usr/bin/python3", join(layer, "usr/bin/py-abs"));
writeFileSync(join(layer, "usr/bin/data.txt"), "not a program");
chmodSync(join(layer, "usr/bin/data.txt"), 0o644);
const ws = tmp();
writeFileSync(join(ws, "run.sh"), "#!/bin/sh\n");
chmodSync(join(ws, "run.sh"), 0o644);

const spec = (argv: string[]): RunSpec => ({
  tool: "t", layers: [layer], workspace: ws, cwd: "/workspace", argv, env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
  mounts: [], readonlyPaths: [], maskedPaths: [], tty: false, hostname: "t", resources: {},
  network: { mode: "none", hostAccess: false, ports: [] }, self: [],
});

test("a command that is nowhere on PATH or at its path is 127", () => {
  expect(classifyExecFailure(spec(["nosuchtool"]))).toBe(127);
  expect(classifyExecFailure(spec(["/opt/missing"]))).toBe(127);
});
test("a file that is there but not executable is 126 (in the layers or in the workspace)", () => {
  expect(classifyExecFailure(spec(["data.txt"]))).toBe(126);
  expect(classifyExecFailure(spec(["./run.sh"]))).toBe(126);
});
test("an executable that exists (through relative and absolute symlinks) means the sandbox failed: 125", () => {
  expect(classifyExecFailure(spec(["python3"]))).toBe(125);
  expect(classifyExecFailure(spec(["/bin/python3"]))).toBe(125);
  expect(classifyExecFailure(spec(["py-abs"]))).toBe(125);
});
