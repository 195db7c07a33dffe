/**
 * Can the bwrap driver work on this machine? Checks the cheap things first (binaries, sysctls, kernel,
 * overlay module), then starts a real miniature sandbox (unshare → overlay mount → nested bwrap) and
 * names the exact fix for whatever stops it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProbeResult } from "../../driver.ts";
import { STAGE_PATH } from "./argv.ts";
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

export async function probeBwrap(): Promise<ProbeResult> {
  if (process.platform !== "linux") return fail("the bwrap driver runs on Linux only", "use the apple driver on macOS");
  if (!nativeSeccompArch()) return fail(`no seccomp filter for ${process.arch}`, "run silo on x86_64 or aarch64");
  const bwrap = which("bwrap");
  if (!bwrap)
    return fail("bubblewrap (bwrap) is not installed", "sudo apt install bubblewrap (Fedora: sudo dnf install bubblewrap; Arch: sudo pacman -S bubblewrap)");
  const unshare = which("unshare");
  const mount = which("mount");
  if (!unshare || !mount || !which("sh"))
    return fail("util-linux's unshare or mount is missing", "sudo apt install util-linux mount (Fedora: sudo dnf install util-linux)");
  if (sysctl("kernel.unprivileged_userns_clone") === "0")
    return fail(
      "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
      "sudo sysctl -w kernel.unprivileged_userns_clone=1, and keep it with `echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/60-silo-userns.conf`",
    );
  if (sysctl("user.max_user_namespaces") === "0")
    return fail(
      "user namespaces are disabled (user.max_user_namespaces = 0)",
      "sudo sysctl -w user.max_user_namespaces=15000, and keep it in /etc/sysctl.d/60-silo-userns.conf",
    );
  const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const [major, minor] = kernelVersion(release);
  if (major < 5 || (major === 5 && minor < 11))
    return fail(`Linux ${release} cannot mount overlayfs in a user namespace (that needs 5.11 or newer)`, "upgrade the kernel (Debian 12, Ubuntu 22.04 and Fedora 34 or newer all have it)");
  if (!/\toverlay\n/.test(readFileSync("/proc/filesystems", "utf8")))
    return fail(
      "the overlay filesystem is not loaded (and a user namespace cannot load kernel modules)",
      "sudo modprobe overlay, and keep it with `echo overlay | sudo tee /etc/modules-load.d/silo.conf`",
    );
  return tryStage({ bwrap, unshare, mount, release });
}

/** The real thing in miniature: an overlay mounted in a user+mount namespace, bwrap nested inside. */
function tryStage(t: { bwrap: string; unshare: string; mount: string; release: string }): ProbeResult {
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
    const err = r.stderr.toString().trim();
    if (r.exitCode === 0) {
      const v = Bun.spawnSync([t.bwrap, "--version"], { stdout: "pipe" }).stdout.toString().trim();
      return { ok: true, detail: `${v}, Linux ${t.release}, overlay in a user namespace` };
    }
    const restricted = sysctl("kernel.apparmor_restrict_unprivileged_userns") === "1" && process.getuid?.() !== 0;
    const inContainer = isInContainer();
    const fix = restricted ? APPARMOR_FIX : inContainer ? CONTAINER_FIX : null;
    if (r.exitCode === 3 || err.includes("silo-probe: overlay"))
      return fail(`overlayfs cannot be mounted in a user namespace here: ${firstLine(err)}`, fix ?? `check \`dmesg | tail\` for overlayfs messages; Linux ${t.release} should allow it`);
    if (/unshare|uid_map|setgroups/.test(err))
      return fail(`unprivileged user namespaces are not permitted: ${firstLine(err)}`, fix ?? "allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)");
    return fail(`bwrap cannot start a sandbox inside silo's namespace: ${firstLine(err)}`, fix ?? "check that bwrap is not installed setuid (it must run unprivileged here) and that it is 0.8 or newer");
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
