// The registry shipped inside the binary: Bun parses these TOML files at bundle time, so using them
// costs no parsing at run time and works offline. Add a tool: one file in registry/, one line here.
import awsCli from "../../registry/aws-cli.toml";
import claudeCode from "../../registry/claude-code.toml";
import cypress from "../../registry/cypress.toml";
import deno from "../../registry/deno.toml";
import go from "../../registry/go.toml";
import jupyter from "../../registry/jupyter.toml";
import node from "../../registry/node.toml";
import playwright from "../../registry/playwright.toml";
import psql from "../../registry/psql.toml";
import python from "../../registry/python.toml";
import rust from "../../registry/rust.toml";

export const embedded: Record<string, unknown> = {
  "aws-cli": awsCli,
  "claude-code": claudeCode,
  cypress,
  deno,
  go,
  jupyter,
  node,
  playwright,
  psql,
  python,
  rust,
};
