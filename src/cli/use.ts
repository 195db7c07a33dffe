import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

async function target(global: boolean | undefined) {
  const { homePaths } = await import("../core/paths.ts");
  const { findProjectConfig } = await import("../config/load.ts");
  const home = homePaths();
  if (global) return { home, file: home.globalConfig, project: false };
  const file = findProjectConfig(process.cwd());
  if (!file) throw new SiloError("E_CONFIG", "no silo.toml in this directory or above", "run `silo init` first, or use --global");
  return { home, file, project: true };
}

/** Pinning a version is not widening, but editing the file changes its hash: keep a trust the user had given. */
async function edit(global: boolean | undefined, tool: string, value: string | undefined) {
  const { home, file, project } = await target(global);
  const { readFileSync } = await import("node:fs");
  const { sha256 } = await import("../config/locate.ts");
  const { trustStateOf, trust } = await import("../config/trust.ts");
  // One read: the trust check, the edit and the new trust all concern these bytes and what silo wrote.
  const text = readFileSync(file, "utf8");
  const was = project && trustStateOf(home, file, sha256(text)) === "trusted";
  const { setTomlValue } = await import("../config/edit.ts");
  const { note, written } = await setTomlValue(file, ["tools"], tool, () => value, text);
  if (note) log.warn(note);
  if (was) trust(home, file, sha256(written));
  return file;
}

export const use = defineCommand({
  meta: { name: "use", description: "Pin a tool version in this project's silo.toml: `silo use python@3.11-slim` (--global for all projects)" },
  args: { tool: { type: "positional", required: true, description: "tool@version" }, global: { type: "boolean", description: "Pin in the global silo.toml" }, ...globalArgs },
  async run({ args }) {
    const { parseToolSpec } = await import("../app/install.ts");
    const { homePaths } = await import("../core/paths.ts");
    const { loadRegistry, requireTool, resolveVersion } = await import("../registry/index.ts");
    const { name, version } = parseToolSpec(args.tool);
    const def = requireTool(await loadRegistry(homePaths()), name);
    const v = resolveVersion(def, version);
    const file = await edit(args.global, name, v);
    log.success(`${name}@${v} pinned in ${file}`);
  },
});

export const unuse = defineCommand({
  meta: { name: "unuse", description: "Remove a tool's version pin from silo.toml (--global for the global file)" },
  args: { tool: { type: "positional", required: true, description: "Tool" }, global: { type: "boolean", description: "The global silo.toml" }, ...globalArgs },
  async run({ args }) {
    const file = await edit(args.global, args.tool, undefined);
    log.success(`${args.tool} unpinned in ${file}`);
  },
});
