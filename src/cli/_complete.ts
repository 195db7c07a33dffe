// `silo __complete WORD...`: the candidates for the last word (what the user is typing), one a line.
// The shell scripts of `silo completion` (completion.ts) call it on every TAB, so what it offers always
// follows the installed binary: commands and flags from the citty tree, tool names from SILO_HOME.
// Printing nothing lets the shell fall back to file names (after a tool, its arguments are files).
import type { ArgsDef, CommandDef } from "citty";
import { commands } from "./index.ts";

type Cmd = CommandDef<ArgsDef>;
const resolve = async <T>(r: T | Promise<T> | (() => T | Promise<T>)): Promise<T> => (typeof r === "function" ? (r as () => T)() : r);

const GLOBAL_FLAGS = ["--help", "--version", "--debug", "--quiet"];
/** Commands whose first positional is an installed tool, and the one whose is a registry tool. */
const INSTALLED_TOOL = new Set(["run", "shell", "lsp", "build", "uninstall", "rebuild", "use"]);
const REGISTRY_TOOL = new Set(["install"]);
/** Values offered after a flag that takes one (the rest take free text: nothing to offer). */
const FLAG_VALUES: Record<string, string[]> = { "--driver": ["bwrap", "qemu", "apple"] };

export async function main(words: string[]): Promise<number> {
  const out = await candidates(words);
  if (out.length) process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

/** The candidates for words[words.length - 1], given the words before it (without `silo`). */
export async function candidates(words: string[]): Promise<string[]> {
  const cur = words.at(-1) ?? "";
  const before = words.slice(0, -1);
  const match = (list: Iterable<string>) => [...new Set(list)].filter((c) => c.startsWith(cur)).sort();
  let i = 0;
  while (i < before.length && (before[i] === "--debug" || before[i] === "--quiet" || before[i] === "-q")) i++;
  if (i === before.length) return match(cur.startsWith("-") ? GLOBAL_FLAGS : visibleCommands());
  const name = before[i]!;
  if (!(name in commands)) return [];
  let cmd = (await commands[name as keyof typeof commands]()) as unknown as Cmd;
  let path = name;
  // Down through subcommands (`cache gc`, `config show`) as far as the words go.
  for (i++; i < before.length; i++) {
    const subs = (await resolve(cmd.subCommands)) as Record<string, Cmd> | undefined;
    if (!subs || !(before[i]! in subs)) break;
    cmd = await resolve(subs[before[i]!]!);
    path += ` ${before[i]}`;
  }
  const args = ((await resolve(cmd.args)) ?? {}) as ArgsDef;
  const rest = before.slice(i);
  const prev = rest.at(-1);
  if (prev && FLAG_VALUES[prev]) return match(FLAG_VALUES[prev]!);
  if (prev?.startsWith("-") && takesValue(args, prev)) return [];
  // Positionals so far: words that are not flags nor a flag's value.
  const positionals = rest.filter((w, k) => !w.startsWith("-") && !(k > 0 && takesValue(args, rest[k - 1]!)));
  if (positionals.length > 0 && INSTALLED_TOOL.has(path)) return []; // the tool's own arguments
  if (cur.startsWith("-")) return match(flagsOf(args));
  const subs = (await resolve(cmd.subCommands)) as Record<string, Cmd> | undefined;
  if (subs && positionals.length === 0) return match(Object.keys(subs));
  if (positionals.length === 0 && INSTALLED_TOOL.has(path)) return match(await installedTools());
  if (positionals.length === 0 && REGISTRY_TOOL.has(path)) return match(await registryTools());
  return [];
}

function visibleCommands(): string[] {
  return [...Object.keys(commands), "help"];
}

function flagsOf(args: ArgsDef): string[] {
  const out = ["--help"];
  for (const [name, d] of Object.entries(args)) {
    if (d.type === "positional") continue;
    out.push(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  }
  return out;
}

function takesValue(args: ArgsDef, flag: string): boolean {
  if (flag.includes("=")) return false;
  const bare = flag.replace(/^--?/, "");
  return Object.entries(args).some(([name, d]) => {
    const aliases = [(d as { alias?: string | string[] }).alias ?? []].flat();
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    return d.type === "string" && (bare === name || bare === kebab || aliases.includes(bare));
  });
}

async function installedTools(): Promise<string[]> {
  const { homePaths } = await import("../core/paths.ts");
  const { readInstalled } = await import("../config/installed.ts");
  return Object.keys((await readInstalled(homePaths())).tools);
}

async function registryTools(): Promise<string[]> {
  const { homePaths } = await import("../core/paths.ts");
  const { loadRegistry } = await import("../registry/index.ts");
  return [...(await loadRegistry(homePaths())).tools.keys()];
}
