import type { SiloPlugin } from "./api.ts";

/** Static map: every specifier is a literal so `bun build --compile` includes the plugin. */
export const pluginLoaders: Record<string, () => Promise<SiloPlugin>> = {
  python: () => import("../../plugins/python/index.ts").then((m) => m.default),
  node: () => import("../../plugins/node/index.ts").then((m) => m.default),
  rust: () => import("../../plugins/rust/index.ts").then((m) => m.default),
  go: () => import("../../plugins/go/index.ts").then((m) => m.default),
};

export async function loadPlugin(name: string | undefined): Promise<SiloPlugin | undefined> {
  return name && pluginLoaders[name] ? pluginLoaders[name]() : undefined;
}
