import { defineCommand } from "citty";
import { log } from "../core/log.ts";
import { globalArgs } from "./_args.ts";

export const ide = defineCommand({
  meta: { name: "ide", description: "Write editor configuration that launches `silo lsp <tool>`: vscode, zed or neovim" },
  args: {
    editor: { type: "positional", required: true, description: "vscode, zed or neovim" },
    tool: { type: "string", description: "Tool whose language server to use (default: detected)", valueHint: "name" },
    ...globalArgs,
  },
  async run({ args }) {
    const { SiloError } = await import("../core/errors.ts");
    if (!["vscode", "zed", "neovim"].includes(args.editor)) throw new SiloError("E_USAGE", `unknown editor \`${args.editor}\``, "use vscode, zed or neovim");
    const { writeIdeConfig } = await import("../app/ide.ts");
    const r = await writeIdeConfig(args.editor as "vscode" | "zed" | "neovim", { cwd: process.cwd(), tool: args.tool });
    if (r.written) log.success(`wrote ${r.path} (${r.tools.join(", ") || "no tools detected"})`);
    else log.info(`${r.path} is already up to date`);
  },
});
