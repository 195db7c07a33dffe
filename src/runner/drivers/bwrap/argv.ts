/**
 * Pure translation of a RunSpec (plus the host-side plan made in plan.ts) into the commands that start the
 * sandbox. silo starts them with an empty environment:
 *
 *   1. the stage: `unshare --user --map-root-user --mount` gives a user and mount namespace in which an
 *      unprivileged user may mount overlayfs (Linux ≥ 5.11). A few lines of /bin/sh mount the image layers
 *      (read-only lowers) under an upper dir that is thrown away, then exec bwrap, so bwrap's parent is
 *      silo itself (--die-with-parent).
 *   2. bwrap, inside it: a nested user namespace (root inside, the invoking user outside), new pid, ipc,
 *      uts, cgroup (and net) namespaces, the overlay as `/`, the project at /workspace, seccomp, dropped
 *      capabilities. Its options, the command's environment included, reach it through `--args FD`, so
 *      neither appears on a command line other users can read in /proc.
 *   3. only when the network needs relays: the relay process (`silo __stage`, stage.ts) is started first,
 *      under `unshare --user --map-root-user --net`, and the stage joins its user and network namespaces
 *      (`nsenter`) before making its own mount namespace. The relays listen inside the sandbox's network
 *      namespace while staying outside its pid namespace and filesystem view. Starting a Bun process is
 *      the slow part, so it starts first, and bwrap sets the sandbox up meanwhile, holding the command on
 *      `--block-fd` until the relays listen.
 *
 * The native stage (native/silo-stage.c, when this silo has one) does steps 1 and 3 in one small process,
 * started as soon as silo knows a sandbox will run: namespaces first, then (from a message that silo sends
 * once it has planned the sandbox) the overlay and, with relays, the relays listening in its network
 * namespace before it starts bwrap. No shell, no second silo process, nothing for the command to wait for.
 */
import { relayRoutes } from "../../../net/plan.ts";
import { HOST_ALIAS_ADDRESS, type NetworkSpec, type RunSpec } from "../../spec.ts";
import type { SandboxPlan } from "./plan.ts";

/** File descriptors bwrap receives from the stage. */
export const FD = { ARGS: 3, SECCOMP: 4, HOSTS: 5, RESOLV: 6, BLOCK: 7, STATUS: 8 } as const;

/**
 * Capabilities kept inside the sandbox's own user namespace: what package managers and build scripts
 * expect of root, as Docker's default set, without CAP_SYS_ADMIN, CAP_NET_RAW, CAP_NET_ADMIN,
 * CAP_AUDIT_WRITE, and (but for a build, `keepSetuid`: BUILD_CAPS) CAP_SETFCAP and CAP_FSETID. A file
 * capability set inside is written for the namespace's root, which is host root when silo runs as root;
 * without CAP_FSETID a write to a setuid/setgid file clears the bits (THREATS.md invariant 2).
 */
export const KEPT_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_MKNOD",
];
export const BUILD_CAPS = ["CAP_FSETID", "CAP_SETFCAP"];

/** Where host-side helpers live; resolved once on the host's PATH. */
export interface HostTools {
  unshare: string;
  sh: string;
  mount: string;
  bwrap: string;
  /** Only needed when the sandbox has network relays. */
  nsenter: string | null;
}

/**
 * bwrap's options (NUL-joined into `--args FD`): namespaces, filesystem, environment. The command itself
 * follows `--` on bwrap's real command line (bwrap takes only options from --args).
 */
export function buildBwrapArgs(spec: RunSpec, plan: SandboxPlan): string[] {
  const a: string[] = ["--unshare-user", "--uid", "0", "--gid", "0", "--disable-userns"];
  a.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try");
  // With relays the network namespace is the stage's: the relay process's (the sh stage joined it; the
  // command waits for its relays) or the native stage's own (its sockets listen before bwrap starts).
  // Else bwrap makes one, with lo up.
  if (plan.relays) {
    if (plan.stage === "sh") a.push("--block-fd", String(FD.BLOCK));
  } else a.push("--unshare-net");
  a.push("--die-with-parent");
  // A session of its own, always: kill(0, ...) inside then reaches no process of silo's, and the caller's
  // terminal is not its controlling one (TIOCSTI, which seccomp refuses as well). With a TTY, the native
  // stage gives it a pseudo-terminal of its own (native/silo-stage.c, "the terminal"); the /bin/sh stage
  // cannot, and the command runs with the caller's terminal but without a controlling one.
  a.push("--new-session");
  a.push("--cap-drop", "ALL");
  for (const c of spec.keepSetuid ? [...KEPT_CAPS, ...BUILD_CAPS] : KEPT_CAPS) a.push("--cap-add", c);
  a.push("--hostname", spec.hostname || spec.tool);

  a.push("--bind", plan.root, "/");
  a.push("--proc", "/proc", "--dev", "/dev", ...tmpMount(spec));
  if (plan.hostRoot) a.push(...coverHostKnobs(plan.hostRoot));
  a.push("--perms", "0644", "--ro-bind-data", String(FD.HOSTS), "/etc/hosts");
  a.push("--perms", "0644", "--ro-bind-data", String(FD.RESOLV), "/etc/resolv.conf");
  a.push("--bind", spec.workspace, "/workspace");
  // The stage mounted the .git overlay on <dir>/mnt (in its own mount namespace).
  if (spec.gitOverlay) a.push("--bind", `${spec.gitOverlay.dir}/mnt`, spec.gitOverlay.guest);
  for (const m of spec.mounts) a.push(m.readonly ? "--ro-bind" : "--bind", m.host, m.guest);
  if (spec.network.sshAgent) a.push("--bind", spec.network.sshAgent, "/run/silo/ssh-agent.sock");
  // Read-only first, masks last: a mask over a directory hides a protected path inside it as well.
  for (const r of plan.readonly) a.push("--ro-bind", r.host, r.guest);
  for (const m of plan.masked) {
    if (m.kind === "dir") a.push("--tmpfs", m.guest);
    else a.push("--ro-bind", plan.emptyFile, m.guest);
  }

  a.push("--seccomp", String(FD.SECCOMP), "--json-status-fd", String(FD.STATUS));
  a.push("--chdir", spec.cwd);
  // bwrap applies these in order while parsing, so the command gets exactly spec.env.
  a.push("--clearenv");
  for (const [k, v] of Object.entries(spec.env)) a.push("--setenv", k, v);
  return a;
}

/**
 * /tmp is a tmpfs, which is RAM: `--size` (bubblewrap 0.5+) caps it at `resources.tmpMB` (a write past it
 * fails with ENOSPC, "No space left on device"). /dev/shm gets a tmpfs of its own of the same size: bwrap's
 * /dev is a tmpfs without a size, writable by the sandbox's root, whose /dev/shm is a plain directory in
 * it, so the whole /dev is made read-only after (its device nodes are binds of their own, and stay
 * writable; /dev/pts is devpts).
 */
export function tmpMount(spec: Pick<RunSpec, "resources">): string[] {
  const mb = spec.resources.tmpMB;
  const size = mb ? ["--size", String(mb * 1024 * 1024)] : [];
  return [...size, "--tmpfs", "/tmp", ...size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"];
}

/**
 * Run as root, the sandbox's uid 0 is host uid 0, and root owns the kernel's knobs: a file's owner may open
 * it for writing whatever user namespace it is in, so `/proc/sys/kernel/core_pattern` (a `|handler` there
 * runs as host root), `vm/*`, `fs/*` ... would be the host's to change. bwrap covers /proc/sysrq-trigger,
 * /proc/irq and /proc/bus itself, but not /proc/sys (the directory is never writable, and that is what it
 * checks). Read-only: /proc/sys (bound from the stage's /proc: the same tables, and what a process sees in
 * it is still its own namespaces' values), /proc/sysrq-trigger, /proc/fs (nfsd, cifs settings), /proc/acpi
 * (wakeup), and an empty read-only /sys (nothing of the host's sysfs is mounted inside, and none can be).
 * binfmt_misc's `register` (an interpreter for every exec on the host) hides under an empty tmpfs when the
 * host has it mounted. Without root none of this is writable (the owner is not mapped) and costs nothing.
 */
export function coverHostKnobs(host: { binfmtMisc: boolean }): string[] {
  const a = ["--ro-bind", "/proc/sys", "/proc/sys"];
  for (const p of ["/proc/sysrq-trigger", "/proc/fs", "/proc/acpi"]) a.push("--ro-bind-try", p, p);
  if (host.binfmtMisc) a.push("--tmpfs", "/proc/sys/fs/binfmt_misc", "--remount-ro", "/proc/sys/fs/binfmt_misc");
  a.push("--tmpfs", "/sys", "--remount-ro", "/sys");
  return a;
}

/** Overlay mount options; lowerdir lists the top layer first (RunSpec.layers is lowest first). */
export function overlayOptions(lowers: string[], upper: string, work: string): string {
  return `userxattr,lowerdir=${[...lowers].reverse().join(":")},upperdir=${upper},workdir=${work}`;
}

/**
 * The /bin/sh stage, in the run dir (the overlay's paths are relative to it: SandboxPlan.mount). A
 * thrown-away upper goes on a tmpfs of `$rfs` bytes (the writable layer's cap, resources.rootfsMB) mounted
 * on `t`; a build capture's (`$rfs` 0) stays on disk. The cap on processes (RLIMIT_NPROC) is set last, in
 * the stage's user namespace (native/silo-stage.c says how the kernel counts it). Exit 125 before bwrap
 * means the stage failed; bwrap's status goes to <run>/status. (No cgroup here: the native stage's.)
 */
export const SH_STAGE = `r=$1 mnt=$2 low=$3 up=$4 wk=$5 rfs=$6 gl=$7 gd=$8 np=$9; shift 9
cd "$r" || exit 125
echo 1000 >/proc/self/oom_score_adj 2>/dev/null # the OOM killer's first choice (native/silo-stage.c prefer_for_oom)
# Run as root, bwrap's --dev binds host device nodes the sandbox would own: read-only here (native/silo-stage.c
# protect_host_devices says why). uid_map "0 0 1": the caller is host root.
read -r _ hu _ </proc/self/uid_map
if [ "$hu" = 0 ]; then
  for d in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; do
    [ -e "$d" ] || continue
    "$mnt" --bind "$d" "$d" 2>>"$r/err" && "$mnt" -o remount,bind,ro,nosuid "$d" 2>>"$r/err" || { echo "binding $d read-only failed" >>"$r/err"; exit 125; }
  done
fi
if [ -n "$gl" ] && ! "$mnt" -t overlay -o "userxattr,lowerdir=$gl,upperdir=$gd/upper,workdir=$gd/work" silo "$gd/mnt" 2>>"$r/err"; then
  echo "the .git overlay failed (a trusted [mount] writable = [\".git\"] binds .git directly)" >>"$r/err"; exit 125
fi
if [ "$rfs" != 0 ]; then
  mkdir t && "$mnt" -t tmpfs -o "size=$rfs,mode=0700" silo t 2>>"$r/err" && mkdir t/u t/w && up=t/u wk=t/w || exit 125
fi
"$mnt" -t overlay -o "userxattr,lowerdir=$low,upperdir=$up,workdir=$wk" silo "$r/root" 2>>"$r/err" || exit 125
if [ "$np" -gt 0 ] && ! { ulimit -u "$np" 2>/dev/null || ulimit -p "$np" 2>/dev/null; }; then
  echo "cannot cap the sandbox's processes (ulimit -u $np)" >>"$r/err"; exit 125
fi
exec "$@" ${FD.STATUS}>"$r/status"`;

/** PATH for the stage's own helpers (mkdir); the command's PATH comes from spec.env through bwrap. */
export const STAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * argv of the stage process, as silo spawns it. With relays it first joins the relay's user and network
 * namespaces (`relayPid`), then makes only its mount namespace.
 */
export function buildStageArgv(spec: RunSpec, plan: SandboxPlan, tools: HostTools, relayPid?: number): string[] {
  const ns =
    relayPid === undefined
      ? [tools.unshare, "--user", "--map-root-user", "--mount"]
      : [tools.nsenter!, "--target", String(relayPid), "--user", "--net", "--preserve-credentials", "--", tools.unshare, "--mount"];
  const m = plan.mount;
  return [
    ...ns, "--", tools.sh, "-c", SH_STAGE, "silo-stage",
    plan.runDir, tools.mount, m.lowers, m.upper, m.work, String(stageLimits(spec)[1]),
    spec.gitOverlay?.lower ?? "", m.gitDir, String(spec.resources.pids ?? 0),
    tools.bwrap, "--args", String(FD.ARGS), "--", ...spec.argv,
  ];
}

/**
 * The native stage (native/silo-stage.c documents it) starts before the sandbox is planned: it makes its
 * namespaces (a network one when `net`) and waits for its message on fd 3; fd 4 is its reaper's.
 */
export function nativeStageArgv(stage: string, net: boolean, parentPid = process.pid): string[] {
  return [stage, "--control", String(parentPid), net ? "1" : "0"];
}

/**
 * The native stage's message: the overlay, its relays (`nativeRelays`), bwrap's descriptors from fd 3 on
 * (`fds`: --args, --seccomp, the /etc files) and bwrap's command line.
 */
export function buildStageMessage(spec: RunSpec, plan: SandboxPlan, tools: HostTools, relays: string[], fds: Uint8Array[]): Uint8Array {
  const enc = new TextEncoder();
  const str = (xs: (string | number)[]) => enc.encode(`${xs.join("\0")}\0`);
  const m = plan.mount;
  const cmd = [tools.bwrap, "--args", String(FD.ARGS), "--", ...spec.argv];
  const git = [spec.gitOverlay?.lower ?? "", m.gitDir];
  const parts: Uint8Array[] = [str([plan.runDir, m.lowers, m.upper, m.work, plan.tmpfsFallback ? 1 : 0, ...git, relays.length, ...relays, fds.length])];
  for (const f of fds) parts.push(str([f.length]), f);
  parts.push(str([cmd.length, ...cmd]));
  parts.push(str([spec.tty ? 1 : 0]));
  parts.push(str(stageLimits(spec)));
  let length = 0;
  for (const p of parts) length += p.length;
  parts.unshift(enc.encode(`SILO-STAGE 1\n${length}\n`));
  return Buffer.concat(parts);
}

/**
 * The limits the stage sets (after the TTY field): NPROC (RLIMIT_NPROC, and pids.max of a cgroup), ROOTFS
 * (bytes of the writable layer's tmpfs; 0: an on-disk upper, a build capture), MEMORY (bytes) and CPU (a
 * quota in µs per 100 ms period) of a cgroup where the host gives one; 0: none.
 */
export function stageLimits(spec: Pick<RunSpec, "resources" | "captureUpper">): number[] {
  const r = spec.resources;
  const mib = (mb: number | undefined) => (mb ? mb * 1024 * 1024 : 0);
  return [r.pids ?? 0, spec.captureUpper ? 0 : mib(r.rootfsMB), mib(r.memoryMB), r.cpus ? Math.max(1000, Math.round(r.cpus * 100_000)) : 0];
}

/**
 * The native stage's relays for a network spec: the same TCP relays as the relay process's (net/plan.ts
 * relayRoutes), then the port forwards' Unix socket with the guest ports it may reach.
 * `hostPorts`: the hostAccess ports, resolved already.
 */
export function nativeRelays(net: NetworkSpec, hostPorts: number[]): string[] {
  const out = relayRoutes(net, hostPorts).map((r) => `${r.hostname}:${r.port}>${r.socket}${r.header === undefined ? "" : `>${r.header}`}`);
  if (net.ports.length > 0 && net.forwardSocket) out.push(`${net.forwardSocket}>${[...new Set(net.ports.map((p) => p.guest))].join(",")}`);
  return out;
}

/**
 * The relay process: silo itself, in a new user and network namespace. The shell says "ns" on stdout once
 * unshare has made them (uid map written), so the stage can join them at once; silo then says "ready".
 */
export const RELAY_SH = 'echo ns && exec "$@"';
export function buildRelayArgv(self: string[], ownerPid: number, tools: HostTools): string[] {
  return [tools.unshare, "--user", "--map-root-user", "--net", "--", tools.sh, "-c", RELAY_SH, "silo-relay", ...self, "__stage", String(ownerPid)];
}

/** /etc/hosts: loopback names, the sandbox's hostname, and host.silo.internal when hostAccess is on. */
export function buildHostsFile(spec: RunSpec): string {
  const name = spec.hostname || spec.tool;
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", `127.0.1.1\t${name}`];
  if (spec.network.hostAccess) lines.push(`${HOST_ALIAS_ADDRESS}\thost.silo.internal`);
  return lines.join("\n") + "\n";
}

/** /etc/resolv.conf: there is no DNS inside; names resolve through the proxy (or fail at once, not after a timeout). */
export function buildResolvConf(spec: RunSpec): string {
  const why = spec.network.mode === "proxy" ? "HTTP(S) goes through the proxy, which resolves names" : "no network";
  return `# silo: no DNS server inside the sandbox (${why})\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n`;
}

/** The args fd payload: NUL-separated, as `bwrap --args` reads it. */
export function encodeArgs(args: string[]): Uint8Array {
  return new TextEncoder().encode(args.length ? `${args.join("\0")}\0` : "");
}
