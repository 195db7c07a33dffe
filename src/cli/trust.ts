import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

async function projectFile(): Promise<string> {
  const { findProjectConfig } = await import("../config/load.ts");
  const file = findProjectConfig(process.cwd());
  if (!file) throw new SiloError("E_CONFIG", "no silo.toml in this directory or above", "`silo init` creates one");
  return file;
}

export const trust = defineCommand({
  meta: {
    name: "trust",
    description: "Trust this project's silo.toml as it is now, so its settings that widen access take effect",
  },
  args: { ...globalArgs },
  async run() {
    const file = await projectFile();
    const { homePaths } = await import("../core/paths.ts");
    const { readProjectConfig } = await import("../config/locate.ts");
    const { parseTomlBytes, validateOrThrow } = await import("../config/load.ts");
    const { siloConfigSchema } = await import("../config/schema.ts");
    const { stripWidening, trust: doTrust } = await import("../config/trust.ts");
    const home = homePaths();
    // One read: the bytes validated and summarised here are the bytes whose hash is trusted.
    const read = readProjectConfig(file, home);
    if (!read) throw new SiloError("E_CONFIG", `${file} cannot be trusted as it is (see the warning above)`);
    const { data, text } = await parseTomlBytes(file, read.bytes);
    validateOrThrow(file, data, siloConfigSchema, text);
    const { ignored } = stripWidening(data);
    const hash = doTrust(home, file, read.hash);
    log.success(`trusted ${file} (sha256 ${hash.slice(0, 12)})${ignored.length ? `; now in effect: ${ignored.join(", ")}` : ""}`);
    // Build layers in the project's .silo/ as they are now (one that came with the repository is ignored until then).
    const { trustProjectLayers } = await import("../cache/layer-index.ts");
    const { dirname } = await import("node:path");
    const layers = trustProjectLayers(homePaths(), (await import("node:fs")).realpathSync(dirname(file)));
    if (layers.length) log.success(`trusted the build layers of ${layers.join(", ")} in ${dirname(file)}/.silo`);
  },
});

export const untrust = defineCommand({
  meta: { name: "untrust", description: "Forget the trust of this project's silo.toml (its widening settings are ignored again)" },
  args: { ...globalArgs },
  async run() {
    const file = await projectFile();
    const { homePaths } = await import("../core/paths.ts");
    const { untrust: doUntrust } = await import("../config/trust.ts");
    log.success(doUntrust(homePaths(), file) ? `untrusted ${file}` : `${file} was not trusted`);
  },
});
