/**
 * Can the bwrap driver work on this machine? Checks the cheap things first (binaries, sysctls, kernel,
 * overlay module), then starts a real miniature sandbox (unshare → overlay mount → nested bwrap) and
 * names the exact fix for whatever stops it.
 */
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProbeResult } from "../../driver.ts";
import { STAGE_PATH } from "./argv.ts";
import { removeTree } from "../../../core/fs.ts";
import { nativeSeccompArch } from "./seccomp.ts";

const fail = (reason: string, fix: string): ProbeResult => ({ ok: false, reason, fix });
const which = (name: string) => Bun.which(name) ?? Bun.which(name, { PATH: STAGE_PATH });

function sysctl(name: string): string | null {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, "utf8").trim();
  } catch {
    return null;
  }
}

const APPARMOR_FIX =
  "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, and keep it with " +
  "`echo kernel.apparmor_restrict_unprivileged_userns=0 | sudo tee /etc/sysctl.d/60-silo-userns.conf` " +
  "(Ubuntu 23.10+ restricts unprivileged user namespaces through AppArmor)";
const CONTAINER_FIX =
  "inside a container, start it with --security-opt seccomp=unconfined --security-opt apparmor=unconfined " +
  "(or --privileged): the default profiles forbid user namespaces and mounts";

/** Parse "6.8.0-31-generic" into [6, 8]. */
export function kernelVersion(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** What the probe asks of the machine; tests substitute it. */
export interface ProbeHost {
  platform: string;
  arch: string;
  which(name: string): string | null;
  sysctl(name: string): string | null;
  read(path: string): string;
  uid: number;
  inContainer(): boolean;
  /** Run the miniature sandbox: exit code and stderr. */
  tryStage(t: { bwrap: string; unshare: string; mount: string }): { code: number; stderr: string };
  bwrapVersion(bwrap: string): string;
}

export const realHost: ProbeHost = {
  platform: process.platform,
  arch: process.arch,
  which,
  sysctl,
  read: (p) => readFileSync(p, "utf8"),
  uid: process.getuid?.() ?? -1,
  inContainer: isInContainer,
  tryStage,
  bwrapVersion: (bwrap) => Bun.spawnSync([bwrap, "--version"], { stdout: "pipe" }).stdout.toString().trim(),
};

export async function probeBwrap(h: ProbeHost = realHost): Promise<ProbeResult> {
  if (h.platform !== "linux") return fail("the bwrap driver runs on Linux only", "use the apple driver on macOS");
  if (!nativeSeccompArch(h.arch)) return fail(`no seccomp filter for ${h.arch}`, "run silo on x86_64 or aarch64");
  const bwrap = h.which("bwrap");
  if (!bwrap) return fail("bubblewrap (bwrap) is not installed", installCommand(h, "bubblewrap"));
  const unshare = h.which("unshare");
  const mount = h.which("mount");
  if (!unshare || !mount || !h.which("sh")) return fail("util-linux's unshare or mount is missing", installCommand(h, "util-linux"));
  if (h.sysctl("kernel.unprivileged_userns_clone") === "0")
    return fail(
      "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
      "sudo sysctl -w kernel.unprivileged_userns_clone=1, and keep it with `echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/60-silo-userns.conf`",
    );
  if (h.sysctl("user.max_user_namespaces") === "0")
    return fail(
      "user namespaces are disabled (user.max_user_namespaces = 0)",
      "sudo sysctl -w user.max_user_namespaces=15000, and keep it in /etc/sysctl.d/60-silo-userns.conf",
    );
  const release = h.read("/proc/sys/kernel/osrelease").trim();
  const [major, minor] = kernelVersion(release);
  if (major < 5 || (major === 5 && minor < 11))
    return fail(`Linux ${release} cannot mount overlayfs in a user namespace (that needs 5.11 or newer)`, "upgrade the kernel (Debian 12, Ubuntu 22.04 and Fedora 34 or newer all have it)");
  if (!/\toverlay\n/.test(h.read("/proc/filesystems")))
    return fail(
      "the overlay filesystem is not loaded (and a user namespace cannot load kernel modules)",
      "sudo modprobe overlay, and keep it with `echo overlay | sudo tee /etc/modules-load.d/silo.conf`",
    );
  const r = h.tryStage({ bwrap, unshare, mount });
  if (r.code === 0) return { ok: true, detail: `${h.bwrapVersion(bwrap)}, Linux ${release}, overlay in a user namespace` };
  const restricted = h.sysctl("kernel.apparmor_restrict_unprivileged_userns") === "1" && h.uid !== 0;
  return explainStageFailure(r, { restricted, inContainer: h.inContainer(), release });
}

/** The package manager of each family of distributions (os-release ID, then ID_LIKE), and its install line. */
const INSTALLERS: [RegExp, string][] = [
  [/^(debian|ubuntu|linuxmint|pop|raspbian)$/, "sudo apt install"],
  [/^(fedora|rhel|centos|rocky|almalinux|amzn)$/, "sudo dnf install"],
  [/^(arch|manjaro|endeavouros)$/, "sudo pacman -S"],
  [/^(opensuse.*|sles|suse)$/, "sudo zypper install"],
  [/^alpine$/, "sudo apk add"],
];
/** Package names where a family's differs from Debian's. */
const PACKAGE_NAMES: Record<string, Record<string, string>> = { "util-linux": { "sudo apt install": "util-linux mount" } };

/** The line that installs `pkg` on this distribution (/etc/os-release), or each family's when unknown. */
export function installCommand(h: Pick<ProbeHost, "read">, pkg: string): string {
  let osRelease = "";
  try {
    osRelease = h.read("/etc/os-release");
  } catch {
    // no os-release: name every family's command
  }
  const field = (k: string) => (new RegExp(`^${k}="?([^"\n]*)"?$`, "m").exec(osRelease)?.[1] ?? "").toLowerCase();
  const ids = [field("ID"), ...field("ID_LIKE").split(/\s+/)].filter(Boolean);
  const name = (installer: string) => PACKAGE_NAMES[pkg]?.[installer] ?? pkg;
  for (const id of ids) {
    const hit = INSTALLERS.find(([re]) => re.test(id));
    if (hit) return `${hit[1]} ${name(hit[1])}`;
  }
  return `install ${pkg} with your distribution's package manager (${INSTALLERS.map(([, cmd]) => `${cmd} ${name(cmd)}`).join(", ")})`;
}

/** Name the fix for a miniature sandbox that failed. */
export function explainStageFailure(
  r: { code: number; stderr: string },
  ctx: { restricted: boolean; inContainer: boolean; release: string },
): ProbeResult {
  const err = r.stderr.trim();
  const fix = ctx.restricted ? APPARMOR_FIX : ctx.inContainer ? CONTAINER_FIX : null;
  if (r.code === 3 || err.includes("silo-probe: overlay"))
    return fail(`overlayfs cannot be mounted in a user namespace here: ${firstLine(err)}`, fix ?? `check \`dmesg | tail\` for overlayfs messages; Linux ${ctx.release} should allow it`);
  if (/unshare|uid_map|setgroups/.test(err))
    return fail(`unprivileged user namespaces are not permitted: ${firstLine(err)}`, fix ?? "allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)");
  return fail(`bwrap cannot start a sandbox inside silo's namespace: ${firstLine(err)}`, fix ?? "check that bwrap is not installed setuid (it must run unprivileged here) and that it is 0.8 or newer");
}

/** The real thing in miniature: an overlay mounted in a user+mount namespace, bwrap nested inside. */
function tryStage(t: { bwrap: string; unshare: string; mount: string }): { code: number; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "silo-probe-"));
  try {
    for (const d of ["l", "u", "w", "m"]) mkdirSync(join(dir, d));
    const script = `"$1" -t overlay -o "userxattr,lowerdir=$2/l,upperdir=$2/u,workdir=$2/w" silo "$2/m" || { echo "silo-probe: overlay" >&2; exit 3; }
exec "$3" --unshare-user --uid 0 --gid 0 --disable-userns --unshare-pid --unshare-net --unshare-ipc --unshare-uts --die-with-parent --ro-bind / / --proc /proc --dev /dev -- /bin/true`;
    const r = Bun.spawnSync([t.unshare, "--user", "--map-root-user", "--mount", "--", "/bin/sh", "-c", script, "probe", t.mount, dir, t.bwrap], {
      env: { PATH: STAGE_PATH },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: r.exitCode ?? 1, stderr: r.stderr.toString() };
  } finally {
    removeTree(dir); // overlayfs left w/work with mode 000
  }
}

const firstLine = (s: string) => s.split("\n").find((l) => l.trim()) ?? "(no message)";

function isInContainer(): boolean {
  try {
    if (readFileSync("/proc/1/cgroup", "utf8").match(/docker|containerd|kubepods|lxc/)) return true;
  } catch {
    // fine
  }
  return isFile("/.dockerenv") || isFile("/run/.containerenv");
}

function isFile(p: string): boolean {
  try {
    readFileSync(p);
    return true;
  } catch {
    return false;
  }
}
