import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

export const shellenv = defineCommand({
  meta: { name: "shellenv", description: "Print the line that puts silo's shims first on PATH: eval \"$(silo shellenv)\" (bash, zsh, fish)" },
  args: { shell: { type: "positional", required: false, description: "bash, zsh or fish (default: from $SHELL)" } },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const bin = homePaths().bin;
    const shell = args.shell ?? (process.env.SHELL ?? "bash").replace(/^.*\//, "");
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    if (shell === "fish") process.stdout.write(`fish_add_path --prepend --move ${q(bin)}\n`);
    else if (shell === "bash" || shell === "zsh" || shell === "sh") process.stdout.write(`export PATH=${q(bin)}:"$PATH"\n`);
    else throw new SiloError("E_USAGE", `unknown shell \`${shell}\``, "use bash, zsh or fish");
  },
});

export const reset = defineCommand({
  meta: { name: "reset", description: "Delete everything silo keeps in SILO_HOME (tools, images, caches, trust, shims)" },
  args: { force: { type: "boolean", description: "Do not ask" }, ...globalArgs },
  async run({ args }) {
    const { homePaths } = await import("../core/paths.ts");
    const { existsSync, readdirSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const home = homePaths();
    if (!existsSync(home.home)) return log.info(`${home.home} does not exist; nothing to reset`);
    if (!args.force) {
      if (!process.stdin.isTTY) throw new SiloError("E_USAGE", `silo reset deletes ${home.home}`, "re-run with --force to confirm");
      const { consola } = await import("consola");
      const yes = await consola.prompt(`Delete everything in ${home.home}?`, { type: "confirm", initial: false, cancel: "reject" });
      if (!yes) return log.info("nothing deleted");
    }
    // Keep the global silo.toml: it is the user's own configuration, not state.
    for (const f of readdirSync(home.home)) if (f !== "silo.toml") rmSync(join(home.home, f), { recursive: true, force: true });
    log.success(`reset ${home.home} (kept silo.toml)`);
  },
});
