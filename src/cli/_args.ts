import type { ArgsDef } from "citty";

/** Argument groups shared by several commands (spread into `args`). */
export const globalArgs = {
  debug: { type: "boolean", description: "Show debug output and stack traces" },
  quiet: { type: "boolean", alias: "q", description: "Only errors and warnings" },
} as const satisfies ArgsDef;

export const runArgs = {
  tool: { type: "positional", description: "Tool to run (python, node, ...); everything after it goes to the tool", required: false },
  driver: { type: "string", description: "Sandbox driver: bwrap (Linux), qemu, apple (also SILO_DRIVER)", valueHint: "name" },
  port: { type: "string", alias: "p", description: "Forward 127.0.0.1:HOST on the host to GUEST in the sandbox (repeatable)", valueHint: "host[:guest]" },
  env: { type: "string", alias: "e", description: "Set an environment variable in the sandbox (repeatable)", valueHint: "NAME=VALUE" },
  shim: { type: "string", description: "Run this shim's command of the tool (what shims do)", valueHint: "name" },
  tty: { type: "boolean", alias: "t", description: "Force a terminal (default: when stdin and stdout are terminals); --no-tty to refuse one" },
  timing: { type: "boolean", description: "Print where the time went (config, image, sandbox, command)" },
  "ssh-agent": { type: "boolean", description: "Forward your ssh-agent (SSH_AUTH_SOCK) into the sandbox; keys stay on the host" },
  ...globalArgs,
} as const satisfies ArgsDef;

export const jsonArg = { json: { type: "boolean", description: "Machine-readable JSON output" } } as const satisfies ArgsDef;
export const dryRunArg = { "dry-run": { type: "boolean", description: "Show what would be done, change nothing" } } as const satisfies ArgsDef;
