import { defineCommand } from "citty";
import { globalArgs, jsonArg } from "./_args.ts";

export const list = defineCommand({
  meta: { name: "list", description: "List installed tools (version, digest, shims), or the registry's with --available" },
  args: { available: { type: "boolean", alias: "a", description: "List the tools the registry offers, with versions and source" }, ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const home = homePaths();
    const out = (s: string) => process.stdout.write(s + "\n");
    if (args.available) {
      const { loadRegistry } = await import("../registry/index.ts");
      const reg = await loadRegistry(home);
      const rows = [...reg.tools.values()].sort((a, b) => a.name.localeCompare(b.name));
      if (args.json) return out(JSON.stringify({ source: reg.source, tools: rows, rejected: reg.rejected }, null, 2));
      out(`registry: ${reg.source}`);
      for (const t of rows) out(`  ${t.name.padEnd(12)} ${t.versions.available.map((v) => (v === t.versions.default ? `${v}*` : v)).join(", ").padEnd(40)} ${t.description}`);
      for (const r of reg.rejected) out(`  rejected ${r.file}: ${r.reason}`);
      return;
    }
    const { readInstalled } = await import("../config/installed.ts");
    const { shimsOf } = await import("../app/shims.ts");
    const cfg = await readInstalled(home);
    if (args.json) return out(JSON.stringify(cfg.tools, null, 2));
    const names = Object.keys(cfg.tools).sort();
    if (names.length === 0) return out("no tools installed (silo list --available; silo install <tool>)");
    const { map } = shimsOf(cfg);
    for (const n of names) {
      const t = cfg.tools[n]!;
      const shims = Object.entries(map).filter(([, v]) => v.tool === n).map(([k]) => k);
      out(`${n.padEnd(12)} ${t.version.padEnd(12)} ${t.digest.slice(0, 19)}  ${t.image}  shims: ${shims.join(" ")}`);
    }
  },
});
