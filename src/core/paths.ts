import { join } from "node:path";

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
