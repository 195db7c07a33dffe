/**
 * The user's git identity in the sandbox: `user.name` and `user.email` from the host's global and system
 * git config, passed as GIT_AUTHOR_* and GIT_COMMITTER_* so that `git commit` inside works as on the host.
 * Nothing else of the git config goes in (credential helpers, url rewrites, aliases and includes stay on
 * the host), and the project's own `.git/config` is never read: it is the attacker's (THREATS.md), and its
 * `include.path` could pull `user.*` out of any file of the user's.
 *
 * Asking git costs a process (~2 ms) that every shim call would pay, so the answer is cached in
 * SILO_HOME/state/git-identity.json, keyed on the variables that choose git's config files and on the
 * content of those files and of every file they include. Conditional includes (`includeIf`) never match:
 * git runs outside any repository here.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { findOtherOnPath, writeFileAtomic } from "../core/fs.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";

export interface GitIdentity {
  name?: string;
  email?: string;
}

/** What git reads to find its global and system files (and nothing that adds config of its own). */
const CONFIG_VARS = ["HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"] as const;

interface CacheEntry {
  vars: string;
  /** Each file the answer depends on, with a hash of its content ("-": missing). */
  files: [string, string][];
  identity: GitIdentity;
}

/** GIT_AUTHOR_NAME/EMAIL and GIT_COMMITTER_NAME/EMAIL for what the host's git config says (empty when nothing). */
export function gitIdentityEnv(home: HomePaths): Record<string, string> {
  const id = readGitIdentity(home);
  const env: Record<string, string> = {};
  if (id.name) env.GIT_AUTHOR_NAME = env.GIT_COMMITTER_NAME = id.name;
  if (id.email) env.GIT_AUTHOR_EMAIL = env.GIT_COMMITTER_EMAIL = id.email;
  return env;
}

export function readGitIdentity(home: HomePaths): GitIdentity {
  const cacheFile = join(home.state, "git-identity.json");
  const vars = CONFIG_VARS.map((k) => `${k}=${process.env[k] ?? ""}`).join("\0");
  try {
    const c = JSON.parse(readFileSync(cacheFile, "utf8")) as CacheEntry;
    if (c.vars === vars && c.files.every(([f, h]) => hashFile(f) === h)) return c.identity;
  } catch {
    /* no cache yet, or a corrupt one: asked again below */
  }
  const git = findHostGit();
  // No git on the host: nothing to ask (and nothing cached, so installing git later is noticed).
  if (!git) return {};
  const before = standardFiles().map((f): [string, string] => [f, hashFile(f)]);
  const answer = askGit(git);
  if (!answer) return {};
  const files = [...before];
  for (const f of answer.origins) if (!files.some(([g]) => g === f)) files.push([f, hashFile(f)]);
  // A file edited while git read it: use the answer, but cache nothing that could be stale.
  if (before.every(([f, h]) => hashFile(f) === h)) {
    try {
      writeFileAtomic(cacheFile, JSON.stringify({ vars, files, identity: answer.identity } satisfies CacheEntry));
    } catch (e) {
      log.debug(`git identity: not cached: ${(e as Error).message}`);
    }
  }
  return answer.identity;
}

/**
 * `git config --list` of the global and system files only. GIT_DIR=/dev/null (no repository can be
 * there) and cwd `/` keep the project's `.git` out; the environment holds only the variables that pick
 * the files, so GIT_CONFIG_COUNT/GIT_CONFIG_PARAMETERS of the calling shell add nothing.
 */
function askGit(git: string): { identity: GitIdentity; origins: string[] } | null {
  const env: Record<string, string> = { GIT_DIR: "/dev/null", LC_ALL: "C" };
  for (const k of CONFIG_VARS) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  let r;
  try {
    r = Bun.spawnSync([git, "config", "--includes", "--show-origin", "-z", "--list"], { cwd: "/", env, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  } catch (e) {
    log.debug(`git identity: cannot run ${git}: ${(e as Error).message}`);
    return null;
  }
  // A failure (no config file at all, one git cannot parse) is an answer too: no identity until the files change.
  if (r.exitCode !== 0) {
    log.debug(`git identity: \`git config --list\` exited ${r.exitCode}`);
    return { identity: {}, origins: [] };
  }
  const identity: GitIdentity = {};
  const origins = new Set<string>();
  const fields = r.stdout.toString().split("\0");
  // -z --show-origin: `file:<path>` NUL `<key>` LF `<value>` NUL, per entry; the last value of a key wins.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const origin = fields[i]!;
    const entry = fields[i + 1]!;
    if (origin.startsWith("file:")) origins.add(origin.slice(5));
    const nl = entry.indexOf("\n");
    const key = (nl < 0 ? entry : entry.slice(0, nl)).toLowerCase();
    const value = nl < 0 ? "" : entry.slice(nl + 1);
    if (key === "user.name") identity.name = value;
    else if (key === "user.email") identity.email = value;
  }
  return { identity, origins: [...origins].filter((f) => isAbsolute(f)) };
}

/** The files git reads for its global and system scopes, whether they exist now or not. */
function standardFiles(): string[] {
  const e = process.env;
  const files: string[] = [];
  if (!isTrue(e.GIT_CONFIG_NOSYSTEM)) files.push(e.GIT_CONFIG_SYSTEM || "/etc/gitconfig");
  if (e.GIT_CONFIG_GLOBAL) files.push(e.GIT_CONFIG_GLOBAL);
  else {
    const xdg = e.XDG_CONFIG_HOME || (e.HOME ? join(e.HOME, ".config") : "");
    if (xdg) files.push(join(xdg, "git/config"));
    if (e.HOME) files.push(join(e.HOME, ".gitconfig"));
  }
  return files.filter((f) => isAbsolute(f));
}

const isTrue = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

function hashFile(f: string): string {
  try {
    return Bun.hash(readFileSync(f)).toString(16);
  } catch {
    return "-";
  }
}

/**
 * The host's git: the first `git` in an absolute PATH entry that is not silo itself (a tool may own a
 * `git` shim: that would run a sandbox, or loop). A relative entry would be looked up in the project.
 */
function findHostGit(): string | null {
  return findOtherOnPath("git", true);
}

