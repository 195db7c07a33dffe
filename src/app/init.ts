import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import type { ToolDef } from "../config/schema.ts";

/** Tools whose marker files (registry `detect`) are in `dir`, in registry order. */
export function detectTools(dir: string, tools: Iterable<ToolDef>): string[] {
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const found: string[] = [];
  for (const t of tools) {
    const hit = (t.detect ?? []).some((m) => (m.startsWith("*.") ? names.some((n) => n.endsWith(m.slice(1))) : names.includes(m)));
    if (hit) found.push(t.name);
  }
  return found;
}

export interface InitAnswers {
  tools: Record<string, string>;
  ports: { tool: string; host: number; guest: number }[];
  passEnv: string[];
  passFiles: string[];
  exclude: string[];
  allow: { tool: string; host: string }[];
}

/** The silo.toml text for the answers: commented so a reader knows what each part does. */
export function renderSiloToml(a: InitAnswers): string {
  const q = (s: string) => JSON.stringify(s);
  const list = (xs: string[]) => `[${xs.map(q).join(", ")}]`;
  const out = ["# silo project configuration (https://github.com/silo-sandbox/silo#configuration)", "# Settings that widen access (passEnv, passFiles, network allow, ports) apply after `silo trust`.", ""];
  // Top-level keys first: in TOML everything after a [table] header belongs to that table.
  if (a.passEnv.length) out.push(`passEnv = ${list(a.passEnv)}`);
  if (a.passFiles.length) out.push(`passFiles = ${list(a.passFiles)}`);
  if (a.passEnv.length || a.passFiles.length) out.push("");
  out.push("[tools]");
  for (const [t, v] of Object.entries(a.tools)) out.push(`${t} = ${q(v)}`);
  out.push("", "[mount]", "# Project paths the sandbox must not see: paths from the project root, or gitignore-style globs (*.pem, **/.env, secrets/).", `exclude = ${list(a.exclude)}`);
  const tools = new Set([...a.ports.map((p) => p.tool), ...a.allow.map((x) => x.tool)]);
  for (const t of tools) {
    const hosts = a.allow.filter((x) => x.tool === t).map((x) => x.host);
    if (hosts.length) out.push("", `[overrides.${t}.network.proxy]`, `allow = ${list(hosts)}`);
    for (const p of a.ports.filter((p) => p.tool === t)) out.push("", `[[overrides.${t}.ports]]`, `host = ${p.host}`, `guest = ${p.guest}`);
  }
  return out.join("\n") + "\n";
}

/** Write silo.toml (refusing to overwrite unless `force`) and make sure `.silo/` is git-ignored. */
export function writeProject(dir: string, toml: string, force = false): { file: string; gitignore: boolean } {
  const file = join(dir, "silo.toml");
  if (existsSync(file) && !force) throw new SiloError("E_USAGE", `${file} already exists`, "use --force to replace it");
  writeFileSync(file, toml);
  const gi = join(dir, ".gitignore");
  const text = existsSync(gi) ? readFileSync(gi, "utf8") : "";
  const has = text.split("\n").some((l) => [".silo", ".silo/", "/.silo", "/.silo/"].includes(l.trim()));
  if (!has) appendFileSync(gi, `${text && !text.endsWith("\n") ? "\n" : ""}# silo build layers\n.silo/\n`);
  return { file, gitignore: !has };
}
