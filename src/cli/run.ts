import { defineCommand } from "citty";
import { globalArgs, runArgs } from "./_args.ts";

// run, shell, lsp and build are parsed by _run-like.ts (the tool's arguments must pass through untouched);
// these definitions give them their --help text and their place in `silo --help`.
const handledElsewhere = () => {
  throw new Error("run-like commands are dispatched by src/cli/_run-like.ts");
};

export const run = defineCommand({
  meta: {
    name: "run",
    description: "Run a tool's command in a fresh sandbox that sees only this project (at /workspace).",
  },
  args: runArgs,
  run: handledElsewhere,
});

export const shell = defineCommand({
  meta: { name: "shell", description: "Open an interactive shell in the tool's sandbox (bash when the image has it, else sh)" },
  args: runArgs,
  run: handledElsewhere,
});

export const lsp = defineCommand({
  meta: {
    name: "lsp",
    description: "Run the tool's language server in its sandbox over stdio, rewriting host paths to /workspace and back.",
  },
  args: { tool: runArgs.tool, driver: runArgs.driver, ...globalArgs },
  run: handledElsewhere,
});

export const build = defineCommand({
  meta: {
    name: "build",
    description: "Run a command whose writes become a persistent layer of the tool's environment",
  },
  args: {
    ...runArgs,
    global: { type: "boolean", description: "Build the layer for all projects (SILO_HOME/builds/<tool>)" },
    remove: { type: "boolean", description: "Delete the tool's build layer" },
  },
  run: handledElsewhere,
});
