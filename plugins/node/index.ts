import { definePlugin, promoteSibling } from "../../src/plugin/api.ts";

/** Node: npm cache, typescript-language-server, sibling shims, and the project's node_modules/.bin on PATH. */
export default definePlugin({
  name: "node",
  detect: ["package.json", ".nvmrc", ".node-version"],
  shims: ["node", "npm", "npx", "corepack"],
  // As registry/node.toml: all of ~/.npm per project, its _cacache too (pacote unpacks a cached tarball
  // before its integrity check fails, and what only the planted tarball had stays).
  cache: [{ name: "npm", path: "/root/.npm" }],
  lsp: {
    command: ["typescript-language-server", "--stdio"],
    install: ["npm", "install", "-g", "typescript", "typescript-language-server"],
  },
  argv: (ctx) => promoteSibling(ctx, "node"),
});
