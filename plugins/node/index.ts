import { definePlugin, promoteSibling } from "../../src/plugin/api.ts";

/** Node: npm cache, typescript-language-server, sibling shims, and the project's node_modules/.bin on PATH. */
export default definePlugin({
  name: "node",
  detect: ["package.json", ".nvmrc", ".node-version"],
  shims: ["node", "npm", "npx", "corepack"],
  // As registry/node.toml: ~/.npm per project (_npx, the cache index), npm's content-addressed store
  // shared (read only by an integrity npm already holds, and checked against it on every read).
  cache: [
    { name: "npm", path: "/root/.npm" },
    { name: "npm-cacache", path: "/root/.npm/_cacache", scope: "shared" },
    { name: "npm-index", path: "/root/.npm/_cacache/index-v5" },
  ],
  lsp: {
    command: ["typescript-language-server", "--stdio"],
    install: ["npm", "install", "-g", "typescript", "typescript-language-server"],
  },
  argv: (ctx) => promoteSibling(ctx, "node"),
});
