/**
 * The seccomp filter bwrap installs in the sandbox (`--seccomp FD`): a classic-BPF program, generated here
 * for x86_64 and aarch64 so silo needs no libseccomp. It denies what a dev tool never needs and what widens
 * the kernel's attack surface or reaches beyond the sandbox:
 *
 *   EPERM   keyctl, add_key, request_key        kernel keyrings are not namespaced: the host user's keys
 *           bpf, perf_event_open, userfaultfd   big kernel attack surface, used by exploits, not by tools
 *           ptrace, process_vm_readv/writev     no debugging of other processes (gdb/strace do not work)
 *           kexec_load, kexec_file_load, init_module, finit_module, delete_module, reboot,
 *           swapon, swapoff, acct, syslog, quotactl, quotactl_fd, lookup_dcookie, nfsservctl, uselib,
 *           vhangup, settimeofday, clock_settime, clock_adjtime, adjtimex, iopl, ioperm (x86_64)
 *           mount, umount2, pivot_root, open_tree, move_mount, fsopen, fsconfig, fsmount, fspick,
 *           mount_setattr                       no new mounts, and the read-only binds stay in place
 *           open_by_handle_at                   the classic container escape (file handles bypass paths)
 *           setns                               no joining other namespaces
 *           pidfd_getfd                         no copying another process's descriptors (a ptrace-mode
 *                                               check on the same user: silo's own helpers look alike)
 *           personality, except the default     READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and the like turn off
 *             persona, PER_LINUX32 (linux32),   exploit mitigations; the query and what linux32/uname26
 *             UNAME26 and the query (~0)        builds use still pass (as in Docker's profile)
 *           unshare and clone with CLONE_NEWUSER  no nested user namespaces (bwrap --disable-userns too)
 *           ioctl TIOCSTI, TIOCLINUX            no typing into the caller's terminal (needed with a TTY,
 *                                               where bwrap runs without --new-session)
 *           chmod, fchmod, fchmodat, fchmodat2, no setuid/setgid file for a host user to run later
 *             mknod, mknodat with S_ISUID or    (THREATS.md invariant 2); mkdir cannot set them (only a
 *             S_ISGID in the mode; open, openat parent's setgid is inherited), and openat2 answers
 *             and creat creating (O_CREAT,      ENOSYS (its mode sits in memory BPF cannot read). Not
 *             O_TMPFILE) with them              in the `keepSetuid` variant (`silo build`: dpkg sets them)
 *   ENOSYS  clone3                              its flags sit in memory BPF cannot read; libc falls back
 *                                               to clone, which is checked
 *           io_uring_setup/enter/register       io_uring bypasses seccomp for the operations it runs;
 *                                               libuv and others fall back to plain syscalls on ENOSYS
 *           openat2                             its mode sits in memory; callers fall back to openat
 *                                               (only without `keepSetuid`)
 *           name_to_handle_at                   file handles (the other half of open_by_handle_at) and
 *                                               mount ids; callers fall back to paths/fdinfo on ENOSYS
 *           memfd_secret                        memory even the kernel cannot read (hides exploit state);
 *                                               kernels without secretmem answer ENOSYS too
 *   KILL    any other ABI (i386 via int 0x80, x32): their syscall numbers differ from this table
 *
 * Everything else is allowed. Argument checks compare only the low 32 bits, which is what the kernel
 * reads for `int` flags and ioctl requests (so garbage in the high half cannot slip past).
 */

export type SeccompArch = "x86_64" | "aarch64";

const AUDIT_ARCH: Record<SeccompArch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };

/** Syscall numbers: [x86_64, aarch64]; -1 where the call does not exist on that architecture. */
const NR: Record<string, [number, number]> = {
  keyctl: [250, 219], add_key: [248, 217], request_key: [249, 218],
  bpf: [321, 280], perf_event_open: [298, 241], userfaultfd: [323, 282],
  ptrace: [101, 117], process_vm_readv: [310, 270], process_vm_writev: [311, 271],
  kexec_load: [246, 104], kexec_file_load: [320, 294],
  init_module: [175, 105], finit_module: [313, 273], delete_module: [176, 106],
  reboot: [169, 142], swapon: [167, 224], swapoff: [168, 225], acct: [163, 89], syslog: [103, 116],
  quotactl: [179, 60], quotactl_fd: [443, 443], lookup_dcookie: [212, 18], nfsservctl: [180, 42],
  uselib: [134, -1], vhangup: [153, 58], settimeofday: [164, 170], clock_settime: [227, 112],
  clock_adjtime: [305, 266], adjtimex: [159, 171], iopl: [172, -1], ioperm: [173, -1],
  mount: [165, 40], umount2: [166, 39], pivot_root: [155, 41], open_tree: [428, 428], move_mount: [429, 429],
  fsopen: [430, 430], fsconfig: [431, 431], fsmount: [432, 432], fspick: [433, 433], mount_setattr: [442, 442],
  open_by_handle_at: [304, 265], setns: [308, 268], pidfd_getfd: [438, 438], personality: [135, 92],
  name_to_handle_at: [303, 264], memfd_secret: [447, 447],
  clone3: [435, 435], io_uring_setup: [425, 425], io_uring_enter: [426, 426], io_uring_register: [427, 427],
  ioctl: [16, 29], clone: [56, 220], unshare: [272, 97],
  chmod: [90, -1], fchmod: [91, 52], fchmodat: [268, 53], fchmodat2: [452, 452], mknod: [133, -1], mknodat: [259, 33],
  creat: [85, -1], open: [2, -1], openat: [257, 56], openat2: [437, 437],
};

/** Denied outright with EPERM. */
export const DENIED_SYSCALLS = [
  "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
  "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load",
  "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "syslog",
  "quotactl", "quotactl_fd", "lookup_dcookie", "nfsservctl", "uselib", "vhangup",
  "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm",
  "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
  "mount_setattr", "open_by_handle_at", "setns", "pidfd_getfd",
] as const;
/** Answered with ENOSYS so callers fall back to something the filter can check or that seccomp covers. */
export const UNSUPPORTED_SYSCALLS = ["clone3", "io_uring_setup", "io_uring_enter", "io_uring_register", "name_to_handle_at", "memfd_secret"] as const;

export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
export const CLONE_NEWUSER = 0x10000000;
/** personality(2) arguments that pass: PER_LINUX, PER_LINUX32, UNAME26 | PER_LINUX32, and the query. */
export const PERSONAS_ALLOWED = [0x0, 0x8, 0x20008, 0xffffffff] as const;
const X32_SYSCALL_BIT = 0x40000000;
/** S_ISUID | S_ISGID: refused in a mode argument (chmod family, mknod, file creation). */
export const SETID_BITS = 0o6000;
/** O_CREAT | __O_TMPFILE (the same on x86_64 and aarch64): the flags with which open uses its mode. */
export const CREATE_FLAGS = 0o100 | 0o20000000;
/** Where each call carries its mode: [syscall, argument index]. */
const MODE_ARG: [string, number][] = [["chmod", 1], ["fchmod", 1], ["creat", 1], ["mknod", 1], ["fchmodat", 2], ["fchmodat2", 2], ["mknodat", 2]];

export interface SeccompOptions {
  /** Let the sandbox make setuid/setgid files (a build capturing a layer in SILO_HOME: dpkg sets them). */
  keepSetuid?: boolean;
}

export const RET = { ALLOW: 0x7fff0000, KILL_PROCESS: 0x80000000, ERRNO: 0x00050000 } as const;
export const EPERM = 1;
export const ENOSYS = 38;

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
// struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little endian on both).
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;

type Target = string | null; // a label, or null for "the next instruction"
interface Insn {
  code: number;
  k: number;
  jt?: Target;
  jf?: Target;
  label?: string;
}

export function nativeSeccompArch(arch: string = process.arch): SeccompArch | null {
  return arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : null;
}

export const syscallNumber = (name: string, arch: SeccompArch): number => NR[name]?.[arch === "x86_64" ? 0 : 1] ?? -1;

/** The filter as bytes for `bwrap --seccomp FD`: an array of struct sock_filter (8 bytes each). */
export function buildSeccompFilter(arch: SeccompArch, opts: SeccompOptions = {}): Uint8Array {
  const nr = (name: string) => syscallNumber(name, arch);
  const p: Insn[] = [];
  const ld = (off: number, label?: string) => p.push({ code: LD_W_ABS, k: off, label });
  const jeq = (k: number, jt: Target, jf: Target = null) => p.push({ code: JEQ_K, k, jt, jf });
  const ret = (k: number, label?: string) => p.push({ code: RET_K, k, label });

  ld(OFF_ARCH);
  jeq(AUDIT_ARCH[arch], null, "kill");
  ld(OFF_NR);
  if (arch === "x86_64") p.push({ code: JGE_K, k: X32_SYSCALL_BIT, jt: "kill", jf: null });
  for (const name of DENIED_SYSCALLS) if (nr(name) >= 0) jeq(nr(name), "eperm");
  for (const name of UNSUPPORTED_SYSCALLS) jeq(nr(name), "enosys");
  jeq(nr("ioctl"), "ioctl");
  jeq(nr("clone"), "flags");
  jeq(nr("unshare"), "flags");
  jeq(nr("personality"), "persona");
  if (!opts.keepSetuid) {
    for (const [name, arg] of MODE_ARG) if (nr(name) >= 0) jeq(nr(name), `mode${arg}`);
    if (nr("open") >= 0) jeq(nr("open"), "open");
    jeq(nr("openat"), "openat");
    jeq(nr("openat2"), "enosys");
  }
  ret(RET.ALLOW);
  ld(argLow(1), "ioctl");
  jeq(TIOCSTI, "eperm");
  jeq(TIOCLINUX, "eperm");
  ret(RET.ALLOW);
  // clone(flags, ...) and unshare(flags) both carry the flags in the first argument on both architectures.
  ld(argLow(0), "flags");
  p.push({ code: JSET_K, k: CLONE_NEWUSER, jt: "eperm", jf: null });
  ret(RET.ALLOW);
  ld(argLow(0), "persona");
  for (const k of PERSONAS_ALLOWED) jeq(k, "allow");
  ret(RET.ERRNO | EPERM);
  if (!opts.keepSetuid) {
    // open(path, flags, mode) and openat(dirfd, path, flags, mode): the mode counts only when creating.
    ld(argLow(1), "open");
    p.push({ code: JSET_K, k: CREATE_FLAGS, jt: "mode2", jf: "allow" });
    ld(argLow(2), "openat");
    p.push({ code: JSET_K, k: CREATE_FLAGS, jt: "mode3", jf: "allow" });
    for (const i of [1, 2, 3]) {
      ld(argLow(i), `mode${i}`);
      p.push({ code: JSET_K, k: SETID_BITS, jt: "eperm", jf: "allow" });
    }
  }
  ret(RET.ALLOW, "allow");
  ret(RET.ERRNO | EPERM, "eperm");
  ret(RET.ERRNO | ENOSYS, "enosys");
  ret(RET.KILL_PROCESS, "kill");
  return assemble(p);
}

function assemble(p: Insn[]): Uint8Array {
  const at = new Map<string, number>();
  p.forEach((insn, i) => insn.label && at.set(insn.label, i));
  const out = new Uint8Array(p.length * 8);
  const view = new DataView(out.buffer);
  p.forEach((insn, i) => {
    const rel = (t: Target | undefined) => {
      if (t === undefined || t === null) return 0;
      const dest = at.get(t);
      if (dest === undefined || dest <= i || dest - i - 1 > 255) throw new Error(`seccomp: bad jump to ${t}`);
      return dest - i - 1;
    };
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, rel(insn.jt));
    view.setUint8(i * 8 + 3, rel(insn.jf));
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return out;
}
