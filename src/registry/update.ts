import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import type { HomePaths } from "../core/paths.ts";
import { validateToolDef } from "./index.ts";

export interface RegistryUpdate {
  source: string;
  accepted: string[];
  rejected: { file: string; reason: string }[];
}

/**
 * Fetch a registry with giget (`gh:org/repo/registry`, `git:/path/to/repo`, an https tarball, ...),
 * validate every entry, and swap the accepted ones in atomically. A failed fetch keeps the old registry.
 */
export async function updateRegistry(home: HomePaths, source: string): Promise<RegistryUpdate> {
  const { downloadTemplate } = await import("giget");
  const { parse } = await import("smol-toml");
  mkdirSync(home.registryCache, { recursive: true });
  const staging = join(home.registryCache, `staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    await downloadTemplate(source, { dir: staging, force: true, registry: false, preferOffline: false });
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw new SiloError("E_REGISTRY", `could not fetch the tool registry from ${source}: ${(e as Error).message}`, "the previous registry is still in use");
  }
  const dir = existsSync(join(staging, "registry")) ? join(staging, "registry") : staging;
  const accepted: string[] = [];
  const rejected: RegistryUpdate["rejected"] = [];
  const out = join(home.registryCache, `next-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".toml")).sort()) {
    const text = readFileSync(join(dir, f), "utf8");
    let problems: string[];
    try {
      problems = validateToolDef(parse(text), f);
    } catch (e) {
      problems = [String((e as Error).message).split("\n")[0]!];
    }
    if (problems.length) rejected.push({ file: f, reason: problems.join("; ") });
    else {
      writeFileSync(join(out, f), text);
      accepted.push(f.replace(/\.toml$/, ""));
    }
  }
  rmSync(staging, { recursive: true, force: true });
  if (accepted.length === 0) {
    rmSync(out, { recursive: true, force: true });
    throw new SiloError("E_REGISTRY", `the registry at ${source} has no valid tool definitions`, rejected.map((r) => `${r.file}: ${r.reason}`).join("\n"));
  }
  const current = join(home.registryCache, "current");
  const old = join(home.registryCache, `old-${process.pid}`);
  if (existsSync(current)) renameSync(current, old);
  renameSync(out, current);
  rmSync(old, { recursive: true, force: true });
  writeFileSync(join(home.registryCache, "source.json"), JSON.stringify({ source, at: new Date().toISOString() }));
  return { source, accepted, rejected };
}
