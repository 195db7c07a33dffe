import { existsSync } from "node:fs";
import { writeFileAtomic } from "../core/fs.ts";
import type { HomePaths } from "../core/paths.ts";
import { parseTomlFile } from "./load.ts";
import type { InstalledConfig } from "./schema.ts";

/** SILO_HOME/config.toml: the installed tools. silo writes it; a user may read it. */
export async function readInstalled(home: HomePaths): Promise<InstalledConfig> {
  if (!existsSync(home.installed)) return { tools: {} };
  const data = (await parseTomlFile(home.installed)) as Partial<InstalledConfig>;
  return { tools: data.tools ?? {} };
}

export async function writeInstalled(home: HomePaths, cfg: InstalledConfig): Promise<void> {
  const { stringify } = await import("smol-toml");
  const header = "# Installed tools. Written by silo (install, uninstall, shim add/remove); edit with care.\n";
  writeFileAtomic(home.installed, header + stringify(cfg) + "\n");
}

