import { describe, expect, test } from "bun:test";
import { explainStageFailure, installCommand, kernelVersion, probeBwrap, type ProbeHost } from "../../../src/runner/drivers/bwrap/probe.ts";

/** A machine where everything works; each test breaks one thing. */
const host = (over: Partial<ProbeHost> = {}, sysctls: Record<string, string> = {}): ProbeHost => ({
  platform: "linux",
  arch: "x64",
  which: (n) => `/usr/bin/${n}`,
  sysctl: (n) => sysctls[n] ?? null,
  read: (p) => (p.endsWith("osrelease") ? "6.1.0-18-amd64\n" : "nodev\tproc\nnodev\toverlay\n"),
  uid: 1000,
  inContainer: () => false,
  tryStage: () => ({ code: 0, stderr: "" }),
  bwrapVersion: () => "bubblewrap 0.8.0",
  ...over,
});

describe("probeBwrap", () => {
  test("ok on a machine that has it all, with what it found", async () => {
    expect(await probeBwrap(host())).toEqual({ ok: true, detail: "bubblewrap 0.8.0, Linux 6.1.0-18-amd64, overlay in a user namespace" });
  });
  test("bwrap missing: install bubblewrap", async () => {
    const r = await probeBwrap(host({ which: (n) => (n === "bwrap" ? null : `/usr/bin/${n}`) }));
    expect(r).toMatchObject({ ok: false, reason: "bubblewrap (bwrap) is not installed" });
    expect(!r.ok && r.fix).toContain("apt install bubblewrap");
  });
  test("Debian's switch for unprivileged user namespaces off", async () => {
    const r = await probeBwrap(host({}, { "kernel.unprivileged_userns_clone": "0" }));
    expect(!r.ok && r.fix).toContain("sysctl -w kernel.unprivileged_userns_clone=1");
  });
  test("no user namespaces at all", async () => {
    const r = await probeBwrap(host({}, { "user.max_user_namespaces": "0" }));
    expect(!r.ok && r.fix).toContain("user.max_user_namespaces=15000");
  });
  test("a kernel older than 5.11", async () => {
    const r = await probeBwrap(host({ read: (p) => (p.endsWith("osrelease") ? "5.10.0-28-amd64" : "nodev\toverlay\n") }));
    expect(!r.ok && r.reason).toContain("needs 5.11 or newer");
  });
  test("the overlay module not loaded", async () => {
    const r = await probeBwrap(host({ read: (p) => (p.endsWith("osrelease") ? "6.8.0" : "nodev\tproc\n") }));
    expect(!r.ok && r.fix).toContain("modprobe overlay");
  });
  test("Ubuntu's AppArmor restriction: the stage fails and the sysctl is on", async () => {
    const r = await probeBwrap(
      host({ tryStage: () => ({ code: 1, stderr: "unshare: write failed /proc/self/uid_map: Operation not permitted" }) }, {
        "kernel.apparmor_restrict_unprivileged_userns": "1",
      }),
    );
    expect(r).toMatchObject({ ok: false });
    expect(!r.ok && r.fix).toContain("kernel.apparmor_restrict_unprivileged_userns=0");
  });
});

describe("explainStageFailure", () => {
  const ctx = { restricted: false, inContainer: false, release: "6.8.0" };
  test("overlay refused", () => {
    const r = explainStageFailure({ code: 3, stderr: "mount: /x: permission denied.\nsilo-probe: overlay" }, ctx);
    expect(!r.ok && r.reason).toBe("overlayfs cannot be mounted in a user namespace here: mount: /x: permission denied.");
  });
  test("inside a container the container's profile is named", () => {
    const r = explainStageFailure({ code: 1, stderr: "unshare: unshare failed: Operation not permitted" }, { ...ctx, inContainer: true });
    expect(!r.ok && r.fix).toContain("seccomp=unconfined");
  });
  test("bwrap itself failing", () => {
    const r = explainStageFailure({ code: 1, stderr: "bwrap: Creating new namespace failed: Permission denied" }, ctx);
    expect(!r.ok && r.reason).toContain("bwrap cannot start a sandbox");
  });
});

test("kernelVersion", () => {
  expect(kernelVersion("6.18.44-fc-v595")).toEqual([6, 18]);
  expect(kernelVersion("5.10.0-28-amd64")).toEqual([5, 10]);
  expect(kernelVersion("garbage")).toEqual([0, 0]);
});

describe("installCommand: the package manager of this distribution (/etc/os-release)", () => {
  const on = (osRelease: string | null) => ({
    read: (p: string) => {
      if (p !== "/etc/os-release" || osRelease === null) throw new Error(`ENOENT: ${p}`);
      return osRelease;
    },
  });
  test("by ID, then by ID_LIKE", () => {
    expect(installCommand(on('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'), "bubblewrap")).toBe("sudo apt install bubblewrap");
    expect(installCommand(on('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), "bubblewrap")).toBe("sudo dnf install bubblewrap");
    expect(installCommand(on("ID=garuda\nID_LIKE=arch\n"), "bubblewrap")).toBe("sudo pacman -S bubblewrap");
    expect(installCommand(on('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n'), "bubblewrap")).toBe("sudo zypper install bubblewrap");
    expect(installCommand(on("ID=alpine\n"), "bubblewrap")).toBe("sudo apk add bubblewrap");
  });
  test("a package whose name differs on Debian", () => {
    expect(installCommand(on("ID=debian\n"), "util-linux")).toBe("sudo apt install util-linux mount");
    expect(installCommand(on("ID=fedora\n"), "util-linux")).toBe("sudo dnf install util-linux");
  });
  test("an unknown distribution or no os-release: every family's line", () => {
    for (const r of [on("ID=nixos\n"), on(null)])
      expect(installCommand(r, "bubblewrap")).toBe(
        "install bubblewrap with your distribution's package manager (sudo apt install bubblewrap, sudo dnf install bubblewrap, sudo pacman -S bubblewrap, sudo zypper install bubblewrap, sudo apk add bubblewrap)",
      );
  });
  test("Ubuntu 24.04 without bubblewrap, then with it but AppArmor restricting user namespaces", async () => {
    const ubuntu = (p: string) => (p === "/etc/os-release" ? 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n' : p.endsWith("osrelease") ? "6.8.0-31-generic\n" : "nodev\toverlay\n");
    const missing = await probeBwrap(host({ read: ubuntu, which: (n) => (n === "bwrap" ? null : `/usr/bin/${n}`) }));
    expect(missing).toEqual({ ok: false, reason: "bubblewrap (bwrap) is not installed", fix: "sudo apt install bubblewrap" });
    const restricted = await probeBwrap(
      host({ read: ubuntu, tryStage: () => ({ code: 1, stderr: "bwrap: setting up uid map: Permission denied" }) }, { "kernel.apparmor_restrict_unprivileged_userns": "1" }),
    );
    expect(!restricted.ok && restricted.fix).toStartWith("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0");
  });
});
