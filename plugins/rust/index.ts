import { definePlugin, promoteSibling } from "../../src/plugin/api.ts";

/** Rust: cargo registry and git caches, rust-analyzer; `silo run rust cargo build` runs cargo. */
export default definePlugin({
  name: "rust",
  detect: ["Cargo.toml", "rust-toolchain.toml", "rust-toolchain"],
  shims: ["cargo", "rustc", "rustup", "rustfmt"],
  // Per project: cargo builds registry/src and takes a cached .crate without checking it again.
  cache: [
    { name: "cargo-registry", path: "/root/.cargo/registry" },
    { name: "cargo-git", path: "/root/.cargo/git" },
  ],
  lsp: { command: ["rust-analyzer"], install: ["rustup", "component", "add", "rust-analyzer"] },
  argv: (ctx) => promoteSibling(ctx, "cargo"),
});
