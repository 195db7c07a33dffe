import { definePlugin, promoteSibling } from "../../src/plugin/api.ts";

/** Go: module and build caches, gopls; `silo run go gofmt -l .` runs gofmt. */
export default definePlugin({
  name: "go",
  detect: ["go.mod", "go.work"],
  shims: ["go", "gofmt"],
  // Per project: go builds extracted modules and cached packages without checking them again.
  cache: [
    { name: "mod", path: "/go/pkg/mod" },
    { name: "build", path: "/root/.cache/go-build" },
  ],
  lsp: { command: ["gopls", "serve"], install: ["go", "install", "golang.org/x/tools/gopls@latest"] },
  argv: (ctx) => promoteSibling(ctx, "go"),
});
