import { defineCommand } from "citty";
import { globalArgs, jsonArg } from "./_args.ts";

export const status = defineCommand({
  meta: { name: "status", description: "List running sandboxes (tool, project, pid, started); stale entries are reaped" },
  args: { ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const { listSandboxes } = await import("../runner/state.ts");
    const rows = await listSandboxes(homePaths().home);
    const out = (s: string) => process.stdout.write(s + "\n");
    if (args.json) return out(JSON.stringify(rows, null, 2));
    if (rows.length === 0) return out("no running sandboxes");
    out(`${"TOOL".padEnd(12)} ${"PID".padEnd(8)} ${"STARTED".padEnd(25)} PROJECT`);
    for (const r of rows) out(`${r.tool.padEnd(12)} ${String(r.pid).padEnd(8)} ${new Date(r.started).toISOString().padEnd(25)} ${r.project}`);
  },
});
