import { definePlugin, promoteSibling } from "../../src/plugin/api.ts";

/** Node: npm cache, typescript-language-server, sibling shims, and the project's node_modules/.bin on PATH. */
export default definePlugin({
  name: "node",
  detect: ["package.json", ".nvmrc", ".node-version"],
  shims: ["node", "npm", "npx", "corepack"],
  cache: [{ name: "npm", path: "/root/.npm" }],
  lsp: {
    command: ["typescript-language-server", "--stdio"],
    install: ["npm", "install", "-g", "typescript", "typescript-language-server"],
  },
  argv: (ctx) => promoteSibling(ctx, "node"),
});
