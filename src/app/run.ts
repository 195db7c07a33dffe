import { existsSync, lstatSync, realpathSync } from "node:fs";
import { basename, isAbsolute, join, normalize, relative, resolve } from "node:path";
import { EXIT, SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { isatty } from "../core/tty.ts";
import { mark } from "../core/trace.ts";
import { realpathOr, startReaper, type Reaper } from "../core/fs.ts";
import { homePaths, type HomePaths } from "../core/paths.ts";
import { buildLayersFor } from "../cache/layers.ts";
import type { Driver, RunHooks } from "../runner/driver.ts";
import type { HandoffHooks } from "../runner/drivers/bwrap/handoff.ts";
import type { Mount, NetworkSpec, RunSpec } from "../runner/spec.ts";
import { loadRunContext, toolNotInstalled, type RunContext } from "./context.ts";
import { selectDriver } from "./driver-select.ts";
import { maybeAutoGc } from "./auto-gc.ts";
import { protectedPaths, settleProtected, snapshotProtected, watchLines } from "./protect.ts";
import { excludedPaths } from "./exclude.ts";
import { guardGit } from "./git-guard.ts";
import { localImage } from "../image/local.ts";
import { cacheMounts, GLOBAL_BUILD_CACHES, projectCacheKey } from "./cache-mounts.ts";
import { denyWarning, planHostNetwork, proxyEnv } from "../net/plan.ts";
import { loadPlugin } from "../plugin/loaders.ts";
import { gitIdentityEnv } from "./git-identity.ts";

export interface RunOptions {
  tool: string;
  /** Arguments after the tool name (or after the shim's command). */
  args: string[];
  cwd: string;
  /** Invoked through this shim: its command replaces the tool's main command. */
  shim?: string;
  /** An interactive shell instead of a command. */
  shell?: boolean;
  driver?: string;
  tty?: boolean;
  /** `-p host[:guest]` from the command line (the user typed them: no trust needed). */
  ports?: { host: number; guest: number }[];
  /** `-e KEY=VALUE` from the command line. */
  env?: Record<string, string>;
  timing?: boolean;
  purpose?: "run" | "lsp" | "build";
  /** Replace the argv entirely (lsp: the server command). */
  argv?: string[];
  /** `--ssh-agent`: forward the host's agent (SSH_AUTH_SOCK) into the sandbox. */
  sshAgent?: boolean;
  /** A global build's step: the caches of global builds, not the project's (app/cache-mounts.ts). */
  globalBuildCaches?: boolean;
}

export interface PreparedRun {
  spec: RunSpec;
  driver: Driver;
  /** Project root on the host (mounted at /workspace). */
  hostRoot: string;
  /** Hand to driver.run/spawn: what starts once the sandbox is launching (the egress proxy). */
  hooks: RunHooks;
  cleanup(): Promise<void>;
}

/** Turn config + tool + plugin into a RunSpec and pick the driver. Starts host-side network helpers. */
export async function prepareRun(opts: RunOptions, home: HomePaths = homePaths()): Promise<PreparedRun> {
  const t0 = performance.now();
  mark("prepare");
  if (existsSync(join(home.state, "sweep"))) (await import("./strip-setid.ts")).settleOwedSweeps(home); // a killed build's
  const ctx = await loadRunContext(home, opts.cwd, opts.tool);
  mark("config");
  const tool = ctx.tool;
  if (!tool) {
    // `silo run npm install`: npm is a shim of node; run its owner with that shim, as `silo npm install` does.
    const owner = opts.shim || opts.argv || (opts.purpose ?? "run") !== "run" ? undefined : await shimOwner(home, opts.tool);
    if (owner) return prepareRun({ ...opts, tool: owner, shim: opts.tool }, home);
    throw toolNotInstalled(opts.tool);
  }
  const root = checkWorkspace(ctx.project.root);
  // The driver may start slow helpers (bwrap: the network relay, a Bun process) while the image and the
  // host side of the network are prepared.
  const driver = await selectDriver(opts.driver, ctx.project.driver);
  driver.prewarm?.({ network: wantsNetwork(tool, opts), self: selfCommand() });
  const t1 = performance.now();
  const image = await ensureImage(home, ctx);
  const t2 = performance.now();
  mark("image");

  const env = baseEnv(image.config.env);
  // The user's name and email for `git commit` inside (app/git-identity.ts); [env], passEnv and -e win.
  Object.assign(env, gitIdentityEnv(home));
  Object.assign(env, tool.env);
  for (const name of tool.passEnv) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  Object.assign(env, opts.env);
  // `?? []`: a resolved-config cache written by an earlier build of the same version has no caCertificates.
  const ca = (tool.caCertificates ?? []).length > 0 ? await caCertificatesFor(home, ctx, image.rootfs, { ...tool.env, ...opts.env }) : null;
  if (ca) Object.assign(env, ca.env);

  const guestCwd = join("/workspace", relative(root, resolve(opts.cwd)));
  const main = tool.shims[tool.name] ?? Object.values(tool.shims)[0] ?? [tool.name];
  let argv: string[];
  if (opts.argv) argv = opts.argv;
  else if (opts.shell) argv = [existsSync(join(image.rootfs, "bin/bash")) ? "/bin/bash" : "/bin/sh"];
  else if (opts.shim) argv = [...(tool.shims[opts.shim] ?? [opts.shim]), ...opts.args];
  else argv = [...main, ...opts.args];

  const plugin = await loadPlugin(tool.def.plugin);
  if (plugin) {
    const pctx = {
      projectRoot: root,
      guestCwd,
      argv,
      env,
      shims: tool.shims,
      exists: (p: string) => existsInside(root, p),
    };
    Object.assign(env, plugin.env?.(pctx));
    if (!opts.shim && !opts.shell && !opts.argv && plugin.argv) argv = plugin.argv({ ...pctx, argv });
  }

  // Per project unless the tool verifies what it reads there (app/cache-mounts.ts, THREATS.md invariant 6).
  const mounts: Mount[] = cacheMounts(home, tool.name, tool.cache, opts.globalBuildCaches ? GLOBAL_BUILD_CACHES : projectCacheKey(root));
  for (const f of tool.passFiles) mounts.push(resolvePassFile(f, root));
  if (ca) mounts.push(...ca.mounts);
  for (const m of tool.mount.extra) mounts.push({ host: resolveExtraSource(m.host, root), guest: m.guest, readonly: m.readonly, kind: "dir" });

  const runDir = join(home.run, `${process.pid}-${Date.now().toString(36)}`);
  mark("plugin+mounts");
  const net = await startNetwork(tool, opts, runDir);
  mark("network");
  Object.assign(env, net.env);
  // `--ssh-agent` (typed by the user) or a trusted `passSshAgent`; never for a language server.
  const sshAgent = opts.purpose === "lsp" ? undefined : agentSocket(!!opts.sshAgent, tool.passSshAgent);
  if (sshAgent) env.SSH_AUTH_SOCK = "/run/silo/ssh-agent.sock";

  // SILO_HOME inside the project (e.g. a project that is an ancestor of it) must stay out of reach.
  const homeRel = relative(root, home.home);
  const homeInside = homeRel !== "" && !homeRel.startsWith("..") && !isAbsolute(homeRel);
  const masked = excludedPaths(root, tool.mount.exclude, homeInside ? homeRel : undefined).map((p) => join("/workspace", p));
  if (homeInside) masked.push(join("/workspace", homeRel));
  // `writable = [".git"]`: the root .git bound directly, what is inside it too.
  const gitWritable = tool.mount.writable.some((w) => normalize(w).replace(/\/+$/, "") === ".git");
  const writable = gitWritable ? [...tool.mount.writable, ".git/hooks", ".git/config"] : tool.mount.writable;
  // Protected paths (app/protect.ts): bound read-only where they exist, watched where they do not or are symlinks.
  // (`?? []`: a resolved-config cache written by an earlier build of the same version has no `protect`.)
  const { snapshot: protect, readonly } = snapshotProtected(root, tool.name, protectedPaths(root, tool.mount.protect ?? [], writable));
  const git = guardGit(root, tool.name, home, gitWritable);

  const spec: RunSpec = {
    tool: tool.name,
    layers: [image.rootfs, ...buildLayersFor(home, tool.name, root, image.rootfs)],
    workspace: root,
    cwd: guestCwd,
    argv,
    env,
    mounts,
    readonlyPaths: [...git.readonly, ...readonly.map((p) => `/workspace/${p}`)],
    gitOverlay: git.overlay,
    maskedPaths: masked,
    tty: opts.tty ?? (isatty(0) && isatty(1)), // not process.stdin.isTTY: that builds a stream (+MBs of RSS)
    hostname: tool.name,
    resources: tool.resources,
    network: { ...net.spec, sshAgent },
    self: selfCommand(),
  };
  if (opts.timing) log.info(`timing: config ${(t1 - t0).toFixed(1)} ms, image ${(t2 - t1).toFixed(1)} ms`);
  const cleanup = async () => {
    await net.close();
    await settleProtected(home, protect);
    (await import("./git-apply.ts")).finishGit(git.guard, home);
    gitReaper?.release();
  };
  mark("spec");
  // A `silo run` that needs nothing of silo after its sandbox but the proxy and the protected-path check
  // may be handed over to the driver's waiter (the bwrap driver's handoff.ts); --timing reports afterwards.
  const handoff: HandoffHooks | undefined =
    net.handoff && !opts.timing && (opts.purpose ?? "run") === "run"
      ? { ...net.handoff, protect: { watch: watchLines(protect), snapshot: protect }, git: git.guard }
      : undefined;
  // The .git overlay's directory goes with silo however it ends (a dead run's writes are not applied).
  let gitReaper: Reaper | null = null;
  const afterLaunch = async () => {
    if (git.guard.dir) gitReaper = startReaper(git.guard.dir);
    await net.afterLaunch();
  };
  return { spec, driver, hostRoot: root, hooks: { afterLaunch, onFirstConnection: net.onFirstConnection, handoff }, cleanup };
}

/** `silo run`: prepare, run with stdio inherited, clean up; resolves with the exit code to use. */
export async function runTool(opts: RunOptions): Promise<number> {
  const t0 = performance.now();
  const prepared = await prepareRun(opts);
  // Before the sandbox: a run handed over to the driver's waiter never comes back here.
  maybeAutoGc(homePaths(), prepared.spec.self);
  try {
    const t1 = performance.now();
    const result = await prepared.driver.run(prepared.spec, prepared.hooks);
    const t2 = performance.now();
    if (opts.timing) log.info(`timing: start-up ${t0.toFixed(1)} ms, prepare ${(t1 - t0).toFixed(1)} ms, sandbox+command ${(t2 - t1).toFixed(1)} ms`);
    return result.code;
  } finally {
    const t3 = performance.now();
    mark("sandbox done");
    await prepared.cleanup();
    mark("cleaned up");
    if (opts.timing) log.info(`timing: after the sandbox ${(performance.now() - t3).toFixed(1)} ms`);
  }
}

/**
 * The host's ssh-agent socket to bind at /run/silo/ssh-agent.sock, or undefined. bwrap binds whatever the
 * path names, so it must be a socket of this user (SSH_AUTH_SOCK=/home/me would bind the home directory
 * writable); the resolved path is bound, the one checked. `--ssh-agent` without an agent is an error; a
 * configured `passSshAgent` without one runs without it (a shell where no agent was started).
 */
function agentSocket(asked: boolean, configured: boolean): string | undefined {
  if (!asked && !configured) return undefined;
  const where = asked ? "--ssh-agent" : "passSshAgent";
  const sock = process.env.SSH_AUTH_SOCK;
  if (!sock) {
    if (!asked) {
      log.warn("passSshAgent is set but SSH_AUTH_SOCK is not: running without the ssh-agent");
      return undefined;
    }
    throw new SiloError("E_SANDBOX", "--ssh-agent: no ssh-agent (SSH_AUTH_SOCK is not set)", "start one (`eval \"$(ssh-agent)\"`, then `ssh-add`), or run without --ssh-agent");
  }
  const refuse = (why: string) => new SiloError("E_SANDBOX", `${where}: SSH_AUTH_SOCK=${sock} ${why}`, "point SSH_AUTH_SOCK at your running ssh-agent's socket");
  let real: string;
  let st;
  try {
    real = realpathSync(sock);
    st = lstatSync(real);
  } catch {
    throw refuse("does not exist (is the agent still running?)");
  }
  if (!st.isSocket()) throw refuse("is not a socket");
  if (st.uid !== process.getuid!()) throw refuse(`is owned by uid ${st.uid}, not by you`);
  return real;
}

/** The installed tool that owns the shim `name` (only on the way to "not installed": the index is a file read). */
async function shimOwner(home: HomePaths, name: string): Promise<string | undefined> {
  const { readShimIndex } = await import("./shims.ts");
  return readShimIndex(home)[name]?.tool;
}

function checkWorkspace(root: string): string {
  const real = realpathSync(root);
  const home = process.env.HOME ? realpathOr(process.env.HOME) : null;
  if (real === "/" || (home && (real === home || home.startsWith(real + "/"))))
    throw new SiloError(
      "E_SANDBOX",
      `refusing to use ${real} as the workspace: it would expose ${real === "/" ? "the whole filesystem" : "your home directory (~/.ssh, ~/.aws, ...)"} to the sandbox`,
      "run silo from a project directory, or create a silo.toml in the project root (`silo init`)",
    );
  return real;
}


function existsInside(root: string, rel: string): boolean {
  try {
    lstatSync(join(root, rel));
    return true;
  } catch {
    return false;
  }
}

/**
 * A trusted `[mount] extra` source. Trust covers the text `host = "data"`, not what `data` is when the run
 * starts: a sandbox can replace a directory of the project with a symlink to any host path, and bwrap follows
 * it. So below the project root no component may be a symlink (outside the project the user's own paths are
 * as they wrote them). A sandbox of the same project running meanwhile could still swap it between this check
 * and the bind (a concurrent run only).
 */
export function resolveExtraSource(entry: string, root: string): string {
  const host = resolve(root, entry);
  const rel = relative(root, host);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) return host;
  let at = root;
  for (const part of rel.split("/")) {
    at = join(at, part);
    let st;
    try {
      st = lstatSync(at);
    } catch {
      throw new SiloError("E_CONFIG", `[mount] extra: ${at} does not exist`, "create it, or remove the entry from silo.toml");
    }
    if (st.isSymbolicLink())
      throw new SiloError(
        "E_CONFIG",
        `[mount] extra: refusing \`${entry}\`: ${at} is a symbolic link inside the project (a sandbox can make one point anywhere)`,
        "name the real directory in silo.toml, then `silo trust` again",
      );
  }
  return host;
}

/**
 * passFiles: only regular files inside the project or the user's home, named relative to one of them
 * (`~/.npmrc`, `.env.local`); no absolute paths, no `..`, no symlinks. Inside: `~/x` → /root/x.
 */
export function resolvePassFile(entry: string, root: string): Mount {
  const refuse = (why: string) =>
    new SiloError("E_CONFIG", `passFiles: refusing \`${entry}\`: ${why}`, "name a regular file inside the project or as ~/path in your home");
  const home = process.env.HOME ? realpathOr(process.env.HOME) : null;
  if (isAbsolute(entry)) throw refuse("absolute paths are not allowed");
  if (entry.split("/").includes("..")) throw refuse("`..` is not allowed");
  const inHome = entry.startsWith("~/");
  if (inHome && !home) throw refuse("HOME is not set");
  const base = inHome ? home! : root;
  const host = join(base, inHome ? entry.slice(2) : entry);
  let st;
  try {
    st = lstatSync(host);
  } catch {
    throw refuse(`${host} does not exist`);
  }
  if (st.isSymbolicLink()) throw refuse("it is a symbolic link");
  if (!st.isFile()) throw refuse("it is not a regular file");
  const real = realpathSync(host);
  if (!real.startsWith(base + "/")) throw refuse(`it resolves outside ${inHome ? "your home" : "the project"}`);
  return { host: real, guest: inHome ? join("/root", entry.slice(2)) : join("/workspace", entry), readonly: true, kind: "file" };
}

/**
 * `[network] caCertificates` (app/ca-bundle.ts, loaded only when some are configured): the image's bundle
 * plus those CAs, bound over the image's bundle paths, and the variables that name it. A bad entry is the
 * run's failure, with the config line that names it.
 */
async function caCertificatesFor(home: HomePaths, ctx: RunContext, rootfs: string, userEnv: Record<string, string>) {
  const { caBundleSpec, configLineOf, ensureCaBundle, readCaCertificates } = await import("./ca-bundle.ts");
  const certs = readCaCertificates(ctx.tool!.caCertificates, (entry) => configLineOf([home.globalConfig, ctx.project.file], entry));
  for (const name of ctx.tool!.passEnv) if (process.env[name] !== undefined) userEnv[name] = process.env[name]!;
  return caBundleSpec(ensureCaBundle(home, rootfs, certs), userEnv);
}

function baseEnv(imageEnv: string[]): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const kv of imageEnv) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  env.HOME = "/root";
  env.USER = "root";
  for (const k of ["TERM", "LANG", "COLUMNS", "LINES", "COLORTERM", "NO_COLOR"]) if (process.env[k]) env[k] = process.env[k]!;
  return env;
}

async function ensureImage(home: HomePaths, ctx: RunContext) {
  // local.ts is node:fs only; the pull engine (ofetch, zstd, tar) loads only when something must be pulled.
  const tool = ctx.tool!;
  if (ctx.installed && ctx.installed.version === tool.version && ctx.installed.image === tool.image) {
    const local = localImage(ctx.installed.digest, home) ?? (await (await import("./cache.ts")).restoreImage(ctx.installed.digest, home));
    if (local) return local;
    log.info(`the image of ${tool.name} is missing from the cache; pulling it again`);
  }
  if (!ctx.installed) {
    // The lazy path of a first `silo run`: install the tool (image, digest pin, shims) as `silo install` would.
    log.info(`${tool.name} is not installed yet; installing ${tool.name}@${tool.version}`);
    const { installTool } = await import("./install.ts");
    const inst = await installTool({ spec: `${tool.name}@${tool.version}`, prompt: false }, home);
    const local = localImage(inst.digest, home);
    if (local) return local;
    throw new SiloError("E_IMAGE", `the rootfs of ${tool.name} is missing after pulling it`);
  }
  // A project pins another version (or image) than the installed one: use that image, leave the install alone.
  const { loadTomlData } = await import("../config/load.ts");
  const g = (await loadTomlData(home.globalConfig)) as import("../config/schema.ts").SiloConfig;
  const { pullImage } = await import("../image/pull.ts");
  const pulled = await pullImage(tool.image, { home, mirrors: g.images?.mirrors, insecure: g.images?.insecure });
  return { rootfs: pulled.rootfs, config: pulled.config };
}

/** Will startNetwork give this run a network? (Only a hint for the driver's prewarm: keep it in step.) */
function wantsNetwork(tool: NonNullable<RunContext["tool"]>, opts: RunOptions): boolean {
  if (opts.purpose === "lsp") return false;
  const allow = opts.purpose === "build" ? [...tool.network.allow, ...tool.network.installAllow] : tool.network.allow;
  const ports = tool.ports.length + (opts.ports?.length ?? 0);
  return (allow.length > 0 && !tool.network.deny.includes("*")) || tool.network.hostAccess || ports > 0;
}

async function startNetwork(tool: NonNullable<RunContext["tool"]>, opts: RunOptions, runDir: string) {
  const ports = [...tool.ports, ...(opts.ports ?? [])];
  const allow = opts.purpose === "build" ? [...tool.network.allow, ...tool.network.installAllow] : tool.network.allow;
  const none = {
    spec: { mode: "none", hostAccess: false, ports: [] } as NetworkSpec,
    env: {},
    afterLaunch: async () => {},
    onFirstConnection: undefined,
    // Nothing on the host side: a run may be handed over (no proxy to start).
    handoff: {} as Pick<HandoffHooks, "proxy">,
    close: async () => {},
  };
  // A language server runs project code (build scripts, macros) for as long as the editor is open: no network,
  // and no port forwards (they would take the host ports a `silo run` of the same tool needs).
  if (opts.purpose === "lsp") return none;
  // `deny = ["*"]` (the narrowing way to say "no network", allowed in untrusted files) needs no proxy at all.
  const denyAll = tool.network.deny.includes("*");
  if ((allow.length === 0 || denyAll) && !tool.network.hostAccess && ports.length === 0) return none;
  const policy = { tool: tool.name, allow, deny: tool.network.deny, hostAccess: tool.network.hostAccess, hostPorts: tool.network.hostPorts, ports };
  // One line per denied host, with the proxy's own reason (not allowed, denied, private address, SNI).
  const input = { ...policy, onDeny: denyWarning(tool.name) };
  const spec = planHostNetwork(input, runDir);
  const started: { close(): Promise<void> }[] = [];
  const start = async (parts: { ports: boolean; proxy: boolean; bridge: boolean }) => {
    const { startHostSide } = await import("../net/host.ts");
    started.push(await startHostSide(input, spec, runDir, parts));
  };
  // Port forwards must be bound before the command starts (a taken port fails the run first), and the
  // hostAccess bridge may be asked for the host's ports while the sandbox is set up. The proxy waits until
  // the sandbox connects (or, with drivers that cannot tell, until it is launching).
  if (ports.length > 0 || tool.network.hostAccess) await start({ ports: true, proxy: false, bridge: true });
  // The sockets' directory goes with silo however it ends (a reaper started once the sandbox is launching).
  let reaper: Reaper | null = null;
  let proxy: Promise<void> | null = null;
  return {
    spec,
    env: proxyEnv(spec),
    afterLaunch: async () => {
      reaper = startReaper(runDir);
    },
    onFirstConnection: () => (proxy ??= start({ ports: false, proxy: true, bridge: false })),
    // Port forwards and the hostAccess bridge serve from this process: such a run stays in silo.
    handoff:
      ports.length > 0 || tool.network.hostAccess
        ? undefined
        : { proxy: spec.mode === "proxy" ? { input: policy, spec, runDir } : undefined },
    close: async () => {
      await proxy?.catch(() => undefined); // one still starting is closed with the rest
      for (const s of started.splice(0).reverse()) await s.close();
      if (reaper) reaper.release();
      else (await import("node:fs")).rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** How the sandbox stage re-invokes silo: the compiled binary itself, or bun + this entry in development. */
export function selfCommand(): string[] {
  const exe = process.execPath;
  if (basename(exe) !== "bun") return [exe];
  return [exe, resolve(import.meta.dir, "../main.ts")];
}

export { EXIT };
