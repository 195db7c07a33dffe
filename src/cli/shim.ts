import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

async function load() {
  const { homePaths } = await import("../core/paths.ts");
  const { readInstalled, writeInstalled } = await import("../config/installed.ts");
  const home = homePaths();
  const cfg = await readInstalled(home);
  return { home, cfg, save: () => writeInstalled(home, cfg) };
}

const need = (cfg: Awaited<ReturnType<typeof load>>["cfg"], tool: string) => {
  const t = cfg.tools[tool];
  if (!t) throw new SiloError("E_TOOL_NOT_INSTALLED", `tool \`${tool}\` is not installed`, `silo install ${tool}`);
  return t;
};

const add = defineCommand({
  meta: { name: "add", description: "Add shims to a tool: `silo shim add python ipython 'ipython:python -m IPython'`" },
  args: { tool: { type: "positional", required: true, description: "Installed tool" }, shims: { type: "positional", required: true, description: "name or name:command" }, ...globalArgs },
  async run({ args }) {
    const { home, cfg, save } = await load();
    const t = need(cfg, args.tool);
    const { shimsOf, syncShims } = await import("../app/shims.ts");
    const { parseShims } = await import("../config/resolve.ts");
    const wanted = (args._ as string[]).slice(1);
    const owners = shimsOf(cfg).map;
    for (const name of Object.keys(parseShims(wanted))) {
      if (!/^[A-Za-z0-9._+-]+$/.test(name)) throw new SiloError("E_USAGE", `\`${name}\` is not a valid shim name`);
      const o = owners[name];
      if (o && o.tool !== args.tool) throw new SiloError("E_USAGE", `shim \`${name}\` already belongs to ${o.tool}`, `silo shim remove ${o.tool} ${name} first`);
    }
    t.extraShims = [...(t.extraShims ?? []).filter((s) => !wanted.some((w) => w.split(":")[0] === s.split(":")[0])), ...wanted];
    await save();
    const r = await syncShims(home, cfg);
    log.success(`${args.tool}: added ${wanted.map((w) => w.split(":")[0]).join(", ")}`);
    for (const c of r.conflicts) log.warn(c);
  },
});

const remove = defineCommand({
  meta: { name: "remove", description: "Remove shims from a tool" },
  args: { tool: { type: "positional", required: true, description: "Installed tool" }, shims: { type: "positional", required: true, description: "Shim names" }, ...globalArgs },
  async run({ args }) {
    const { home, cfg, save } = await load();
    const t = need(cfg, args.tool);
    const names = new Set((args._ as string[]).slice(1));
    const keep = (s: string) => !names.has(s.split(":")[0]!);
    const before = t.definition.shims.length + (t.extraShims?.length ?? 0);
    t.definition = { ...t.definition, shims: t.definition.shims.filter(keep) };
    t.extraShims = (t.extraShims ?? []).filter(keep);
    if (before === t.definition.shims.length + t.extraShims.length) throw new SiloError("E_USAGE", `${args.tool} has no shim named ${[...names].join(", ")}`);
    await save();
    const { syncShims } = await import("../app/shims.ts");
    await syncShims(home, cfg);
    log.success(`${args.tool}: removed ${[...names].join(", ")}`);
  },
});

const listCmd = defineCommand({
  meta: { name: "list", description: "List shims: name, tool, command inside the sandbox" },
  args: { ...globalArgs },
  async run() {
    const { cfg } = await load();
    const { shimsOf } = await import("../app/shims.ts");
    const { map, conflicts } = shimsOf(cfg);
    for (const [name, s] of Object.entries(map).sort()) process.stdout.write(`${name.padEnd(14)} ${s.tool.padEnd(12)} ${s.command.join(" ")}\n`);
    for (const c of conflicts) log.warn(c);
  },
});

export const shim = defineCommand({
  meta: { name: "shim", description: "Manage the shims in SILO_HOME/bin (add, remove, list)" },
  subCommands: { add, remove, list: listCmd },
});
