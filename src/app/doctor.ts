import { accessSync, constants, existsSync, realpathSync } from "node:fs";
import { delimiter, join } from "node:path";
import { homePaths } from "../core/paths.ts";
import { driverLoaders, driverNames } from "../runner/driver.ts";
import { readShimIndex } from "./shims.ts";
import { autoDriver } from "./driver-select.ts";

/** Print one line per check; returns false when the default driver cannot work. */
export async function runDoctor(): Promise<boolean> {
  const out = (s: string) => process.stdout.write(s + "\n");
  const home = homePaths();
  const chosen = process.env.SILO_DRIVER || autoDriver();
  let ok = true;
  out(`SILO_HOME  ${home.home}${existsSync(home.home) ? "" : " (not created yet)"}`);
  for (const name of driverNames) {
    const d = await driverLoaders[name]();
    const p = await d.probe();
    const mark = p.ok ? "ok  " : name === chosen ? "FAIL" : "n/a ";
    out(`driver ${name.padEnd(6)} ${mark} ${p.ok ? (p.detail ?? "") : `${p.reason}\n             fix: ${p.fix}`}${name === chosen ? "  (selected)" : ""}`);
    if (name === chosen && !p.ok) ok = false;
  }
  const path = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  const binReal = existsSync(home.bin) ? realpathSync(home.bin) : home.bin;
  const binAt = path.findIndex((p) => (existsSync(p) ? realpathSync(p) : p) === binReal);
  if (binAt < 0) out(`shims      ${home.bin} is not on PATH: add eval "$(silo shellenv)" to your shell rc`);
  else out(`shims      ${home.bin} is on PATH (position ${binAt + 1})`);
  // Shadowing only matters once the shim directory is on PATH at all.
  for (const name of binAt < 0 ? [] : Object.keys(readShimIndex(home)).sort()) {
    const shadow = path.slice(0, binAt).map((d) => join(d, name)).find(isExecutable);
    if (shadow) out(`  warn: shim \`${name}\` is shadowed by ${shadow}, which comes earlier on PATH`);
  }
  const bare = bareRepositoryLine();
  if (bare) out(bare);
  for (const line of await (await import("./doctor-ca.ts")).caCheckLines(home)) out(line);
  return ok;
}

/**
 * Host git takes any directory holding HEAD, objects/ and refs/ for a repository and runs what its config
 * names; silo quarantines those a sandbox leaves (app/git-apply.ts), and `safe.bareRepository = explicit`
 * makes git refuse them outright. A recommendation only: it also stops `cd repo.git && git log`.
 */
function bareRepositoryLine(): string | null {
  const git = (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, "git")).find(isExecutable);
  if (!git) return null;
  const r = Bun.spawnSync([git, "config", "--get", "safe.bareRepository"], { cwd: "/", stdout: "pipe", stderr: "ignore" });
  const value = r.stdout.toString().trim();
  if (value === "explicit") return "git        safe.bareRepository = explicit";
  return `git        safe.bareRepository is ${value ? `\`${value}\`` : "unset (all)"}: host git runs the config of a bare repository left anywhere in a project\n             fix: git config --global safe.bareRepository explicit`;
}

export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
