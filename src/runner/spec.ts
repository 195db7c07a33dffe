/**
 * RunSpec: everything a driver needs to start one sandbox, fully resolved and serialisable.
 * Policy is decided above (src/app); a driver only translates this into its mechanism.
 * Host paths are absolute and already validated; guest paths are absolute POSIX paths.
 */
export interface RunSpec {
  /** Tool name, for status and messages. */
  tool: string;
  /** Read-only root filesystem layers, lowest first: the image rootfs, then build layers. */
  layers: string[];
  /** The project root on the host, mounted read-write at `/workspace`. */
  workspace: string;
  /** Working directory inside the sandbox (a subdirectory of /workspace, or /workspace). */
  cwd: string;
  /** argv[0] is resolved inside the sandbox's PATH. */
  argv: string[];
  /** The complete environment of the command; nothing else of the host's enters. */
  env: Record<string, string>;
  /** Extra mounts (tool caches, passFiles, trusted extra mounts). */
  mounts: Mount[];
  /** Guest paths inside /workspace that are bound read-only (.git/hooks, silo.toml, ...), when they exist. */
  readonlyPaths: string[];
  /** Guest paths inside /workspace hidden behind an empty, writable, discarded directory (`[mount] exclude`). */
  maskedPaths: string[];
  /**
   * The project's `.git` directory (`lower`, a host path), seen at `guest` through an overlay whose
   * upper, work dir and mount point are `dir`/upper, /work and /mnt (created by the caller, which applies
   * what is safe of the upper to the real `.git` after the sandbox: src/app/git-guard.ts). A mount point
   * cannot be renamed or replaced from inside. Missing: /workspace/.git is whatever the project has.
   */
  gitOverlay?: { lower: string; dir: string; guest: string };
  /** Allocate/keep a terminal: stdin is a TTY and the tool is interactive. */
  tty: boolean;
  hostname: string;
  /**
   * Limits (THREATS.md invariant 8), sizes in MiB: /tmp's (and /dev/shm's) size, the writable layer's
   * (`rootfsMB`: a thrown-away run's overlay upper) and the number of processes (the bwrap driver enforces
   * these; missing: no cap), cpus and memory (where a driver can: a delegated cgroup).
   */
  resources: { cpus?: number; memoryMB?: number; tmpMB?: number; rootfsMB?: number; pids?: number };
  network: NetworkSpec;
  /**
   * When set, the sandbox's writes to the root filesystem land in this host directory (an overlay upper
   * dir, with whiteouts) instead of being discarded: this is how `silo build` captures a layer.
   */
  captureUpper?: string;
  /**
   * The sandbox may make setuid/setgid files and set file capabilities (`silo build`, whose layer lives in
   * SILO_HOME or a private directory of the project's `.silo`: dpkg sets them). Missing: refused, so no
   * host user can run a file the sandbox made as its owner (THREATS.md invariant 2).
   */
  keepSetuid?: boolean;
  /** How to re-invoke silo itself on the host (for helpers like the network relay). */
  self: string[];
}

export interface Mount {
  host: string;
  guest: string;
  readonly: boolean;
  /** `file` binds one file; `dir` a directory (created on the host if missing, for caches). */
  kind: "file" | "dir";
}

export interface NetworkSpec {
  /**
   * `none`: loopback only, nothing leaves. `proxy`: loopback only plus an HTTP(S) proxy on 127.0.0.1:port
   * inside the sandbox, relayed to `proxySocket` on the host. There is deliberately no "open" mode.
   */
  mode: "none" | "proxy";
  /** Unix socket of the host-side egress proxy (mode `proxy`). */
  proxySocket?: string;
  /** Port the relay listens on inside the sandbox. */
  proxyPort?: number;
  /** `host.silo.internal` reaches the host's loopback services (through a relay). */
  hostAccess: boolean;
  /** Unix socket on the host that forwards to host loopback (hostAccess). */
  hostSocket?: string;
  /**
   * Ports on `host.silo.internal` (127.0.0.2 in the sandbox) relayed to the same port on host loopback.
   * Missing: the relay asks the host bridge for the ports listening on host loopback at start.
   */
  hostPorts?: number[];
  /** Host port → guest port forwards while the command runs. */
  ports: { host: number; guest: number }[];
  /** Unix socket the in-sandbox relay listens on for those forwards (the host side connects to it). */
  forwardSocket?: string;
  /** ssh-agent socket on the host to expose at /run/silo/ssh-agent.sock (trusted config only). */
  sshAgent?: string;
}

export interface RunResult {
  /** Exit code of the command, or 128+n when killed by signal n. */
  code: number;
  signal?: string;
}

/** 128 + signal number, as shells report death by signal. */
export function exitCodeFor(code: number | null, signal: string | null | undefined): number {
  if (code !== null && code !== undefined) return code;
  const n = signal ? (SIGNALS[signal] ?? 0) : 0;
  return 128 + n;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
};

/** The name of signal `n` (Linux numbering), for exitCodeFor; null for 0 or one it does not know. */
export const signalNameOf = (n: number): string | null => Object.keys(SIGNALS).find((k) => SIGNALS[k] === n) ?? null;

/** Where the proxy relay listens inside a sandbox unless NetworkSpec.proxyPort says otherwise. */
export const DEFAULT_PROXY_PORT = 3128;
/** The guest address of host.silo.internal (all of 127/8 is loopback, so no interface needs configuring). */
export const HOST_ALIAS_ADDRESS = "127.0.0.2";
