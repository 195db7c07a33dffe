// THREATS.md invariants 2 and 4: nothing the sandbox writes makes a host program run with someone else's
// privilege later, and the sandbox holds no host privilege. A setuid/setgid bit or a file capability
// (security.capability) on a file in /workspace stays on the host file: another local user would run it
// as its owner (the invoker, or root when silo runs as root). The host control shows each way of setting
// the bits works on a plain directory; through dist/silo, every path that sets them is refused (chmod,
// fchmod, fchmodat, fchmodat2, open/openat/creat with O_CREAT or O_TMPFILE, mknod, `cp -p` of the image's
// setuid su, setxattr of a file capability; openat2 answers ENOSYS) and no bit reaches the host file,
// while ordinary modes still work. A build (whose layer may keep them: dpkg sets them) can set them in
// its layer, but none stays on a project file, and the layer's directory is private.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, constants, copyFileSync, lstatSync, openSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, siloBin, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

const T = 120_000;
const EPERM = 1;
const ENOSYS = 38;

const PROBE = `
import ctypes, errno, json, os, platform, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
arm = platform.machine() == "aarch64"
L = ctypes.c_long
def sys(nr, *args):
    r = libc.syscall(L(nr), *[L(a) if isinstance(a, int) else a for a in args])
    return ctypes.get_errno() if r < 0 else "ok"
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return e.errno
out = {}
open("t", "wb").write(open("/bin/true", "rb").read())
os.chmod("t", 0o755)
dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
out["chmod 4755"] = attempt(lambda: os.chmod("t", 0o4755))
out["chmod 2755"] = attempt(lambda: os.chmod("t", 0o2755))
out["chmod 0700"] = attempt(lambda: os.chmod("t", 0o700))
fd = os.open("t", os.O_RDONLY)
out["fchmod 4755"] = attempt(lambda: os.fchmod(fd, 0o4755))
out["fchmodat 6755"] = attempt(lambda: os.chmod("t", 0o6755, dir_fd=dfd))
out["fchmodat2 4755"] = sys(452, dfd, ctypes.c_char_p(b"t"), 0o4755, 0)
out["open O_CREAT 4755"] = attempt(lambda: os.open("o", os.O_CREAT | os.O_WRONLY, 0o4755))
out["openat O_CREAT 2755"] = attempt(lambda: os.open("o2", os.O_CREAT | os.O_WRONLY, 0o2755, dir_fd=dfd))
out["open O_TMPFILE 4755"] = attempt(lambda: os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o4755))
out["creat 4755"] = "no creat" if arm else sys(85, ctypes.c_char_p(b"c"), 0o4755)
out["openat2"] = sys(437, dfd, ctypes.c_char_p(b"t"), ctypes.create_string_buffer(24), 24)
out["mknod S_IFREG|4755"] = attempt(lambda: os.mknod("m", 0o100000 | 0o4755))
out["open O_CREAT 0644"] = attempt(lambda: os.close(os.open("plain", os.O_CREAT | os.O_WRONLY, 0o644)))
out["mkdir 6755"] = attempt(lambda: os.mkdir("d", 0o6755))
out["image su is setuid"] = bool(os.stat("/bin/su").st_mode & 0o4000)
out["cp -p su"] = subprocess.run(["cp", "-p", "/bin/su", "su"], stderr=subprocess.DEVNULL).returncode
out["setxattr security.capability"] = attempt(lambda: os.setxattr("t", "security.capability", bytes([0, 0, 0, 2, 0, 0x20, 0, 0]) + bytes(12)))
print(json.dumps(out))
`;

/** Every file and directory under `dir` whose mode has S_ISUID or S_ISGID (relative paths). */
/** An attribute of a host file as python reads it ("none" when absent). */
function hostXattr(path: string, name: string): string {
  const r = Bun.spawnSync(["python3", "-c", `import os, sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2]).hex())\nexcept OSError: print("none")`, path, name]);
  return r.stdout.toString().trim();
}

function setidUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(join(dir, name));
    if (!st.isSymbolicLink() && st.mode & 0o6000) out.push(name);
  }
  return out.sort();
}

describe("security: no setuid/setgid bits or file capabilities from the sandbox (invariants 2, 4)", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python");
  }, T);
  afterAll(cleanUp);

  test("host control: chmod and a creating open set the bits on a plain directory", () => {
    const dir = tmp("silo-setuid-host-");
    copyFileSync("/bin/true", join(dir, "t"));
    chmodSync(join(dir, "t"), 0o4755);
    expect(statSync(join(dir, "t")).mode & 0o7777).toBe(0o4755);
    chmodSync(join(dir, "t"), 0o2755);
    expect(statSync(join(dir, "t")).mode & 0o7777).toBe(0o2755);
    closeSync(openSync(join(dir, "o"), constants.O_CREAT | constants.O_WRONLY, 0o4755));
    expect(statSync(join(dir, "o")).mode & 0o4000).toBe(0o4000);
    expect(setidUnder(dir)).toEqual(["o", "t"]);
  });

  test("through silo every path is refused, ordinary modes still work, and no bit reaches the host", async () => {
    const project = makeProject();
    const r = ok(await runSilo(["run", "python", "-c", PROBE], { home, cwd: project }));
    expect(JSON.parse(r.stdout)).toEqual({
      "chmod 4755": EPERM,
      "chmod 2755": EPERM,
      "chmod 0700": "ok",
      "fchmod 4755": EPERM,
      "fchmodat 6755": EPERM,
      "fchmodat2 4755": EPERM,
      "open O_CREAT 4755": EPERM,
      "openat O_CREAT 2755": EPERM,
      "open O_TMPFILE 4755": EPERM,
      "creat 4755": process.arch === "arm64" ? "no creat" : EPERM,
      openat2: ENOSYS,
      "mknod S_IFREG|4755": EPERM,
      "open O_CREAT 0644": "ok",
      "mkdir 6755": "ok",
      "image su is setuid": true,
      "cp -p su": 1,
      "setxattr security.capability": EPERM,
    });
    expect(statSync(join(project, "t")).mode & 0o7777).toBe(0o700);
    // mkdir never takes S_ISUID/S_ISGID from its mode (only a setgid parent's S_ISGID is inherited)
    expect(statSync(join(project, "d")).isDirectory()).toBe(true);
    expect(setidUnder(project)).toEqual([]);
  }, T);

  test("a build's file capability on a project file is set in the sandbox and gone from the host file after it", async () => {
    // The build keeps CAP_SETFCAP (dpkg's setcap): run as root, a capability it writes on /workspace is a
    // host-valid one (its root is host uid 0), and a copy of any binary with cap_setuid gives a local user root.
    const project = makeProject("");
    copyFileSync("/bin/true", join(project, "prog"));
    const set = `import os, struct
os.setxattr("/workspace/prog", "security.capability", struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0))
print("set", len(os.getxattr("/workspace/prog", "security.capability")))`;
    const r = ok(await runSilo(["build", "python", "python", "-c", set], { home, cwd: project }));
    expect(r.stdout).toContain("set 20"); // the attack's first half: the host file carried it while the build ran
    expect(r.stderr).toContain("their bits were removed: prog");
    expect(hostXattr(join(project, "prog"), "security.capability")).toBe("none");
  }, T);

  test("a build killed before its sweep leaves a setuid file; the next silo run in any project removes the bit", async () => {
    const project = makeProject("");
    copyFileSync("/bin/true", join(project, "idprog"));
    const proc = Bun.spawn([siloBin, "build", "python", "/bin/sh", "-c", "chmod 4755 /workspace/idprog; sleep 60"], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home },
      stdout: "ignore",
      stderr: "ignore",
    });
    const deadline = Date.now() + 60_000;
    while (!(statSync(join(project, "idprog")).mode & 0o4000) && Date.now() < deadline) await Bun.sleep(50);
    proc.kill("SIGKILL");
    await proc.exited;
    // The control: killed, the build's own sweep never ran; the bit is on the host file.
    expect(statSync(join(project, "idprog")).mode & 0o7777).toBe(0o4755);
    const other = makeProject();
    const next = ok(await runSilo(["run", "python", "-c", "pass"], { home, cwd: other }));
    expect(next.stderr).toContain(`a build that was killed left setuid/setgid files or file capabilities in ${project}`);
    expect(statSync(join(project, "idprog")).mode & 0o7777).toBe(0o755);
    expect(readdirSync(join(home, "state")).includes("sweep")).toBe(false);
  }, T);

  test("a build may set them in its layer (private), never on a project file", async () => {
    const project = makeProject("");
    const script = "cp /bin/true /usr/local/bin/suid && chmod 4755 /usr/local/bin/suid && cp /bin/true /workspace/planted && chmod 6755 /workspace/planted";
    const r = ok(await runSilo(["build", "python", "/bin/sh", "-c", script], { home, cwd: project }));
    expect(r.stderr).toContain("their bits were removed: planted");
    expect(statSync(join(project, "planted")).mode & 0o7777).toBe(0o755);
    expect(setidUnder(project).filter((p) => !p.startsWith(".silo/"))).toEqual([]); // the layer is private (below)
    const base = join(project, ".silo", "python");
    const gen = readlinkSync(join(base, "current"));
    expect(statSync(join(base, gen)).mode & 0o777).toBe(0o700);
    expect(statSync(join(base, gen, "root/usr/local/bin/suid")).mode & 0o7777).toBe(0o4755);
  }, T);
});
