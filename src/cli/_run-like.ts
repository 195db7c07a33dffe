import { SiloError } from "../core/errors.ts";
import { setDebug, setQuiet } from "../core/log.ts";
import { runTool } from "../app/run.ts";
import { isatty } from "../core/tty.ts";
import { parseEnvFlag, parsePort, splitRunArgs } from "./_argv.ts";

/** run, shell, lsp, build: parsed here (not by citty) so the tool's arguments pass through untouched. */
export async function runLike(command: string, argv: string[]): Promise<number> {
  const { flags, tool, rest } = splitRunArgs(argv, command);
  if (flags.debug) setDebug(true);
  if (flags.quiet) setQuiet(true);
  if (flags.help || !tool) {
    const { showHelp } = await import("./_dispatch.ts");
    await showHelp([command]);
    if (!tool && !flags.help) throw new SiloError("E_USAGE", `silo ${command}: name a tool (e.g. \`silo ${command} python\`)`);
    return 0;
  }
  const ports = ((flags.port as string[] | undefined) ?? []).map(parsePort);
  const env = Object.fromEntries(((flags.env as string[] | undefined) ?? []).map(parseEnvFlag));
  const tty = flags.tty ? true : flags.noTty ? false : undefined;
  const base = { tool, cwd: process.cwd(), driver: flags.driver as string | undefined, ports, env, tty, timing: !!flags.timing, sshAgent: !!flags.sshAgent };
  switch (command) {
    case "run":
      return runTool({ ...base, args: rest, shim: flags.shim as string | undefined });
    case "shell":
      return runTool({ ...base, args: rest, shell: true, tty: tty ?? isatty(0) });
    case "lsp": {
      if (flags.sshAgent) throw new SiloError("E_USAGE", "silo lsp: --ssh-agent is for run, shell and build (a language server gets no agent)");
      const { startLsp } = await import("../app/lsp.ts");
      return startLsp({ tool, cwd: process.cwd(), driver: flags.driver as string | undefined });
    }
    default: {
      const { runBuildCommand } = await import("../app/build.ts");
      return runBuildCommand({ ...base, global: !!flags.global, remove: !!flags.remove, argv: rest });
    }
  }
}
