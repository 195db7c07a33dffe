/**
 * `[mount] exclude` → the project-relative paths to hide, resolved before the sandbox starts.
 *
 * Literal patterns cost one path each (a stat only for a trailing-slash one). Globs are expanded by one
 * names-only walk of the project (readdir with file types: no stat per entry), started at the deepest
 * literal directory the patterns allow (`certs/*.pem` walks certs/ only), never entering a symbolic link
 * or SILO_HOME, and never descending into a directory it already hides. The bwrap plan then resolves each
 * path: a matched symlink hides its target only when that lies inside the project.
 *
 * What the sandbox creates after it starts is not matched (it wrote it; it has it anyway).
 */
import { lstatSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { matchesExclude, parseExcludes, type ExcludePattern } from "../config/exclude.ts";

/** Entries one walk may visit; a bigger tree gets an error rather than a partial (silent) expansion. */
export const MAX_WALK = 1_000_000;
/** Paths globs may hide: each is a mount in the sandbox. */
export const MAX_MATCHES = 4096;

/** `skip`: a project-relative directory the walk must not enter (SILO_HOME, hidden separately). */
export function excludedPaths(root: string, patterns: readonly string[], skip?: string): string[] {
  if (patterns.length === 0) return [];
  // A leading slash anchors at the project root, but configs written before globs may name the project's
  // own absolute path (`/home/me/app/.env`): that still means the path inside it.
  const parsed = parseExcludes(patterns.map((p) => (p.startsWith(`${root}/`) ? p.slice(root.length) : p)));
  const out = new Set<string>();
  for (const p of parsed) {
    if (p.path === undefined) continue;
    if (p.dirOnly && !isDir(join(root, p.path))) continue;
    out.add(p.path);
  }
  const globs = parsed.filter((p) => p.regex);
  // The walk enters neither SILO_HOME nor what a literal already hides.
  const prune = new Set(out);
  if (skip) prune.add(skip);
  if (globs.length) for (const rel of walkMatches(root, globs, prune)) out.add(rel);
  return [...out];
}

function walkMatches(root: string, globs: ExcludePattern[], prune: Set<string>): string[] {
  const found: string[] = [];
  let visited = 0;
  const stack = startDirs(root, globs);
  while (stack.length) {
    const dir = stack.pop()!;
    let entries;
    try {
      entries = readdirSync(dir ? join(root, dir) : root, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue; // gone since its parent was listed
      // Unreadable here (a 000 directory of the user's own, which the sandbox's root may read or chmod):
      // what cannot be examined is hidden whole, never passed over.
      if (!dir) throw new SiloError("E_CONFIG", `[mount] exclude: cannot list the project to match its patterns (${code})`);
      log.warn(`[mount] exclude: cannot list ${dir}/ (${code}) to match the patterns; hiding it whole`);
      found.push(dir);
      continue;
    }
    for (const d of entries) {
      if (++visited > MAX_WALK)
        throw new SiloError("E_CONFIG", `[mount] exclude: the project has more than ${MAX_WALK} entries to match ${globs.map((g) => `\`${g.source}\``).join(", ")} against`, "anchor the glob in a directory (`certs/*.pem`) or name the paths");
      const rel = dir ? `${dir}/${d.name}` : d.name;
      // A symlink counts as a file, as in git: never entered, hidden only where it leads inside the project.
      const dirent = d.isDirectory();
      if (globs.some((g) => matchesExclude(g, rel, dirent))) {
        found.push(rel);
        if (found.length > MAX_MATCHES)
          throw new SiloError("E_CONFIG", `[mount] exclude: ${globs.map((g) => `\`${g.source}\``).join(", ")} match more than ${MAX_MATCHES} paths`, "hide their directories instead (`build/`), which is one mount");
      } else if (dirent && !prune.has(rel)) stack.push(rel);
    }
  }
  return found;
}

/** Where the walk starts: every glob's literal base, or the root when one may match anywhere. */
function startDirs(root: string, globs: ExcludePattern[]): string[] {
  if (globs.some((g) => g.base === "")) return [""];
  const bases = [...new Set(globs.map((g) => g.base))].sort();
  // Drop a base inside another (the outer walk covers it); sorted, a parent comes before its children.
  const outer = bases.filter((b, i) => !bases.slice(0, i).some((a) => b.startsWith(`${a}/`)));
  return outer.filter((b) => realDirs(root, b));
}

/** Is every component of `rel` a directory, not a symlink (a link could lead the walk out of the project)? */
function realDirs(root: string, rel: string): boolean {
  let p = root;
  for (const c of rel.split("/")) {
    p = join(p, c);
    if (!lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) return false;
  }
  return true;
}

const isDir = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
