import { defineCommand } from "citty";
import { log } from "../core/log.ts";
import { parsePort } from "./_argv.ts";
import { globalArgs } from "./_args.ts";

const many = (v: unknown): string[] => (v === undefined ? [] : [v].flat().flatMap((s) => String(s).split(",")).map((s) => s.trim()).filter(Boolean));

export const init = defineCommand({
  meta: {
    name: "init",
    description: "Create silo.toml: detect the project's tools, ask about network, ports, passEnv, passFiles, excludes",
  },
  args: {
    tool: { type: "string", description: "Tools to use (comma-separated; default: detected)", valueHint: "python,node" },
    port: { type: "string", description: "Forward a port for the first tool: host[:guest] (comma-separated)", valueHint: "3000" },
    "pass-env": { type: "string", description: "Host variables to pass (comma-separated)", valueHint: "NAME,..." },
    "pass-file": { type: "string", description: "Files to pass read-only (comma-separated)", valueHint: "~/.npmrc" },
    exclude: { type: "string", description: "Project paths to hide (comma-separated)", valueHint: ".env,secrets" },
    allow: { type: "string", description: "Extra hosts the first tool may reach (comma-separated)", valueHint: "api.example.com" },
    interactive: { type: "boolean", default: true, description: "Ask on a terminal (--no-interactive: flags and defaults only)" },
    force: { type: "boolean", description: "Replace an existing silo.toml" },
    ...globalArgs,
  },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const { loadRegistry } = await import("../registry/index.ts");
    const { readInstalled } = await import("../config/installed.ts");
    const { detectTools, renderSiloToml, writeProject } = await import("../app/init.ts");
    const home = homePaths();
    const reg = await loadRegistry(home);
    const cwd = process.cwd();
    const detected = detectTools(cwd, reg.tools.values());
    let tools = many(args.tool).length ? many(args.tool) : detected;
    const answers = {
      ports: [] as { tool: string; host: number; guest: number }[],
      passEnv: many(args["pass-env"]),
      passFiles: many(args["pass-file"]),
      exclude: many(args.exclude).length ? many(args.exclude) : [".env", ".env.local"],
      allow: [] as { tool: string; host: string }[],
    };
    const ask = args.interactive && process.stdin.isTTY && process.stderr.isTTY;
    if (ask) {
      const { consola } = await import("consola");
      const opt = { cancel: "reject" } as const;
      tools = (await consola.prompt("Tools for this project", { type: "multiselect", options: [...reg.tools.keys()], initial: tools, required: false, ...opt })) as unknown as string[];
      const text = async (msg: string, initial: string) => many(await consola.prompt(msg, { type: "text", default: initial, placeholder: initial, ...opt }));
      answers.exclude = await text("Paths to hide from the sandbox (comma-separated)", answers.exclude.join(","));
      answers.passEnv = await text("Host environment variables to pass in (comma-separated, empty for none)", answers.passEnv.join(","));
      answers.passFiles = await text("Files to pass read-only, e.g. ~/.npmrc (comma-separated)", answers.passFiles.join(","));
      if (tools[0]) {
        for (const h of await text(`Extra hosts ${tools[0]} may reach (comma-separated)`, "")) answers.allow.push({ tool: tools[0], host: h });
        for (const p of await text(`Ports of ${tools[0]} to forward to the host, e.g. 3000 (comma-separated)`, "")) answers.ports.push({ tool: tools[0], ...parsePort(p) });
      }
    } else if (tools[0]) {
      for (const p of many(args.port)) answers.ports.push({ tool: tools[0], ...parsePort(p) });
      for (const h of many(args.allow)) answers.allow.push({ tool: tools[0], host: h });
    }
    const { requireTool } = await import("../registry/index.ts");
    const versions = Object.fromEntries(tools.map((t) => [t, requireTool(reg, t).versions.default]));
    const { file, gitignore } = writeProject(cwd, renderSiloToml({ tools: versions, ...answers }), args.force);
    log.success(`wrote ${file}${gitignore ? " and added .silo/ to .gitignore" : ""}`);
    if (tools.length === 0) log.info("no tools detected; add them under [tools] or run `silo init --tool python`");
    const installed = (await readInstalled(home)).tools;
    const missing = tools.filter((t) => !installed[t]);
    if (missing.length) log.info(`still to install: ${missing.map((t) => `silo install ${t}@${versions[t]}`).join(", ")}`);
    if (answers.passEnv.length || answers.passFiles.length || answers.allow.length || answers.ports.length) log.info("review silo.toml, then run `silo trust` so its widening settings apply");
  },
});
