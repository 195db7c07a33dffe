import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import { findProjectConfig, trustRecordPath } from "../config/locate.ts";
import type { InstalledTool } from "../config/schema.ts";
import type { ProjectConfig, ResolvedTool } from "../config/resolve.ts";
import { VERSION } from "../version.ts";

/** What `silo run` needs from configuration, resolved once and cached by the stat of every input file. */
export interface RunContext {
  project: Pick<ProjectConfig, "root" | "file" | "trust" | "ignored"> & {
    driver?: string;
    /** Tools the project's silo.toml lists under [tools]; null when it lists none (every tool is welcome). */
    claimed: string[] | null;
  };
  installed: InstalledTool | null;
  tool: ResolvedTool | null;
}

/**
 * The resolved-config cache: c12, defu, the TOML parser and schema checks cost tens of milliseconds of
 * start-up that every shim call would pay. Their result depends only on a few files, so it is keyed on
 * those files' (inode, size, mtime): any edit, trust or install invalidates it.
 */
function signature(home: HomePaths, projectFile: string | null, tool: string): string {
  const files = [home.globalConfig, home.installed, projectFile, projectFile && trustRecordPath(home, projectFile)];
  const parts: string[] = [VERSION, tool, projectFile ?? "", process.env.SILO_DRIVER ?? ""];
  for (const f of files) {
    if (!f) continue;
    try {
      const s = statSync(f);
      parts.push(`${f}:${s.ino}:${s.size}:${s.mtimeMs}`);
    } catch {
      parts.push(`${f}:-`);
    }
  }
  return parts.join("|");
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
  const projectFile = findProjectConfig(cwd);
  const sig = signature(home, projectFile, toolName);
  const key = Bun.hash(`${projectFile ?? cwd}\0${toolName}`).toString(16);
  const cacheFile = join(home.state, "resolved", `${key}.json`);
  if (existsSync(cacheFile)) {
    try {
      const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as { sig: string; ctx: RunContext };
      if (cached.sig === sig) {
        log.debug("config: resolved-config cache hit");
        // A cached context must still say which directory is the project when there is no silo.toml.
        if (!projectFile) cached.ctx.project.root = cwd;
        warnIgnored(cached.ctx);
        return cached.ctx;
      }
    } catch {
      /* a corrupt cache entry is rebuilt below */
    }
  }
  const ctx = await resolveRunContext(home, cwd, toolName);
  mkdirSync(join(home.state, "resolved"), { recursive: true });
  writeFileAtomic(cacheFile, JSON.stringify({ sig, ctx }));
  warnIgnored(ctx);
  return ctx;
}

function warnIgnored(ctx: RunContext) {
  const p = ctx.project;
  if (!p.file || p.ignored.length === 0) return;
  const what = p.trust === "changed" ? "changed since you trusted it" : "not trusted";
  log.warn(`${p.file} is ${what}; ignoring ${p.ignored.join(", ")}. Review it, then run \`silo trust\` to apply them.`);
}

async function resolveRunContext(home: HomePaths, cwd: string, toolName: string): Promise<RunContext> {
  const { loadProject, resolveTool } = await import("../config/resolve.ts");
  const { readInstalled } = await import("../config/installed.ts");
  const project = await loadProject(cwd, home);
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
      claimed: project.project.tools ? Object.keys(project.project.tools) : null,
    },
    installed,
    tool,
  };
}

export function toolNotInstalled(name: string): SiloError {
  return new SiloError("E_TOOL_NOT_INSTALLED", `tool \`${name}\` is not installed`, `run \`silo install ${name}\` first`, 127);
}

/** `silo __resolve TOOL`: config resolution alone, as `silo run` does it (for the start-up benchmark). */
export async function resolveOnly(tool: string): Promise<number> {
  const { homePaths } = await import("../core/paths.ts");
  const ctx = await loadRunContext(homePaths(), process.cwd(), tool);
  return ctx.tool ? 0 : 1;
}
