import { describe, expect, test } from "bun:test";
import {
  buildSeccompFilter, CLONE_NEWUSER, DENIED_SYSCALLS, ENOSYS, EPERM, RET, syscallNumber, TIOCSTI, type SeccompArch,
} from "../../../src/runner/drivers/bwrap/seccomp.ts";

const ARCH = { x86_64: 0xc000003e, aarch64: 0xc00000b7 } as const;

/** A classic-BPF interpreter for the subset the generator emits: enough to check every decision. */
function evaluate(prog: Uint8Array, data: { nr: number; arch: number; args?: bigint[] }): number {
  const mem = new DataView(new ArrayBuffer(64));
  mem.setInt32(0, data.nr, true);
  mem.setUint32(4, data.arch, true);
  (data.args ?? []).forEach((a, i) => mem.setBigUint64(16 + 8 * i, a, true));
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = v.getUint16(pc * 8, true), jt = v.getUint8(pc * 8 + 2), jf = v.getUint8(pc * 8 + 3);
    const k = v.getUint32(pc * 8 + 4, true);
    switch (code) {
      case 0x20: acc = mem.getUint32(k, true); break;
      case 0x15: pc += acc === k ? jt : jf; break;
      case 0x35: pc += acc >= k ? jt : jf; break;
      case 0x45: pc += (acc & k) !== 0 ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unexpected opcode ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error("fell off the end of the program");
}

for (const arch of ["x86_64", "aarch64"] as SeccompArch[]) {
  describe(`seccomp filter (${arch})`, () => {
    const prog = buildSeccompFilter(arch);
    const run = (name: string, ...args: bigint[]) => evaluate(prog, { nr: syscallNumber(name, arch), arch: ARCH[arch], args });

    test("is a whole number of instructions, well within the kernel's limit", () => {
      expect(prog.length % 8).toBe(0);
      expect(prog.length / 8).toBeLessThan(4096);
    });
    test("denies keyrings, bpf, ptrace, module loading and new mounts with EPERM", () => {
      for (const name of ["keyctl", "add_key", "request_key", "bpf", "ptrace", "userfaultfd", "init_module", "finit_module", "mount", "umount2", "pivot_root", "fsopen", "open_by_handle_at", "setns", "perf_event_open", "kexec_load"])
        expect({ name, ret: run(name) }).toEqual({ name, ret: RET.ERRNO | EPERM });
    });
    test("every denied syscall that exists on this architecture is denied", () => {
      for (const name of DENIED_SYSCALLS) if (syscallNumber(name, arch) >= 0) expect(run(name)).toBe(RET.ERRNO | EPERM);
    });
    test("answers clone3 and io_uring with ENOSYS so callers fall back", () => {
      for (const name of ["clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"]) expect(run(name)).toBe(RET.ERRNO | ENOSYS);
    });
    test("allows ordinary system calls", () => {
      // read, write, openat, getpid, exit_group, mmap, execve
      const ordinary = arch === "x86_64" ? [0, 1, 257, 39, 231, 9, 59] : [63, 64, 56, 172, 94, 222, 221];
      for (const nr of ordinary) expect(evaluate(prog, { nr, arch: ARCH[arch] })).toBe(RET.ALLOW);
    });
    test("ioctl: TIOCSTI is refused, also with garbage in the upper 32 bits; other requests pass", () => {
      expect(run("ioctl", 0n, BigInt(TIOCSTI))).toBe(RET.ERRNO | EPERM);
      expect(run("ioctl", 0n, (1n << 32n) | BigInt(TIOCSTI))).toBe(RET.ERRNO | EPERM);
      expect(run("ioctl", 0n, 0x541cn)).toBe(RET.ERRNO | EPERM); // TIOCLINUX
      expect(run("ioctl", 0n, 0x5401n)).toBe(RET.ALLOW); // TCGETS
      expect(run("ioctl", 0n, 0x5413n)).toBe(RET.ALLOW); // TIOCGWINSZ
    });
    test("clone and unshare: a new user namespace is refused, threads and forks pass", () => {
      expect(run("clone", BigInt(CLONE_NEWUSER | 0x11))).toBe(RET.ERRNO | EPERM);
      expect(run("unshare", BigInt(CLONE_NEWUSER))).toBe(RET.ERRNO | EPERM);
      expect(run("clone", 0x3d0f00n)).toBe(RET.ALLOW); // pthread_create's flags
      expect(run("clone", 0x1200011n)).toBe(RET.ALLOW); // fork()
      expect(run("unshare", 0x200n)).toBe(RET.ALLOW); // CLONE_FS
    });
    test("pidfd_getfd is refused; name_to_handle_at and memfd_secret answer ENOSYS", () => {
      expect(run("pidfd_getfd", 3n, 0n, 0n)).toBe(RET.ERRNO | EPERM);
      expect(run("name_to_handle_at")).toBe(RET.ERRNO | ENOSYS);
      expect(run("memfd_secret", 0n)).toBe(RET.ERRNO | ENOSYS);
    });
    test("personality: the default persona, linux32, uname26 and the query pass; anything else is refused", () => {
      for (const k of [0n, 8n, 0x20008n, 0xffffffffn, (1n << 32n) | 0n]) expect({ k, ret: run("personality", k) }).toEqual({ k, ret: RET.ALLOW });
      // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ADDR_COMPAT_LAYOUT, MMAP_PAGE_ZERO, PER_BSD; also with garbage above
      for (const k of [0x40000n, 0x400000n, 0x200000n, 0x100000n, 0x6n, 0x40008n, (1n << 32n) | 0x40000n])
        expect({ k, ret: run("personality", k) }).toEqual({ k, ret: RET.ERRNO | EPERM });
    });
    test("setuid/setgid modes are refused in chmod, fchmod(at)(2), mknod(at) and creating opens; openat2 answers ENOSYS", () => {
      const SUID = 0o4755n, SGID = 0o2755n, HIGH = 1n << 32n;
      const at = (name: string, ...a: bigint[]) => (syscallNumber(name, arch) < 0 ? "absent" : run(name, ...a));
      const eperm = RET.ERRNO | EPERM;
      for (const [name, mode] of [["chmod", 1], ["fchmod", 1], ["creat", 1], ["mknod", 1], ["fchmodat", 2], ["fchmodat2", 2], ["mknodat", 2]] as const) {
        const args = (m: bigint) => [0n, 0n, 0n].map((z, i) => (i === mode ? m : z));
        if (syscallNumber(name, arch) < 0) continue;
        expect({ name, suid: run(name, ...args(SUID)), sgid: run(name, ...args(SGID)), high: run(name, ...args(HIGH | SUID)), plain: run(name, ...args(0o755n)) })
          .toEqual({ name, suid: eperm, sgid: eperm, high: eperm, plain: RET.ALLOW });
      }
      expect(at("open", 0n, 0o101n, SUID)).toBe(arch === "x86_64" ? eperm : "absent"); // O_CREAT|O_WRONLY
      expect(at("open", 0n, 0o1n, SUID)).toBe(arch === "x86_64" ? RET.ALLOW : "absent"); // no O_CREAT: mode unused
      expect(run("openat", 0n, 0n, 0o101n, SGID)).toBe(eperm);
      expect(run("openat", 0n, 0n, 0o20200001n, SUID)).toBe(eperm); // O_TMPFILE
      expect(run("openat", 0n, 0n, 0o101n, 0o644n)).toBe(RET.ALLOW);
      expect(run("openat", 0n, 0n, 0n, SUID)).toBe(RET.ALLOW);
      expect(run("openat2")).toBe(RET.ERRNO | ENOSYS);
      const mkdirat = arch === "x86_64" ? 258 : 34; // mkdir never takes them from its mode: not filtered
      expect(evaluate(prog, { nr: mkdirat, arch: ARCH[arch], args: [0n, 0n, 0o6755n] })).toBe(RET.ALLOW);
    });
    test("the keepSetuid variant (builds) lets setuid modes and openat2 through, and keeps every other rule", () => {
      const build = buildSeccompFilter(arch, { keepSetuid: true });
      const b = (name: string, ...args: bigint[]) => evaluate(build, { nr: syscallNumber(name, arch), arch: ARCH[arch], args });
      expect(b("fchmodat", 0n, 0n, 0o4755n)).toBe(RET.ALLOW);
      expect(b("openat", 0n, 0n, 0o101n, 0o4755n)).toBe(RET.ALLOW);
      expect(b("openat2")).toBe(RET.ALLOW);
      expect(b("keyctl")).toBe(RET.ERRNO | EPERM);
      expect(b("ioctl", 0n, BigInt(TIOCSTI))).toBe(RET.ERRNO | EPERM);
    });
    test("kills any other ABI", () => {
      expect(evaluate(prog, { nr: 1, arch: 0x40000003 /* i386 */ })).toBe(RET.KILL_PROCESS);
      const other = arch === "x86_64" ? ARCH.aarch64 : ARCH.x86_64;
      expect(evaluate(prog, { nr: syscallNumber("keyctl", arch), arch: other })).toBe(RET.KILL_PROCESS);
    });
  });
}

test("x32 system calls (the 0x40000000 bit) are killed on x86_64", () => {
  expect(evaluate(buildSeccompFilter("x86_64"), { nr: 0x40000000 + 250, arch: ARCH.x86_64 })).toBe(RET.KILL_PROCESS);
});
