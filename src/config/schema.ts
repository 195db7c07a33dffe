import { arr, bool, num, obj, rec, str, union, type Schema } from "./_schema-dsl.ts";
import { checkExcludePattern } from "./exclude.ts";

// --- names that become host path components ------------------------------------------------------

/**
 * Tool, cache and plugin names are joined into host paths (SILO_HOME/cache/<tool>/<name>,
 * SILO_HOME/builds/<tool>, <project>/.silo/<tool>): one component, starting with a letter or digit, so
 * never `.`, `..`, a `/` or NUL. (`joinUnder` checks again where the path is made.)
 */
const TOOL_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** An image tag (the OCI grammar): a version is `image:<version>`, and keys what is built on it. */
const VERSION = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const toolNameIssue = (n: string) => (TOOL_NAME.test(n) ? null : `\`${show(n)}\` is not a valid tool name (a-z, 0-9, . _ -)`);
const cacheNameIssue = (n: string) => (CACHE_NAME.test(n) ? null : `\`${show(n)}\` is not a valid cache name (letters, digits, . _ -)`);
const versionIssue = (v: string) => (VERSION.test(v) ? null : `\`${show(v)}\` is not a valid version (an image tag: letters, digits, . _ -)`);
/** A path inside the sandbox: absolute, without `..` or NUL. */
const guestPathIssue = (p: string) =>
  p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0") ? null : `\`${show(p)}\` is not an absolute path inside the sandbox`;
/** A host file named in the global config: absolute, or `~/` for the user's home. */
const hostFileIssue = (p: string) =>
  (p.startsWith("/") || p.startsWith("~/")) && !p.includes("\0") ? null : `\`${show(p)}\` is not an absolute path (or ~/path)`;
/** A project-relative marker file name (`silo init`): relative, without `..` or NUL. */
const relPathIssue = (p: string) =>
  p && !p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0") ? null : `\`${show(p)}\` is not a relative path inside the project`;
const show = (s: string) => s.replaceAll("\0", "\\0");

// --- shared pieces -------------------------------------------------------------------------------

/** Network policy. Missing `proxy.allow` means no egress at all; `["*"]` means any public host. */
export interface NetworkConfig {
  /** `host.silo.internal` reaches services on the host's loopback. Widening: trusted configs only. */
  hostAccess?: boolean;
  /** Host ports reachable through host.silo.internal when hostAccess is on (empty: all ports). */
  hostPorts?: number[];
  proxy?: {
    /** Host patterns reachable through the egress proxy (`api.example.com`, `*.github.com`, `*`). */
    allow?: string[];
    /** Host patterns never reachable; deny beats allow. */
    deny?: string[];
    /** Extra hosts reachable only during `silo build` and registry `postInstall` steps. */
    installAllow?: string[];
  };
}
/** The top-level `[network]`: NetworkConfig plus what only applies to every tool at once. */
export interface TopNetworkConfig extends NetworkConfig {
  /**
   * PEM files of CAs appended to the sandbox's system bundle (app/ca-bundle.ts), for networks whose egress
   * re-signs TLS. Widening (a host file enters the sandbox, and every TLS client in it trusts it).
   */
  caCertificates?: string[];
}
export interface PortForward {
  host: number;
  guest: number;
}
/**
 * Limits of one sandbox (THREATS.md invariant 8). An untrusted project file may only lower them
 * (config/resolve.ts resolveResources); `pids` and `tmp` have defaults (DEFAULT_LIMITS), cpus and memory none.
 */
export interface Resources {
  cpus?: number;
  /** Memory limit such as `2g` or `512m`. */
  memory?: string;
  /**
   * Size of the sandbox's /tmp, and of its /dev/shm (each a RAM tmpfs of its own), such as `1g`. Default: a
   * quarter of the host's memory.
   */
  tmp?: string;
  /**
   * What a run may write to its root filesystem outside /workspace, /tmp and the mounts: the image's
   * writable layer, thrown away at exit and held in RAM (a tmpfs), such as `4g`. Default: a quarter of the
   * host's memory. A `silo build` keeps its layer on disk and is not capped by it.
   */
  rootfs?: string;
  /** Processes and threads of the sandbox at once. Default 8192. */
  pids?: number;
}
export interface MountConfig {
  /**
   * Project paths hidden from the sandbox (an empty, writable, discarded directory or an empty file in
   * their place): root-relative paths, or gitignore-style globs matched before the sandbox starts
   * (config/exclude.ts). Narrowing: applies untrusted too.
   */
  exclude?: string[];
  /** Protected project paths (.git/hooks, .vscode, ...) made writable. Widening. */
  writable?: string[];
  /** More project paths to protect like .envrc (read-only, or quarantined if created). Narrowing. */
  protect?: string[];
  /** Extra host directories. Widening. */
  extra?: { host: string; guest: string; readonly?: boolean }[];
}

const portNum = num({ int: true, min: 1 });
const hostPattern = str((p) => (p === "*" || /^(\*\.)?[a-z0-9.-]+$|^\[?[0-9a-f:.]+\]?(\/\d{1,3})?$/i.test(p) ? null : `\`${p}\` is not a host pattern`));

const networkFields = {
  hostAccess: bool(),
  hostPorts: arr(portNum),
  proxy: obj({ allow: arr(hostPattern), deny: arr(hostPattern), installAllow: arr(hostPattern) }),
};
export const networkSchema: Schema = obj(networkFields);
const topNetworkSchema: Schema = obj({ ...networkFields, caCertificates: arr(str(hostFileIssue)) });
/** `512m` → 512; `2g` → 2048 (MiB, rounded); not a size → 0. */
export function parseSizeMB(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmgt]?)b?$/i.exec(s.trim());
  if (!m) return 0;
  const mult: Record<string, number> = { "": 1 / (1024 * 1024), k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

const sizeIssue = (m: string) => (/^\d+(\.\d+)?[kmgt]?b?$/i.test(m) ? null : `\`${m}\` is not a size like 512m or 2g`);
// A limit is at least 1 MiB: a size of 0 (or one that rounds to it) would read as "no cap" further down.
const limitIssue = (m: string) => sizeIssue(m) ?? (parseSizeMB(m) >= 1 ? null : `\`${m}\` is below the smallest limit, 1m`);
const resourcesSchema = obj({ cpus: num({ min: 0.1 }), memory: str(limitIssue), tmp: str(limitIssue), rootfs: str(limitIssue), pids: num({ int: true, min: 1 }) });
const portsSchema = arr(obj({ host: portNum, guest: portNum }));
const mountSchema = obj({
  exclude: arr(str(checkExcludePattern)),
  writable: arr(str()),
  protect: arr(str()),
  extra: arr(obj({ host: str(), guest: str(), readonly: bool() })),
});

// --- silo.toml (project and global) --------------------------------------------------------------

/** Per-tool overrides in silo.toml: `[overrides.<tool>]`. */
export interface ToolOverride {
  /** A different image (widening: trusted configs only). */
  image?: string;
  version?: string;
  env?: Record<string, string>;
  passEnv?: string[];
  passFiles?: string[];
  /** Forward the host's ssh-agent to this tool only. Widening. */
  passSshAgent?: boolean;
  network?: NetworkConfig;
  ports?: PortForward[];
  resources?: Resources;
  /**
   * Another language server for `silo lsp` (pylsp, ruff server instead of pyright). `command` and `install`
   * choose what runs: widening. `env` is the server's environment (values from the file, like `env`).
   */
  lsp?: LspOverride;
}

export interface LspOverride {
  command?: string[];
  /** Run once per image into a shared layer (nothing of the project in it); with `command`, only this one. */
  install?: string[];
  env?: Record<string, string>;
}

export interface SiloConfig {
  /** Sandbox driver: `auto`, `bwrap`, `qemu` or `apple` (global file; `--driver` and SILO_DRIVER win). */
  driver?: string;
  /**
   * Tools this project uses: a table with pinned versions (`silo use python@3.11-slim`) or a list of names
   * (`tools = ["python", "node"]`; loadProject turns it into claims without versions). The list is a claim:
   * the shims of tools not in it run the next command on PATH. Only a trusted file's claims count (an
   * untrusted file's would send shims to host binaries); its version pins apply either way (a tag of the
   * image that trusted configuration names, still sandboxed).
   */
  tools?: Record<string, string>;
  /** Host environment variables passed into every sandbox. Widening. */
  passEnv?: string[];
  /** Host files bound read-only at the same path under /root (relative to the project or home). Widening. */
  passFiles?: string[];
  /** Forward the host's ssh-agent socket. Widening. */
  passSshAgent?: boolean;
  /** Environment for every tool (not widening: values come from the file, not the host). */
  env?: Record<string, string>;
  mount?: MountConfig;
  network?: TopNetworkConfig;
  resources?: Resources;
  overrides?: Record<string, ToolOverride>;
  cache?: {
    rootfs?: { maxSizeMB?: number; maxAgeDays?: number };
    tools?: { maxSizeMB?: number; perMount?: Record<string, number> };
  };
  /** Global file only: registry mirrors and plain-HTTP hosts. */
  images?: { mirrors?: Record<string, string>; insecure?: string[] };
  /** Global file only: where the tool registry comes from (a giget source). */
  registry?: { source?: string };
  /**
   * Global file only: directories whose silo.toml counts although another user owns the directory or the
   * file, or other users can write it (shared checkouts; git's safe.directory). Missing or empty: none.
   */
  safeDirectories?: string[];
}

const overrideSchema = obj({
  image: str(),
  version: str(versionIssue),
  env: rec(str()),
  passEnv: arr(str()),
  passFiles: arr(str()),
  passSshAgent: bool(),
  network: networkSchema,
  ports: portsSchema,
  resources: resourcesSchema,
  lsp: obj({ command: arr(str()), install: arr(str()), env: rec(str()) }),
});

export const siloConfigSchema: Schema = obj({
  driver: str((d) => (["auto", "bwrap", "qemu", "apple"].includes(d) ? null : `unknown driver \`${d}\` (auto, bwrap, qemu, apple)`)),
  tools: union("a table of tool = version, or a list of tool names", rec(str(versionIssue), toolNameIssue), arr(str(toolNameIssue))),
  passEnv: arr(str()),
  passFiles: arr(str()),
  passSshAgent: bool(),
  env: rec(str()),
  mount: mountSchema,
  network: topNetworkSchema,
  resources: resourcesSchema,
  overrides: rec(overrideSchema, toolNameIssue),
  cache: obj({
    rootfs: obj({ maxSizeMB: num({ min: 0 }), maxAgeDays: num({ min: 0 }) }),
    tools: obj({ maxSizeMB: num({ min: 0 }), perMount: rec(num({ min: 0 })) }),
  }),
  images: obj({ mirrors: rec(str()), insecure: arr(str()) }),
  registry: obj({ source: str() }),
  safeDirectories: arr(str()),
});

/** Keys of a project silo.toml that widen access; ignored until the file is trusted. */
export const WIDENING_KEYS = [
  "passEnv",
  "passFiles",
  "passSshAgent",
  "mount.writable",
  "mount.extra",
  "network.hostAccess",
  "network.hostPorts",
  "network.proxy.allow",
  "network.proxy.installAllow",
  "network.caCertificates",
  "overrides.*.image",
  "overrides.*.passEnv",
  "overrides.*.passFiles",
  "overrides.*.passSshAgent",
  "overrides.*.network.hostAccess",
  "overrides.*.network.hostPorts",
  "overrides.*.network.proxy.allow",
  "overrides.*.network.proxy.installAllow",
  "overrides.*.ports",
  "overrides.*.lsp.command",
  "overrides.*.lsp.install",
  "images",
  "registry",
  "driver",
  "safeDirectories",
] as const;

// --- registry/<tool>.toml ------------------------------------------------------------------------

export interface ToolDef {
  name: string;
  description: string;
  /** Image repository without tag, e.g. `docker.io/library/python`. */
  image: string;
  versions: { default: string; available: string[]; labels?: Record<string, string> };
  /** `name` or `host:container command` (e.g. `ipython:python -m IPython`). */
  shims: string[];
  /** Plugin with behaviours for this tool (python, node, rust, go); none for data-only tools. */
  plugin?: string;
  workdir?: string;
  env?: Record<string, string>;
  /** Persistent caches mounted at `path`; where they live on the host depends on `scope` (CacheMount). */
  cache?: CacheMount[];
  resources?: Resources;
  network?: NetworkConfig;
  lsp?: { command: string[]; install?: string[] };
  /** Tools this one needs installed too. */
  requires?: string[];
  /** Commands run once at install, baked into the tool's global layer. */
  postInstall?: string[];
  /** Project marker files for `silo init`. */
  detect?: string[];
}

/**
 * A persistent cache of a tool (THREATS.md invariant 6: one project's sandbox writes it, so only what the
 * tool verifies before trusting may be seen by another project).
 * - `project` (the default): SILO_HOME/cache/<tool>/projects/<key>/<name>, one per project; the key is a
 *   hash of the project root's real path, inode number and birth time on the host, which the sandbox
 *   cannot choose (app/cache-mounts.ts). Global builds have their own: projects/global-build/<name>.
 * - `shared`: SILO_HOME/cache/<tool>/<name>, every project's. Only for a store the tool checks against a
 *   digest it got elsewhere before anything it holds is used; say why in the TOML. No shipped tool has one
 *   (npm's _cacache is not such a store: pacote unpacks a tarball before its integrity check fails).
 * - `login`: one file, SILO_HOME/cache/<tool>/<name>/<file name>, bound read-only into every project. While
 *   it does not exist, each project logs in on its own (the file lives in its own cache); `silo cache
 *   share-login TOOL` in a project makes that project's login the shared one (never automatic).
 *   `path` must lie inside a `project` cache of the same tool.
 */
export interface CacheMount {
  name: string;
  path: string;
  scope?: CacheScope;
}
export const CACHE_SCOPES = ["project", "shared", "login"] as const;
export type CacheScope = (typeof CACHE_SCOPES)[number];

/** A cache name (cacheNameIssue), and not the directory of the per-project caches. */
const checkCacheName = (n: string) => cacheNameIssue(n) ?? (n === "projects" ? "`projects` is reserved (per-project caches live there)" : null);
/** A guest path (guestPathIssue), normalized (nested mounts are ordered by it), and not over the project or a kernel filesystem. */
function checkCacheGuestPath(p: string): string | null {
  const issue = guestPathIssue(p);
  if (issue) return issue;
  if (p === "/" || p.endsWith("/") || p.split("/").slice(1).some((c) => c === "" || c === "."))
    return `\`${show(p)}\` is not a normalized path inside the sandbox`;
  const top = p.split("/")[1]!;
  return ["workspace", "proc", "dev", "sys", "run"].includes(top) ? `a cache cannot be mounted under /${top}` : null;
}
const checkCacheScope = (s: string) => ((CACHE_SCOPES as readonly string[]).includes(s) ? null : `unknown scope \`${s}\` (${CACHE_SCOPES.join(", ")})`);

export const toolDefSchema: Schema = obj({
  name: str(toolNameIssue),
  description: str(),
  image: str(),
  versions: obj({ default: str(versionIssue), available: arr(str(versionIssue)), labels: rec(str(versionIssue), versionIssue) }),
  shims: arr(str((s) => (/^[A-Za-z0-9._+-]+(:.+)?$/.test(s) ? null : `\`${s}\` is not a shim (name or name:command)`))),
  plugin: str(toolNameIssue),
  workdir: str(guestPathIssue),
  env: rec(str()),
  cache: arr(obj({ name: str(checkCacheName), path: str(checkCacheGuestPath), scope: str(checkCacheScope) })),
  resources: resourcesSchema,
  network: networkSchema,
  lsp: obj({ command: arr(str()), install: arr(str()) }),
  requires: arr(str(toolNameIssue)),
  postInstall: arr(str()),
  detect: arr(str(relPathIssue)),
});
export const REQUIRED_TOOL_KEYS = ["name", "description", "image", "versions", "shims"] as const;

// --- SILO_HOME/config.toml: what is installed ----------------------------------------------------

export interface InstalledTool {
  version: string;
  /** Full image reference that was pulled. */
  image: string;
  /** Manifest digest of the pulled platform image; the rootfs is keyed by it. */
  digest: string;
  installedAt: string;
  /** The resolved tool definition at install time (custom tools have only this). */
  definition: ToolDef;
  /** Shims added with `silo shim add` on top of the definition's. */
  extraShims?: string[];
}
export interface InstalledConfig {
  tools: Record<string, InstalledTool>;
}
