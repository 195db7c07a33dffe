import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { readProject, readTrustedHash, sha256, type ProjectBytes } from "../config/locate.ts";
import type { InstalledTool } from "../config/schema.ts";
import type { ProjectConfig, ResolvedTool } from "../config/resolve.ts";
import { BUILD } from "../version.ts";

/** What `silo run` needs from configuration, resolved once and cached by the content of every input file. */
export interface RunContext {
  project: Pick<ProjectConfig, "root" | "file" | "trust" | "ignored"> & {
    driver?: string;
    /**
     * Tools a trusted project file claims (`tools`); null when it claims none or is not trusted (every tool
     * is welcome). Only this list may send a shim past its sandbox to a host command (THREATS.md inv. 1).
     */
    claimed: string[] | null;
    /** Claims of an untrusted file, kept only to say that they were ignored. */
    claimedUntrusted?: string[] | null;
  };
  installed: InstalledTool | null;
  tool: ResolvedTool | null;
}

/**
 * The resolved-config cache: c12, defu, the TOML parser and schema checks cost tens of milliseconds of
 * start-up that every shim call would pay. Their result depends only on a few small files, so it is keyed
 * on those files' contents (sha256): a stat signature (inode, size, mtime) can be matched by a swapped file
 * of the same size written within one mtime tick, and hashing a few KB costs microseconds. The project
 * file's hash is that of the one read whose bytes are parsed on a miss, so an entry can never hold a
 * context built from other bytes than its key names.
 */
function signature(home: HomePaths, project: ProjectBytes | null, trusted: string | null, tool: string): string {
  const parts: string[] = [BUILD, tool, process.env.SILO_DRIVER ?? "", project?.file ?? "", project?.hash ?? "-", trusted ?? "-"];
  for (const f of [home.globalConfig, home.installed]) parts.push(contentHash(f));
  return parts.join("|");
}

function contentHash(f: string): string {
  try {
    return sha256(readFileSync(f));
  } catch {
    return "-";
  }
}

const memo = new Map<string, RunContext>();

/** Cached per process too: a shim's claim check and the run that follows resolve once. */
export async function loadRunContext(home: HomePaths, cwd: string, toolName: string): Promise<RunContext> {
  const k = `${home.home}\0${cwd}\0${toolName}`;
  const hit = memo.get(k);
  if (hit) return hit;
  const ctx = await loadRunContextUncached(home, cwd, toolName);
  memo.set(k, ctx);
  return ctx;
}

async function loadRunContextUncached(home: HomePaths, cwd: string, toolName: string): Promise<RunContext> {
  const project = readProject(cwd, home);
  const trusted = project ? readTrustedHash(home, project.file) : null;
  const sig = signature(home, project, trusted, toolName);
  const key = Bun.hash(`${project?.file ?? cwd}\0${toolName}`).toString(16);
  const cacheFile = join(home.state, "resolved", `${key}.json`);
  if (existsSync(cacheFile)) {
    try {
      const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as { sig: string; ctx: RunContext };
      if (cached.sig === sig) {
        log.debug("config: resolved-config cache hit");
        // A cached context must still say which directory is the project when there is no silo.toml.
        if (!project) cached.ctx.project.root = cwd;
        warnIgnored(cached.ctx);
        return cached.ctx;
      }
    } catch {
      /* a corrupt cache entry is rebuilt below */
    }
  }
  const ctx = await resolveRunContext(home, cwd, toolName, project);
  // The global and installed files are re-read by the loader: store the result only if they did not change
  // meanwhile (the project file and its trust went through as the bytes hashed above).
  if (signature(home, project, readProjectTrust(home, project), toolName) === sig) {
    mkdirSync(join(home.state, "resolved"), { recursive: true });
    writeFileAtomic(cacheFile, JSON.stringify({ sig, ctx }));
  }
  warnIgnored(ctx);
  return ctx;
}

const readProjectTrust = (home: HomePaths, p: ProjectBytes | null) => (p ? readTrustedHash(home, p.file) : null);

function warnIgnored(ctx: RunContext) {
  const p = ctx.project;
  if (!p.file || p.ignored.length === 0) return;
  const what = p.trust === "changed" ? "changed since you trusted it" : "not trusted";
  log.warn(`${p.file} is ${what}; ignoring ${p.ignored.join(", ")}. Review it, then run \`silo trust\` to apply them.`);
}

async function resolveRunContext(home: HomePaths, cwd: string, toolName: string, read: ProjectBytes | null): Promise<RunContext> {
  const { loadProject, resolveTool } = await import("../config/resolve.ts");
  const { readInstalled } = await import("../config/installed.ts");
  const project = await loadProject(cwd, home, read);
  const installed = (await readInstalled(home)).tools[toolName] ?? null;
  let def = installed?.definition;
  if (!def) {
    const { loadRegistry } = await import("../registry/index.ts");
    def = (await loadRegistry(home)).tools.get(toolName);
  }
  if (def && installed?.extraShims?.length) def = { ...def, shims: [...def.shims, ...installed.extraShims] };
  const tool = def ? resolveTool(project, def, installed?.version) : null;
  if (tool && installed && tool.version === installed.version && !project.merged.overrides?.[toolName]?.image) tool.image = installed.image;
  return {
    project: {
      root: project.root,
      file: project.file,
      trust: project.trust,
      ignored: project.ignored,
      driver: project.merged.driver,
      claimed: project.trust === "trusted" ? project.claims : null,
      claimedUntrusted: project.trust === "trusted" ? null : project.claims,
    },
    installed,
    tool,
  };
}

export function toolNotInstalled(name: string): SiloError {
  return new SiloError("E_TOOL_NOT_INSTALLED", `tool \`${name}\` is not installed`, `run \`silo install ${name}\` first`);
}

/** `silo __resolve TOOL`: config resolution alone, as `silo run` does it (for the start-up benchmark). */
export async function resolveOnly(tool: string): Promise<number> {
  const { homePaths } = await import("../core/paths.ts");
  const ctx = await loadRunContext(homePaths(), process.cwd(), tool);
  return ctx.tool ? 0 : 1;
}
