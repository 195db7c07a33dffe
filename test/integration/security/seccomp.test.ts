// THREATS.md invariants 4 and 5: the sandbox never holds host privilege and cannot touch silo. The seccomp
// filter refuses what widens the kernel's attack surface or reaches another process: pidfd_getfd (copying
// another process's descriptors), personality beyond the default persona (turning off ASLR or NX:
// ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC), name_to_handle_at (file handles, the other half of the
// open_by_handle_at escape) and memfd_secret (memory even the kernel cannot read). Each call first answers
// on the host (a throwaway process, only itself affected), then is refused inside the sandbox through
// dist/silo, while the persona query and the default persona still pass.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { removeTree } from "../../../src/core/fs.ts";
import { makeHome, makeProject, runSilo } from "../../helpers/silo.ts";

const PROBE = `
import ctypes, json, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
arm = platform.machine() == "aarch64"
NR = {"personality": 92 if arm else 135, "pidfd_open": 434, "pidfd_getfd": 438, "name_to_handle_at": 264 if arm else 303, "memfd_secret": 447}
L = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(L(nr), *[L(a) if isinstance(a, int) else a for a in args])
    return ctypes.get_errno() if r < 0 else "ok"
handle = ctypes.create_string_buffer(136)
handle[0:4] = (128).to_bytes(4, "little")
mount_id = ctypes.c_int(0)
pidfd = libc.syscall(L(NR["pidfd_open"]), L(os.getpid()), L(0))
print(json.dumps({
    "personality_query": call(NR["personality"], 0xffffffff),
    "personality_no_aslr": call(NR["personality"], 0x40000),
    "personality_read_implies_exec": call(NR["personality"], 0x400000),
    "personality_default": call(NR["personality"], 0),
    "pidfd_getfd": "no pidfd" if pidfd < 0 else call(NR["pidfd_getfd"], pidfd, 1, 0),
    "name_to_handle_at": call(NR["name_to_handle_at"], -100, ctypes.c_char_p(b"/tmp"), handle, ctypes.byref(mount_id), 0),
    "memfd_secret": call(NR["memfd_secret"], 0),
}))
`;

const EPERM = 1;
const ENOSYS = 38;

describe("seccomp: process- and memory-level escapes (invariants 4, 5)", () => {
  let home = "";
  beforeAll(async () => {
    home = makeHome();
    const r = await runSilo(["install", "python"], { home });
    if (r.exitCode !== 0) throw new Error(`silo install python failed (${r.exitCode}): ${r.stderr}`);
  });
  afterAll(() => removeTree(home));

  test("on the host each call answers; in the sandbox they are refused and the default persona passes", async () => {
    const host = Bun.spawnSync([process.execPath, join(import.meta.dir, "_syscalls.ts"), "/dev/shm"], { stdout: "pipe", stderr: "pipe" });
    expect(JSON.parse(host.stdout.toString())).toEqual({
      personality_query: "ok",
      personality_no_aslr: "ok",
      personality_read_implies_exec: "ok",
      pidfd_getfd: "ok",
      name_to_handle_at: "ok",
      memfd_secret: "ok",
    });
    const project = makeProject();
    const r = await runSilo(["run", "python", "-c", PROBE], { home, cwd: project });
    if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
    expect(JSON.parse(r.stdout)).toEqual({
      personality_query: "ok",
      personality_no_aslr: EPERM,
      personality_read_implies_exec: EPERM,
      personality_default: "ok",
      pidfd_getfd: EPERM,
      name_to_handle_at: ENOSYS,
      memfd_secret: ENOSYS,
    });
  });
});
