import { homedir } from "node:os";
import { join } from "node:path";

/** Where silo keeps all its state; `SILO_HOME` moves everything (default `~/.silo`). */
export function siloHome(): string {
  return process.env.SILO_HOME || join(process.env.HOME || homedir(), ".silo");
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
