import { defineCommand } from "citty";
import { globalArgs, jsonArg } from "./_args.ts";

export const status = defineCommand({
  meta: { name: "status", description: "List running sandboxes (tool, project, pid, started); stale entries are reaped" },
  args: { ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const { listSandboxes } = await import("../runner/state.ts");
    const rows = await listSandboxes(homePaths());
    const out = (s: string) => process.stdout.write(s + "\n");
    if (args.json) return out(JSON.stringify(rows, null, 2));
    if (rows.length === 0) return out("no running sandboxes");
    out(`${"TOOL".padEnd(12)} ${"PID".padEnd(8)} ${"STARTED".padEnd(25)} PROJECT`);
    for (const r of rows as { tool: string; pid: number; started: string; project: string }[])
      out(`${r.tool.padEnd(12)} ${String(r.pid).padEnd(8)} ${String(r.started).padEnd(25)} ${r.project}`);
  },
});
