// Shared set-up of the isolation suite: a SILO_HOME with a tool installed from the fixture registry, a fake
// home directory full of secrets to look for, and small helpers to run the built silo. Runs the same as root
// and as an unprivileged user (CI runs the suite twice): everything lives under the system temp dir.
import { expect } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeTree } from "../../../src/core/fs.ts";
import { makeHome, runSilo, tmp, type SiloResult } from "../../helpers/silo.ts";


/** Directories to remove when a test file is done (a home with an image in it is half a gigabyte). */
const created: string[] = [];
/** Each test file: `afterAll(cleanUp)`. */
export function cleanUp() {
  for (const d of created.splice(0)) removeTree(d);
}

/** A SILO_HOME with these tools installed (`python@3.11-slim`, ...), removed after the file's tests. */
export async function installedHome(...tools: string[]): Promise<string> {
  const home = makeHome();
  created.push(home);
  for (const t of tools) {
    const r = await runSilo(["install", t], { home });
    if (r.exitCode !== 0) throw new Error(`silo install ${t} failed (${r.exitCode}): ${r.stderr}`);
  }
  return home;
}

/** Expect success, showing silo's stderr when it is not. */
export function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
  return r;
}

/** The secrets an attacker looks for first, in a fake home directory (silo runs with HOME pointing at it). */
export const SECRET_PATHS = [".ssh/id_ed25519", ".aws/credentials", ".gnupg/private-keys-v1.d/key", ".config/gh/hosts.yml", ".kube/config", "canary.txt"];

export function makeFakeHome(): string {
  const home = tmp("silo-fakehome-");
  created.push(home);
  for (const p of SECRET_PATHS) {
    mkdirSync(join(home, p, ".."), { recursive: true });
    writeFileSync(join(home, p), `secret ${p}\n`);
  }
  return home;
}

/** Python that prints a JSON value: `py("print(json.dumps(...))")` with json, os, sys imported. */
export const py = (code: string) => `import json, os, sys\n${code}`;

/** Run python in the sandbox and parse the JSON it printed. */
export async function pyJson<T = unknown>(home: string, cwd: string, code: string, env: Record<string, string> = {}): Promise<T> {
  const r = ok(await runSilo(["run", "python", "-c", py(code)], { home, cwd, env }));
  return JSON.parse(r.stdout) as T;
}
