import { describe, expect, test } from "bun:test";
import {
  buildBwrapArgs, buildHostsFile, buildRelayArgv, buildStageMessage, nativeStageArgv, nativeRelays, buildResolvConf, buildStageArgv, encodeArgs, FD, overlayOptions, RELAY_SH, stageLimits,
} from "../../../src/runner/drivers/bwrap/argv.ts";
import type { SandboxPlan } from "../../../src/runner/drivers/bwrap/plan.ts";
import { needsRelays } from "../../../src/net/plan.ts";
import type { RunSpec } from "../../../src/runner/spec.ts";

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
  tool: "python",
  layers: ["/h/rootfs/base", "/h/builds/extra"],
  workspace: "/p/proj",
  cwd: "/workspace/sub",
  argv: ["python3", "-c", "print('a b')", "--flag"],
  env: { PATH: "/usr/bin:/bin", HOME: "/root", SECRET: "s3cr3t value" },
  mounts: [
    { host: "/h/cache/python/pip", guest: "/root/.cache/pip", readonly: false, kind: "dir" },
    { host: "/p/proj/.env.local", guest: "/workspace/.env.local", readonly: true, kind: "file" },
  ],
  readonlyPaths: [],
  maskedPaths: [],
  tty: false,
  hostname: "python",
  resources: {},
  network: { mode: "none", hostAccess: false, ports: [] },
  self: ["/usr/local/bin/silo"],
  ...over,
});

const plan = (over: Partial<SandboxPlan> = {}): SandboxPlan => ({
  id: "1-abc", ownerPid: 1, runDir: "/h/run/1-abc", root: "/h/run/1-abc/root", upper: "/h/run/1-abc/upper",
  work: "/h/run/1-abc/work", lowers: ["/h/rootfs/base", "/h/builds/extra"], tmpfsFallback: true,
  mount: { lowers: "l1:l0", upper: "upper", work: "work", gitDir: "" },
  emptyFile: "/h/run/1-abc/empty", statusFile: "/h/run/1-abc/status", errFile: "/h/run/1-abc/err", relays: false, stage: "sh",
  readonly: [{ host: "/p/proj/.git/hooks", guest: "/workspace/.git/hooks" }],
  masked: [{ guest: "/workspace/node_modules", kind: "dir" }, { guest: "/workspace/.env", kind: "file" }],
  ...over,
});

/** The value following `flag` each time it occurs. */
const valuesOf = (a: string[], flag: string, n = 1) => a.flatMap((x, i) => (x === flag ? [a.slice(i + 1, i + 1 + n).join(" ")] : []));

describe("buildBwrapArgs", () => {
  const a = buildBwrapArgs(spec(), plan());

  test("every namespace, a nested user namespace that cannot make more, root inside", () => {
    for (const f of ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--disable-userns", "--die-with-parent", "--new-session"])
      expect(a).toContain(f);
    expect(valuesOf(a, "--uid")).toEqual(["0"]);
    expect(valuesOf(a, "--gid")).toEqual(["0"]);
    expect(valuesOf(a, "--hostname")).toEqual(["python"]);
  });
  test("drops every capability, then adds back a short list without CAP_SYS_ADMIN", () => {
    expect(a.indexOf("--cap-drop")).toBeLessThan(a.indexOf("--cap-add"));
    expect(valuesOf(a, "--cap-drop")).toEqual(["ALL"]);
    expect(valuesOf(a, "--cap-add")).not.toContain("CAP_SYS_ADMIN");
    expect(valuesOf(a, "--cap-add")).not.toContain("CAP_NET_RAW");
    // file capabilities and setuid bits that survive writes: only a build (keepSetuid) keeps them
    expect(valuesOf(a, "--cap-add")).not.toContain("CAP_SETFCAP");
    expect(valuesOf(a, "--cap-add")).not.toContain("CAP_FSETID");
    expect(valuesOf(buildBwrapArgs(spec({ keepSetuid: true }), plan()), "--cap-add")).toEqual(expect.arrayContaining(["CAP_SETFCAP", "CAP_FSETID"]));
  });
  test("the overlay is /, the project is /workspace, caches and files are bound as asked", () => {
    expect(valuesOf(a, "--bind", 2)).toEqual(["/h/run/1-abc/root /", "/p/proj /workspace", "/h/cache/python/pip /root/.cache/pip"]);
    expect(valuesOf(a, "--ro-bind", 2)).toEqual(["/p/proj/.env.local /workspace/.env.local", "/p/proj/.git/hooks /workspace/.git/hooks", "/h/run/1-abc/empty /workspace/.env"]);
    expect(valuesOf(a, "--proc")).toEqual(["/proc"]);
    expect(valuesOf(a, "--dev")).toEqual(["/dev"]);
    expect(valuesOf(a, "--tmpfs")).toEqual(["/tmp", "/dev/shm", "/workspace/node_modules"]);
    expect(valuesOf(a, "--chdir")).toEqual(["/workspace/sub"]);
  });
  test("read-only binds and masks come after the workspace (else the workspace bind would cover them)", () => {
    const ws = a.indexOf("/workspace");
    expect(a.indexOf("/workspace/.git/hooks")).toBeGreaterThan(ws);
    expect(a.indexOf("/workspace/node_modules")).toBeGreaterThan(a.indexOf("/workspace/.git/hooks"));
  });
  test("run as root, /proc/sys, the other host knobs and /sys are covered read-only after /proc; else nothing is added", () => {
    const root = buildBwrapArgs(spec(), plan({ hostRoot: { binfmtMisc: true } }));
    const proc = root.indexOf("--proc");
    expect(root.indexOf("/proc/sys")).toBeGreaterThan(proc);
    expect(valuesOf(root, "--ro-bind", 2)).toContain("/proc/sys /proc/sys");
    expect(valuesOf(root, "--ro-bind-try", 2)).toEqual(["/proc/sysrq-trigger /proc/sysrq-trigger", "/proc/fs /proc/fs", "/proc/acpi /proc/acpi"]);
    expect(valuesOf(root, "--remount-ro")).toEqual(["/dev", "/proc/sys/fs/binfmt_misc", "/sys"]);
    expect(valuesOf(buildBwrapArgs(spec(), plan({ hostRoot: { binfmtMisc: false } })), "--remount-ro")).toEqual(["/dev", "/sys"]);
    expect(a.join(" ")).not.toContain("/proc/sys");
    expect(valuesOf(a, "--remount-ro")).toEqual(["/dev"]); // /dev only, which every run gets
  });
  test("generated /etc files, seccomp and status come from the fds the stage passes", () => {
    expect(valuesOf(a, "--ro-bind-data", 2)).toEqual([`${FD.HOSTS} /etc/hosts`, `${FD.RESOLV} /etc/resolv.conf`]);
    expect(valuesOf(a, "--seccomp")).toEqual([String(FD.SECCOMP)]);
    expect(valuesOf(a, "--json-status-fd")).toEqual([String(FD.STATUS)]);
  });
  test("the environment is exactly spec.env, set after --clearenv", () => {
    const clear = a.indexOf("--clearenv");
    expect(clear).toBeGreaterThan(-1);
    expect(a.indexOf("--setenv")).toBeGreaterThan(clear);
    expect(valuesOf(a, "--setenv", 2)).toEqual(["PATH /usr/bin:/bin", "HOME /root", "SECRET s3cr3t value"]);
  });
  test("the command is not among the options (it follows -- on the command line)", () => {
    expect(a).not.toContain("--");
    expect(a).not.toContain("python3");
  });
  test("with a TTY too: a session of its own (the native stage gives it a pseudo-terminal)", () => {
    expect(buildBwrapArgs(spec({ tty: true }), plan())).toContain("--new-session");
  });
  test("with relays: the stage's network namespace is shared and the command waits on the block fd", () => {
    const r = buildBwrapArgs(spec({ network: { mode: "proxy", hostAccess: false, ports: [], proxySocket: "/s" } }), plan({ relays: true }));
    expect(r).not.toContain("--unshare-net");
    expect(valuesOf(r, "--block-fd")).toEqual([String(FD.BLOCK)]);
  });
  test("with relays and the native stage: its network namespace is shared, and nothing blocks (its sockets already listen)", () => {
    const r = buildBwrapArgs(spec({ network: { mode: "proxy", hostAccess: false, ports: [], proxySocket: "/s" } }), plan({ relays: true, stage: "native" }));
    expect(r).not.toContain("--unshare-net");
    expect(r).not.toContain("--block-fd");
  });
  test("without relays bwrap makes the network namespace, whichever stage", () => {
    for (const stage of ["sh", "native"] as const) {
      const r = buildBwrapArgs(spec(), plan({ stage }));
      expect(r).toContain("--unshare-net");
      expect(r).not.toContain("--block-fd");
    }
  });
  test("an ssh-agent socket is bound at a fixed path", () => {
    const r = buildBwrapArgs(spec({ network: { mode: "none", hostAccess: false, ports: [], sshAgent: "/tmp/ssh-x/agent.1" } }), plan());
    expect(valuesOf(r, "--bind", 2)).toContain("/tmp/ssh-x/agent.1 /run/silo/ssh-agent.sock");
  });
});

describe("stage", () => {
  const tools = { unshare: "/usr/bin/unshare", sh: "/bin/sh", mount: "/bin/mount", bwrap: "/usr/bin/bwrap", nsenter: "/usr/bin/nsenter" };
  test("sh stage: user+mount namespaces, the overlay's layers top first, bwrap with --args and the command after --", () => {
    const argv = buildStageArgv(spec(), plan(), tools);
    expect(argv.slice(0, 6)).toEqual(["/usr/bin/unshare", "--user", "--map-root-user", "--mount", "--", "/bin/sh"]);
    expect(argv).not.toContain("--net");
    const i = argv.indexOf("silo-stage");
    // the overlay's paths relative to the run dir, where the stage mounts it (plan.mount)
    // no cap on the writable layer in this spec: "0", the upper on disk
    expect(argv.slice(i + 1, i + 10)).toEqual(["/h/run/1-abc", "/bin/mount", "l1:l0", "upper", "work", "0", "", "", "0"]);
    expect(argv.slice(i + 10)).toEqual(["/usr/bin/bwrap", "--args", String(FD.ARGS), "--", "python3", "-c", "print('a b')", "--flag"]);
  });
  test("with relays the stage joins the relay's user and network namespaces, then makes its mount namespace", () => {
    const argv = buildStageArgv(spec(), plan({ relays: true, tmpfsFallback: false }), tools, 77);
    expect(argv.slice(0, 11)).toEqual([
      "/usr/bin/nsenter", "--target", "77", "--user", "--net", "--preserve-credentials", "--", "/usr/bin/unshare", "--mount", "--", "/bin/sh",
    ]);
    expect(argv[argv.indexOf("silo-stage") + 6]).toBe("0"); // no tmpfs fallback for a build capture
  });
  test("native stage: started with only its parent and whether it makes a network namespace", () => {
    expect(nativeStageArgv("/h/libexec/silo-stage-x", true, 42)).toEqual(["/h/libexec/silo-stage-x", "--control", "42", "1"]);
    expect(nativeStageArgv("/s", false, 42)).toEqual(["/s", "--control", "42", "0"]);
  });
  test("native stage message: run dir, layers top first, fallback, relays, bwrap's descriptors as raw bytes, then bwrap and the command", () => {
    const blob = Uint8Array.from([0, 1, 2, 0, 10]); // NULs and newlines pass through: the lengths say where blobs end
    const msg = buildStageMessage(spec(), plan({ relays: true, stage: "native" }), tools, ["127.0.0.1:3128>/r/p.sock", "127.0.0.2:5432>/r/h.sock>5432"], [blob, new Uint8Array()]);
    const text = Buffer.from(msg).toString("latin1");
    const head = /^SILO-STAGE 1\n(\d+)\n/.exec(text)!;
    expect(Number(head[1])).toBe(msg.length - head[0].length);
    const body = text.slice(head[0].length);
    const fields = [
      "/h/run/1-abc", "l1:l0", "upper", "work", "1", "", "",
      "2", "127.0.0.1:3128>/r/p.sock", "127.0.0.2:5432>/r/h.sock>5432", "2",
    ].map((f) => `${f}\0`).join("");
    expect(body.startsWith(fields)).toBe(true);
    const rest = body.slice(fields.length);
    expect(rest.startsWith("5\0\x00\x01\x02\x00\x0a0\0")).toBe(true);
    const cmd = ["/usr/bin/bwrap", "--args", String(FD.ARGS), "--", "python3", "-c", "print('a b')", "--flag"];
    // no TTY, no limits (NPROC ROOTFS MEMORY CPU)
    expect(rest.slice("5\0".length + 5 + "0\0".length)).toBe([String(cmd.length), ...cmd, "0", "0", "0", "0", "0"].map((f) => `${f}\0`).join(""));
    const quiet = Buffer.from(buildStageMessage(spec(), plan({ stage: "native", tmpfsFallback: false }), tools, [], [])).toString();
    expect(quiet).toContain("\u0000work\u00000\u0000\u0000\u00000\u00000\u0000"); // no fallback, no .git overlay, no relays, no descriptors
  });
  test("limits: the process cap last in the sh stage's arguments, the writable layer's bytes in place of its fallback flag; all four after the TTY in the native message; /tmp's and /dev/shm's size before their tmpfs, /dev read-only", () => {
    const s = spec({ resources: { pids: 64, tmpMB: 8, rootfsMB: 16, memoryMB: 512, cpus: 1.5 } });
    const argv = buildStageArgv(s, plan(), tools);
    const i = argv.indexOf("silo-stage");
    expect(argv[i + 6]).toBe(String(16 * 1024 * 1024));
    expect(argv[i + 9]).toBe("64");
    const msg = Buffer.from(buildStageMessage(s, plan({ stage: "native" }), tools, [], [])).toString();
    expect(msg.endsWith(`--flag\u00000\u000064\u0000${16 * 1024 * 1024}\u0000${512 * 1024 * 1024}\u0000150000\u0000`)).toBe(true);
    // A build capture keeps its upper on disk: no tmpfs for it, whatever rootfs says.
    const build = { ...s, captureUpper: "/h/layers/x" };
    expect(stageLimits(build)).toEqual([64, 0, 512 * 1024 * 1024, 150000]);
    expect(buildStageArgv(build, plan(), tools)[i + 6]).toBe("0");
    const a = buildBwrapArgs(s, plan());
    const size = String(8 * 1024 * 1024);
    expect(a.slice(a.indexOf("/tmp") - 3, a.indexOf("/tmp") + 1)).toEqual(["--size", size, "--tmpfs", "/tmp"]);
    expect(a.slice(a.indexOf("/dev/shm") - 3, a.indexOf("/dev/shm") + 3)).toEqual(["--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]);
    expect(a.indexOf("/dev/shm")).toBeGreaterThan(a.indexOf("--dev"));
    expect(buildBwrapArgs(spec(), plan())).not.toContain("--size");
  });
  test("the .git overlay: its lower and directory to both stages, its mount point bound over /workspace/.git", () => {
    const s = spec({ gitOverlay: { lower: "/p/.git", dir: "/h/run/1-abc-git", guest: "/workspace/.git" } });
    const mount = { lowers: "l0", upper: "upper", work: "work", gitDir: "../1-abc-git" }; // relative to the run dir
    const argv = buildStageArgv(s, plan({ mount }), tools);
    const i = argv.indexOf("silo-stage");
    expect(argv.slice(i + 7, i + 9)).toEqual(["/p/.git", "../1-abc-git"]);
    const msg = Buffer.from(buildStageMessage(s, plan({ stage: "native", mount }), tools, [], [])).toString();
    expect(msg).toContain("\u0000work\u00001\u0000/p/.git\u0000../1-abc-git\u00000\u0000");
    const a = buildBwrapArgs(s, plan());
    expect(valuesOf(a, "--bind", 2)).toContain("/h/run/1-abc-git/mnt /workspace/.git");
    // After the project, before the read-only binds (.git/hooks, .git/config) that go on top of it.
    expect(a.indexOf("/h/run/1-abc-git/mnt")).toBeGreaterThan(a.indexOf("/workspace"));
  });
  test("native relays: the proxy, each hostAccess port with its header, the port forwards' socket with the guest ports", () => {
    expect(nativeRelays({ mode: "none", hostAccess: false, ports: [] }, [])).toEqual([]);
    expect(nativeRelays({ mode: "proxy", hostAccess: false, ports: [], proxySocket: "/r/proxy.sock" }, [])).toEqual(["127.0.0.1:3128>/r/proxy.sock"]);
    const all = nativeRelays(
      {
        mode: "proxy", hostAccess: true, ports: [{ host: 8000, guest: 80 }, { host: 8001, guest: 81 }, { host: 9000, guest: 80 }],
        proxySocket: "/r/proxy.sock", proxyPort: 8080, hostSocket: "/r/host.sock", forwardSocket: "/r/forward.sock",
      },
      [5432, 6379],
    );
    expect(all).toEqual([
      "127.0.0.1:8080>/r/proxy.sock", "127.0.0.2:5432>/r/host.sock>5432", "127.0.0.2:6379>/r/host.sock>6379", "/r/forward.sock>80,81",
    ]);
  });
  test("the relay process makes a user and network namespace, says so, then becomes silo __stage", () => {
    expect(buildRelayArgv(["/usr/local/bin/silo"], 42, tools)).toEqual([
      "/usr/bin/unshare", "--user", "--map-root-user", "--net", "--", "/bin/sh", "-c", RELAY_SH, "silo-relay", "/usr/local/bin/silo", "__stage", "42",
    ]);
  });
  test("overlay options: userxattr, lowerdir top first", () => {
    expect(overlayOptions(["/a", "/b", "/c"], "/u", "/w")).toBe("userxattr,lowerdir=/c:/b:/a,upperdir=/u,workdir=/w");
  });
  test("relays are needed for a proxy, host access or ports", () => {
    expect(needsRelays(spec().network)).toBe(false);
    expect(needsRelays(spec({ network: { mode: "proxy", hostAccess: false, ports: [] } }).network)).toBe(true);
    expect(needsRelays(spec({ network: { mode: "none", hostAccess: true, ports: [] } }).network)).toBe(true);
    expect(needsRelays(spec({ network: { mode: "none", hostAccess: false, ports: [{ host: 8000, guest: 8000 }] } }).network)).toBe(true);
  });
});

describe("generated files", () => {
  test("/etc/hosts names the sandbox and, with host access, host.silo.internal", () => {
    expect(buildHostsFile(spec())).toBe("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tpython\n");
    expect(buildHostsFile(spec({ network: { mode: "none", hostAccess: true, ports: [] } }))).toContain("127.0.0.2\thost.silo.internal\n");
  });
  test("/etc/resolv.conf points at loopback, so lookups fail at once", () => {
    expect(buildResolvConf(spec())).toContain("nameserver 127.0.0.1\n");
  });
  test("--args payload is NUL-terminated strings", () => {
    expect(new TextDecoder().decode(encodeArgs(["--a", "b c", ""]))).toBe("--a\0b c\0\0");
  });
});
