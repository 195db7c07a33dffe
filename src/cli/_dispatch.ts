import type { ArgsDef, CommandDef } from "citty";
import { renderUsage, runCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { commands, root } from "./index.ts";
import { unknownFlag } from "./_argv.ts";

type Cmd = CommandDef<ArgsDef>;
const resolve = async <T>(r: T | Promise<T> | (() => T | Promise<T>)): Promise<T> => (typeof r === "function" ? (r as () => T)() : r);

/** Walk `argv` down the command tree; returns the leaf, its parent, its path and its own arguments. */
async function findCommand(argv: string[]): Promise<{ cmd: Cmd; parent?: Cmd; path: string[]; args: string[] }> {
  let cmd = root as unknown as Cmd;
  let parent: Cmd | undefined;
  const path: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const subs = (await resolve(cmd.subCommands)) as Record<string, unknown> | undefined;
    const name = argv[i]!;
    if (!subs || name.startsWith("-")) break;
    const key = Object.keys(subs).find((k) => k === name);
    if (!key) break;
    parent = cmd;
    cmd = (await resolve(subs[key] as Cmd)) as Cmd;
    path.push(key);
  }
  return { cmd, parent, path, args: argv.slice(i) };
}

export async function showHelp(path: string[]): Promise<void> {
  const { cmd, parent, path: found } = await findCommand(path);
  await printUsage(cmd, parent, found);
}

async function printUsage(cmd: Cmd, parent: Cmd | undefined, path: string[]) {
  const { examples } = await import("./_examples.ts");
  const ex = examples[path.join(" ")];
  const indent = (s: string) => s.split("\n").map((l) => `  ${l}`).join("\n");
  let usage = await renderUsage(cmd, parent);
  if (path.length === 0) usage = (await import("./_help.ts")).groupRootUsage(usage);
  process.stdout.write(`${usage}\n${ex ? `\nEXAMPLES\n\n${indent(ex)}\n` : ""}`);
}

export async function runCli(argv: string[]): Promise<number> {
  const first = argv[0];
  if (!first || first === "--help" || first === "-h" || first === "help") {
    if (first === "help" && argv[1]) return showHelp(argv.slice(1)).then(() => 0);
    await showHelp([]);
    return first ? 0 : 1;
  }
  if (!first.startsWith("-") && !(first in commands)) return shorthand(first, argv.slice(1));
  const { cmd, parent, path, args } = await findCommand(argv);
  if (path.length === 0) throw unknownFlag("", first, ["--help", "--version", "--debug", "--quiet"]);
  const subs = await resolve(cmd.subCommands);
  if (args.includes("--help") || args.includes("-h") || (subs && !cmd.run && !cmd.default)) {
    await printUsage(cmd, parent, path);
    if (subs && !cmd.run && args.length && !args[0]!.startsWith("-"))
      throw new SiloError("E_USAGE", `unknown command \`silo ${path.join(" ")} ${args[0]}\``);
    return args.includes("--help") || args.includes("-h") ? 0 : 1;
  }
  checkFlags(path.join(" "), args, (await resolve(cmd.args)) ?? {});
  await runCommand(cmd, { rawArgs: args });
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}

/** citty parses non-strictly; silo refuses flags a command does not define (and suggests the closest). */
function checkFlags(command: string, args: string[], def: ArgsDef) {
  const known = new Set<string>(["--debug", "--quiet", "-q", "--help", "-h"]);
  for (const [name, d] of Object.entries(def)) {
    if (d.type === "positional") continue;
    const aliases = [(d as { alias?: string | string[] }).alias ?? []].flat();
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    known.add(`--${name}`).add(`--${kebab}`);
    if (d.type === "boolean") known.add(`--no-${name}`).add(`--no-${kebab}`);
    for (const a of aliases) known.add(a.length === 1 ? `-${a}` : `--${a}`);
  }
  for (const a of args) {
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a)) continue;
    const name = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    if (!known.has(name)) throw unknownFlag(command, a, [...known]);
  }
  if (args.includes("--debug")) import("../core/log.ts").then((m) => m.setDebug(true));
}

/** `silo python x.py` → `silo run python x.py`; `silo npm test` → the tool that owns the `npm` shim. */
async function shorthand(name: string, args: string[]): Promise<number> {
  const { homePaths } = await import("../core/paths.ts");
  const { readShimIndex } = await import("../app/shims.ts");
  const home = homePaths();
  const { readInstalled } = await import("../config/installed.ts");
  const installed = await readInstalled(home);
  const { loadRegistry } = await import("../registry/index.ts");
  const { runTool } = await import("../app/run.ts");
  if (installed.tools[name] || (await loadRegistry(home)).tools.has(name))
    return runTool({ tool: name, args, cwd: process.cwd() });
  const shim = readShimIndex(home)[name];
  if (shim) return runTool({ tool: shim.tool, shim: name, args, cwd: process.cwd() });
  const { closest } = await import("../config/_schema-dsl.ts");
  const tools = [...(await loadRegistry(home)).tools.keys(), ...Object.keys(installed.tools)];
  const nearTool = closest(name, tools);
  const near = nearTool ? `${nearTool}` : closest(name, Object.keys(commands));
  log.debug(`no command, tool or shim named ${name}`);
  throw new SiloError(
    "E_USAGE",
    `unknown command or tool \`${name}\`${near ? ` (did you mean \`silo ${near}\`?)` : ""}`,
    "`silo --help` lists the commands; `silo list --available` lists the tools",
  );
}
