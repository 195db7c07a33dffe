import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { SiloError } from "../core/errors.ts";
import { checkSchema, type Schema } from "./_schema-dsl.ts";

/** The nearest directory at or above `cwd` holding a silo.toml, or null. */
export { findProjectConfig } from "./locate.ts";

/**
 * Parse one TOML file with c12 locked to data: the exact file name, no rc files, no package.json,
 * no dotenv, no `extends`, no giget, no env-specific sections. c12 only ever sees a `.toml` path that
 * exists, so it never falls back to jiti (which would import `.config/silo.ts` and run project code).
 */
export async function loadTomlData(file: string): Promise<Record<string, unknown>> {
  if (!existsSync(file)) return {};
  const { loadConfig } = await import("c12");
  try {
    const { config } = await loadConfig<Record<string, unknown>>({
      cwd: dirname(file),
      name: "silo",
      configFile: file,
      rcFile: false,
      globalRc: false,
      packageJson: false,
      dotenv: false,
      envName: false,
      extend: false,
      giget: false,
      defaults: {},
    });
    return (config ?? {}) as Record<string, unknown>;
  } catch (e) {
    throw tomlError(file, e);
  }
}

/**
 * Parse a project silo.toml from the bytes already read (locate.ts readProjectConfig), not from its path:
 * trust compares the hash of these bytes, so these bytes and no others must be what applies. c12 only
 * loads by path (a second read that a sandbox could race with a swap), and with every c12 source switched
 * off it adds nothing over its TOML parser (confbox → smol-toml), so smol-toml parses them directly.
 */
export async function parseTomlBytes(file: string, bytes: Uint8Array): Promise<{ data: Record<string, unknown>; text: string }> {
  const text = new TextDecoder().decode(bytes);
  const { parse } = await import("smol-toml");
  try {
    return { data: parse(text) as Record<string, unknown>, text };
  } catch (e) {
    throw tomlError(file, e, text);
  }
}

/** Parse TOML directly (silo's own files); syntax errors name file:line:col. */
export async function parseTomlFile(file: string): Promise<Record<string, unknown>> {
  if (!existsSync(file)) return {};
  const text = readFileSync(file, "utf8");
  const { parse } = await import("smol-toml");
  try {
    return parse(text) as Record<string, unknown>;
  } catch (e) {
    throw tomlError(file, e);
  }
}

function tomlError(file: string, e: unknown, text?: string): SiloError {
  // smol-toml's TomlError carries line/column; c12 (via confbox) may wrap or re-throw it.
  let err = e as { line?: number; column?: number; message?: string };
  if (err?.line === undefined) {
    try {
      const { parse } = require("smol-toml") as typeof import("smol-toml");
      parse(text ?? readFileSync(file, "utf8"));
    } catch (inner) {
      err = inner as typeof err;
    }
  }
  const first = String(err?.message ?? e).split("\n")[0]!.replace(/^Invalid TOML document: /, "");
  const where = err?.line !== undefined ? `${file}:${err.line}:${err.column ?? 1}` : file;
  return new SiloError("E_CONFIG", `${where}: invalid TOML: ${first}`, "fix the syntax, then run the command again");
}

/** Validate parsed data against a schema; every problem is listed with its file:line where it can be found. */
export function validateOrThrow(file: string, data: unknown, schema: Schema, text?: string): void {
  const issues = checkSchema(data, schema);
  if (issues.length === 0) return;
  text ??= existsSync(file) ? readFileSync(file, "utf8") : "";
  const lines = issues.map((i) => `  ${locate(file, text, i.path)}: ${i.message}`);
  throw new SiloError("E_CONFIG", `invalid configuration in ${file}:\n${lines.join("\n")}`);
}

/** Best-effort file:line:col for a dotted key path (the last segment as written in the file). */
export function locate(file: string, text: string, path: string): string {
  const last = path.replace(/\[\d+\]$/, "").split(".").pop() ?? "";
  const re = new RegExp(`^(\\s*)(["']?)${last.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\2\\s*=|^\\s*\\[\\[?[^\\]]*\\b${last}\\]`);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = re.exec(lines[i]!);
    if (m) return `${file}:${i + 1}:${(m[1]?.length ?? 0) + 1}`;
  }
  return file;
}
