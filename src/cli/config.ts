import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs, jsonArg } from "./_args.ts";

const show = defineCommand({
  meta: { name: "show", description: "Print the merged configuration for this project, and where each value came from" },
  args: { tool: { type: "string", description: "Include this tool's registry defaults", valueHint: "name" }, ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const { loadProject, provenance, warnUntrusted } = await import("../config/resolve.ts");
    const home = homePaths();
    const p = await loadProject(process.cwd(), home);
    warnUntrusted(p);
    let def;
    if (args.tool) {
      const { loadRegistry, requireTool } = await import("../registry/index.ts");
      const { readInstalled } = await import("../config/installed.ts");
      def = (await readInstalled(home)).tools[args.tool]?.definition ?? requireTool(await loadRegistry(home), args.tool);
    }
    const rows = provenance(p, def ? { def } : undefined);
    const out = (s: string) => process.stdout.write(s + "\n");
    if (args.json) return out(JSON.stringify({ project: p.root, file: p.file, trust: p.trust, ignored: p.ignored, values: rows }, null, 2));
    out(`# project: ${p.root}`);
    out(`# project config: ${p.file ?? "(none)"}${p.file ? ` [${p.trust}]` : ""}`);
    out(`# global config: ${home.globalConfig}`);
    if (rows.length === 0) out("# (no settings: registry defaults apply)");
    const w = Math.max(...rows.map((r) => r.key.length), 10);
    for (const r of rows) out(`${r.key.padEnd(w)} = ${JSON.stringify(r.value)}   # ${r.from}`);
  },
});

const allow = defineCommand({
  meta: { name: "allow", description: "Allow a host for a tool: `silo config network allow node example.com` (project silo.toml, or --global)" },
  args: {
    tool: { type: "positional", required: true, description: "Tool" },
    host: { type: "positional", required: true, description: "Host pattern: api.example.com, *.example.com" },
    global: { type: "boolean", description: "Write to the global silo.toml (all projects)" },
    ...globalArgs,
  },
  async run({ args }) {
    const { validatePattern } = await import("../net/allowlist.ts");
    const problem = validatePattern(args.host);
    if (problem) throw new SiloError("E_USAGE", problem);
    const { homePaths } = await import("../core/paths.ts");
    const { findProjectConfig, sha256 } = await import("../config/locate.ts");
    const { trustStateOf, trust } = await import("../config/trust.ts");
    const { setTomlValue } = await import("../config/edit.ts");
    const { existsSync, readFileSync } = await import("node:fs");
    const home = homePaths();
    const project = args.global ? null : findProjectConfig(process.cwd(), home);
    const file = project ?? home.globalConfig;
    // One read: the trust check and the edit see the same bytes; the new trust is for what silo wrote.
    const text = existsSync(file) ? readFileSync(file, "utf8") : "";
    const wasTrusted = project ? trustStateOf(home, project, sha256(text)) === "trusted" : true;
    const { note, written } = await setTomlValue(
      file,
      ["overrides", args.tool, "network", "proxy"],
      "allow",
      (old) => [...new Set([...((old as string[] | undefined) ?? []), args.host])],
      text,
    );
    if (note) log.warn(note);
    // The user's own command changed the file: keep a trust they had given; never grant one they had not.
    if (project && wasTrusted) trust(home, project, sha256(written));
    log.success(`${args.tool} may now reach ${args.host} (${file})`);
    if (project && !wasTrusted) log.warn(`${project} is not trusted; run \`silo trust\` for the allowlist to apply`);
  },
});

export const config = defineCommand({
  meta: { name: "config", description: "Show the merged configuration; edit the network allowlist" },
  subCommands: {
    show,
    network: defineCommand({ meta: { name: "network", description: "Network policy settings" }, subCommands: { allow } }),
  },
});
