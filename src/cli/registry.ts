import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

const update = defineCommand({
  meta: {
    name: "update",
    description: "Fetch the tool registry with giget from [registry] source or SILO_REGISTRY (gh:org/repo/registry, git:/path, https://...tar.gz)",
  },
  args: { source: { type: "positional", required: false, description: "giget source (default: configured)" }, ...globalArgs },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const { loadTomlData } = await import("../config/load.ts");
    const home = homePaths();
    const g = (await loadTomlData(home.globalConfig)) as { registry?: { source?: string } };
    const source = args.source ?? process.env.SILO_REGISTRY ?? g.registry?.source;
    if (!source) throw new SiloError("E_REGISTRY", "no registry source configured", 'set [registry] source = "gh:org/repo/registry" in the global silo.toml, or SILO_REGISTRY');
    const { updateRegistry } = await import("../registry/update.ts");
    const r = await updateRegistry(home, source);
    for (const x of r.rejected) log.warn(`rejected ${x.file}: ${x.reason}`);
    log.success(`registry from ${r.source}: ${r.accepted.length} tools (${r.accepted.join(", ")})`);
  },
});

export const registry = defineCommand({
  meta: { name: "registry", description: "The tool registry: update it from its git source" },
  subCommands: { update },
});
