// Shared set-up of the build tests: one SILO_HOME with python and node installed from the fixture registry,
// and small helpers to run silo there and to hash files on the host and inside the sandbox.
import { expect } from "bun:test";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { makeHome, makeProject, runSilo, type SiloResult } from "../../helpers/silo.ts";

export const sha = (data: string | Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");
export const shaFile = (p: string) => sha(readFileSync(p));

export async function installedHome(...tools: string[]): Promise<string> {
  const home = makeHome();
  for (const t of tools) {
    const r = await runSilo(["install", t], { home });
    if (r.exitCode !== 0) throw new Error(`silo install ${t} failed: ${r.stderr}`);
  }
  return home;
}

export function siloIn(home: string) {
  return async (cwd: string, ...args: string[]): Promise<SiloResult> => runSilo(args, { home, cwd });
}

/** Expect success, showing silo's stderr when it is not. */
export function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
  return r;
}

/** The current layer directory of a scope (<project>/.silo/<tool> or SILO_HOME/builds/<tool>). */
export function layerRoot(base: string): string {
  return join(base, readlinkSync(join(base, "current")), "root");
}

export function generations(base: string): string[] {
  return readdirSync(base).filter((n) => n.startsWith("g-"));
}

/** Every regular file under `dir` with its size (relative paths). */
export function filesUnder(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (rel: string) => {
    const p = join(dir, rel);
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(rel ? `${rel}/${n}` : n);
    else if (st.isFile()) out[rel] = st.size;
  };
  walk("");
  return out;
}

const scratchDirs: string[] = [];

/** Remember a temporary directory (a SILO_HOME holds hundreds of MB) for `removeScratch` in afterAll. */
export function scratch<T extends string>(dir: T): T {
  scratchDirs.push(dir);
  return dir;
}

/** Delete every remembered directory (read-only directories of a rootfs included). */
export function removeScratch() {
  for (const d of scratchDirs.splice(0)) {
    Bun.spawnSync(["chmod", "-R", "u+rwX", d]);
    Bun.spawnSync(["rm", "-rf", d]);
  }
}

export const scratchProject = (...args: Parameters<typeof makeProject>) => scratch(makeProject(...args));
export const scratchHome = async (...tools: string[]) => scratch(await installedHome(...tools));
