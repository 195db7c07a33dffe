import type { SiloPlugin } from "./api.ts";
import go from "../../plugins/go/index.ts";
import node from "../../plugins/node/index.ts";
import python from "../../plugins/python/index.ts";
import rust from "../../plugins/rust/index.ts";

/** The built-in plugins: a few hundred bytes each, so they are imported with the run path, not loaded one by one. */
export const plugins: Record<string, SiloPlugin> = { python, node, rust, go };

export async function loadPlugin(name: string | undefined): Promise<SiloPlugin | undefined> {
  return name && Object.hasOwn(plugins, name) ? plugins[name] : undefined;
}
