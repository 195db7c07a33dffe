import { defineCommand, type CommandDef } from "citty";
import { VERSION } from "../version.ts";

type Loader = () => Promise<CommandDef<any>>;
const pick = <K extends string>(p: Promise<Record<K, CommandDef<any>>>, k: K) => p.then((m) => m[k]);

/** Static loader map (P1): every specifier is a literal so `bun build --compile` keeps each module. */
export const commands = {
  install: () => pick(import("./install.ts"), "install"),
  uninstall: () => pick(import("./install.ts"), "uninstall"),
  pull: () => pick(import("./install.ts"), "pull"),
  sync: () => pick(import("./install.ts"), "sync"),
  run: () => pick(import("./run.ts"), "run"),
  shell: () => pick(import("./run.ts"), "shell"),
  build: () => pick(import("./run.ts"), "build"),
  rebuild: () => pick(import("./cache.ts"), "rebuild"),
  lsp: () => pick(import("./run.ts"), "lsp"),
  ide: () => pick(import("./ide.ts"), "ide"),
  list: () => pick(import("./list.ts"), "list"),
  init: () => pick(import("./init.ts"), "init"),
  use: () => pick(import("./use.ts"), "use"),
  unuse: () => pick(import("./use.ts"), "unuse"),
  shim: () => pick(import("./shim.ts"), "shim"),
  status: () => pick(import("./status.ts"), "status"),
  cache: () => pick(import("./cache.ts"), "cache"),
  clean: () => pick(import("./cache.ts"), "clean"),
  config: () => pick(import("./config.ts"), "config"),
  doctor: () => pick(import("./doctor.ts"), "doctor"),
  trust: () => pick(import("./trust.ts"), "trust"),
  untrust: () => pick(import("./trust.ts"), "untrust"),
  quarantine: () => pick(import("./quarantine.ts"), "quarantine"),
  shellenv: () => pick(import("./shellenv.ts"), "shellenv"),
  registry: () => pick(import("./registry.ts"), "registry"),
  reset: () => pick(import("./shellenv.ts"), "reset"),
  completion: () => pick(import("./completion.ts"), "completion"),
} satisfies Record<string, Loader>;

export const root = defineCommand({
  meta: {
    name: "silo",
    version: VERSION,
    description: "Run developer tools in an ephemeral sandbox that sees only the current project.",
  },
  args: {
    debug: { type: "boolean", description: "Show debug output and stack traces (also SILO_DEBUG=1)" },
    quiet: { type: "boolean", alias: "q", description: "Only errors and warnings" },
    version: { type: "boolean", alias: "v", description: "Print the version" },
  },
  subCommands: commands,
});
