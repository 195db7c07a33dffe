import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

export const install = defineCommand({
  meta: {
    name: "install",
    description: "Install a tool: pull its image, pin the digest, create its shims in SILO_HOME/bin",
  },
  args: {
    tool: { type: "positional", description: "Tool name, optionally with @version", required: true },
    image: { type: "string", description: "Install a custom tool from this image", valueHint: "ref" },
    shim: { type: "string", description: "Shims for a custom tool, comma-separated; name or name:command", valueHint: "a,b:c" },
    cpus: { type: "string", description: "CPU limit", valueHint: "n" },
    memory: { type: "string", description: "Memory limit", valueHint: "2g" },
    platform: { type: "string", description: "Image platform (default: this machine's)", valueHint: "os/arch" },
    ...globalArgs,
  },
  async run({ args }) {
    const { installTool } = await import("../app/install.ts");
    await (await import("../app/first-run.ts")).requireWorkingSandbox();
    const shims = args.shim ? args.shim.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
    const cpus = args.cpus === undefined ? undefined : Number(args.cpus);
    if (cpus !== undefined && !(cpus > 0)) throw new SiloError("E_USAGE", `--cpus must be a positive number, got \`${args.cpus}\``);
    const t = await installTool({ spec: args.tool, image: args.image, shims, cpus, memory: args.memory, quiet: args.quiet, prompt: true, platform: args.platform });
    log.success(`installed ${t.definition.name}@${t.version} (${t.digest.slice(0, 19)})`);
    log.hint("make sure SILO_HOME/bin is on your PATH: eval \"$(silo shellenv)\"");
  },
});

export const uninstall = defineCommand({
  meta: { name: "uninstall", description: "Remove a tool, its shims, global build layers and caches, and its image when nothing else uses it" },
  args: { tool: { type: "positional", description: "Tool name", required: true }, "keep-image": { type: "boolean", description: "Keep the image (rootfs and blobs)" }, ...globalArgs },
  async run({ args }) {
    const { uninstallTool } = await import("../app/install.ts");
    await uninstallTool(args.tool, undefined, { keepImage: args["keep-image"] });
    log.success(`uninstalled ${args.tool}`);
  },
});

const pullDef = (name: string) =>
  defineCommand({
    meta: { name, description: "Pull the images of installed tools again (all, or the ones named) and re-pin their digests" },
    args: { tools: { type: "positional", description: "Tools (default: all installed)", required: false }, ...globalArgs },
    async run({ args }) {
      const { readInstalled } = await import("../config/installed.ts");
      const { homePaths } = await import("../core/paths.ts");
      const { installTool } = await import("../app/install.ts");
      const installed = await readInstalled(homePaths());
      const names = (args._ as string[]).length ? (args._ as string[]) : Object.keys(installed.tools);
      if (names.length === 0) log.info("no tools installed");
      for (const n of names) {
        const t = installed.tools[n];
        if (!t) throw new SiloError("E_TOOL_NOT_INSTALLED", `tool \`${n}\` is not installed`, `silo install ${n}`);
        const now = await installTool({ spec: `${n}@${t.version}`, quiet: args.quiet });
        log.success(`${n}@${now.version} ${now.digest === t.digest ? "up to date" : `updated ${t.digest.slice(7, 19)} → ${now.digest.slice(7, 19)}`}`);
      }
    },
  });
export const pull = pullDef("pull");
export const sync = pullDef("sync");
