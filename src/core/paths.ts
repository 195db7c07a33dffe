import { join } from "node:path";
import { SiloError } from "./errors.ts";

/** The user's home: $HOME, else the password database (node:os, loaded only then: it costs start-up). */
export function userHome(): string {
  return process.env.HOME || (require("node:os") as typeof import("node:os")).homedir();
}

/** Where silo keeps all its state; `SILO_HOME` moves everything (default `~/.silo`). */
export function siloHome(): string {
  return process.env.SILO_HOME || join(userHome(), ".silo");
}

/** The layout of SILO_HOME. Every module takes its paths from here. */
export function homePaths(home = siloHome()) {
  return {
    home,
    bin: join(home, "bin"),
    /** Installed tools, resolved definitions, pinned digests. */
    installed: join(home, "config.toml"),
    /** Global project-style config, always trusted. */
    globalConfig: join(home, "silo.toml"),
    cache: join(home, "cache"),
    images: join(home, "images"),
    rootfs: join(home, "rootfs"),
    builds: join(home, "builds"),
    state: join(home, "state"),
    db: join(home, "state", "silo.db"),
    trust: join(home, "trust"),
    registryCache: join(home, "registry"),
    run: join(home, "run"),
  };
}
export type HomePaths = ReturnType<typeof homePaths>;

/**
 * Why `name` cannot be one path component of a host path (null when it can): names from data (tool,
 * cache, layer names from a registry entry, a plugin or config.toml) are joined under SILO_HOME, and
 * `..`, `/` or NUL in one would name another host directory.
 */
export function componentIssue(name: string): string | null {
  if (name === "" || name === "." || name === "..") return `\`${name}\` is not a name`;
  if (name.includes("/")) return `\`${name}\` contains \`/\``;
  if (name.includes("\0")) return `\`${name.replaceAll("\0", "\\0")}\` contains NUL`;
  return null;
}

/**
 * `join(base, ...parts)` for parts that come from data: each must be one safe component (checked again
 * here, whatever validated it before), and the result must lie below `base`.
 */
export function joinUnder(base: string, ...parts: string[]): string {
  for (const p of parts) {
    const issue = componentIssue(p);
    if (issue) throw new SiloError("E_CONFIG", `refusing a path under ${base}: ${issue}`, "a tool, cache or layer name must be one path component (no `..`, `/` or NUL)");
  }
  const out = join(base, ...parts);
  const b = join(base);
  if (!out.startsWith(b.endsWith("/") ? b : `${b}/`)) throw new SiloError("E_CONFIG", `refusing ${out}: it is not below ${base}`);
  return out;
}
