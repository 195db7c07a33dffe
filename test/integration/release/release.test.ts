// `bun run release`: the tarballs, SHA256SUMS and the formula, and each binary run (linux-x64 natively,
// linux-arm64 under qemu-aarch64-static) or checked (darwin-arm64: Mach-O arm64, ad-hoc signature whose
// CodeDirectory hashes match the file: macOS kills an arm64 executable whose signature does not).
import { beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emptyHome, repoRoot, tmp } from "../../helpers/silo.ts";
import { inspectMachO, resignAdhoc } from "../../../scripts/release/macho.ts";
import { EM_AARCH64, EM_X86_64, PLATFORMS, elfMachine, ensureRelease, version } from "./_release.ts";

let dir: string;
let unpacked: string;
const binary = (p: string) => join(unpacked, `silo-${version}-${p}`, "silo");
// Bun's linux-arm64 runtime links glibc: qemu finds the aarch64 loader and libc in Debian's cross sysroot.
const QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];

function run(argv: string[], home: string) {
  const r = Bun.spawnSync(argv, { env: { PATH: "/usr/bin:/bin", HOME: home, SILO_HOME: home }, stdout: "pipe", stderr: "pipe" });
  return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

beforeAll(() => {
  dir = ensureRelease();
  unpacked = tmp("silo-release-");
  for (const p of PLATFORMS) {
    const r = Bun.spawnSync(["tar", "-xzf", join(dir, `silo-${version}-${p}.tar.gz`), "-C", unpacked], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`unpacking ${p}: ${r.stderr.toString()}`);
  }
});

describe("the release directory", () => {
  test("SHA256SUMS names the three tarballs, with their real hashes", () => {
    const lines = readFileSync(join(dir, "SHA256SUMS"), "utf8").trimEnd().split("\n");
    expect(lines.map((l) => l.split("  ")[1])).toEqual(PLATFORMS.map((p) => `silo-${version}-${p}.tar.gz`));
    for (const l of lines) {
      const [sum, file] = l.split("  ");
      expect(createHash("sha256").update(readFileSync(join(dir, file!))).digest("hex"), file).toBe(sum!);
    }
  });

  test("each tarball holds one directory: the binary, LICENSE (Apache-2.0), README.md, completions", () => {
    for (const p of PLATFORMS) {
      const top = join(unpacked, `silo-${version}-${p}`);
      expect(readdirSync(top).sort()).toEqual(["LICENSE", "README.md", "completions", "silo"]);
      expect(readdirSync(join(top, "completions")).sort()).toEqual(["_silo", "silo.bash", "silo.fish"]);
      expect(statSync(join(top, "silo")).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(top, "LICENSE"), "utf8")).toStartWith("\n                                 Apache License\n                           Version 2.0, January 2004");
      expect(readFileSync(join(top, "LICENSE"), "utf8")).toContain("Copyright 2026 the silo authors");
    }
    expect(readFileSync(join(unpacked, `silo-${version}-linux-x64`, "LICENSE"), "utf8")).toBe(readFileSync(join(repoRoot, "LICENSE"), "utf8"));
  });

  test("Formula/silo.rb is valid Ruby and names each tarball with its sum", () => {
    const rb = join(dir, "Formula", "silo.rb");
    const r = Bun.spawnSync(["ruby", "-c", rb], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("Syntax OK\n");
    const text = readFileSync(rb, "utf8");
    for (const l of readFileSync(join(dir, "SHA256SUMS"), "utf8").trimEnd().split("\n")) {
      const [sum, file] = l.split("  ");
      expect(text).toContain(`/${file}"\n      sha256 "${sum}"`);
    }
  });
});

describe("linux-x64", () => {
  test("is an x86-64 ELF that prints its version and commit, its help, and passes doctor", () => {
    expect(elfMachine(binary("linux-x64"))).toBe(EM_X86_64);
    const home = emptyHome();
    const v = run([binary("linux-x64"), "--version"], home);
    expect(v.stdout).toMatch(new RegExp(`^silo ${version.replaceAll(".", "\\.")} \\([0-9a-f]{12}(-dirty)?\\)\\n$`));
    expect(run([binary("linux-x64"), "--help"], home).stdout).toContain("USAGE");
    const d = run([binary("linux-x64"), "doctor"], home);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/driver bwrap +ok .*set-up stage: native/);
  });
});

describe("linux-arm64 (under qemu-aarch64-static)", () => {
  test("is an aarch64 ELF that prints its version and commit, its help, and passes doctor", () => {
    expect(elfMachine(binary("linux-arm64"))).toBe(EM_AARCH64);
    const home = emptyHome();
    const v = run([...QEMU, binary("linux-arm64"), "--version"], home);
    expect(v.stderr).toBe("");
    expect(v.stdout).toMatch(new RegExp(`^silo ${version.replaceAll(".", "\\.")} \\([0-9a-f]{12}(-dirty)?\\)\\n$`));
    expect(run([...QEMU, binary("linux-arm64"), "--help"], home).stdout).toContain("USAGE");
    const d = run([...QEMU, binary("linux-arm64"), "doctor"], home);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/driver bwrap +ok .*set-up stage: native/);
    // The native stage it embeds (and doctor wrote out) was compiled for arm64, not the build machine.
    const stages = readdirSync(join(home, "libexec")).filter((f) => f.startsWith("silo-stage"));
    expect(stages.length).toBe(1);
    expect(elfMachine(join(home, "libexec", stages[0]!))).toBe(EM_AARCH64);
  });
});

describe("darwin-arm64", () => {
  test("is an arm64 Mach-O executable with a valid ad-hoc signature", () => {
    const sig = inspectMachO(new Uint8Array(readFileSync(binary("darwin-arm64"))));
    expect(sig.arch).toBe("arm64");
    expect(sig.adhoc).toBe(true);
    expect(sig.problems).toEqual([]);
    expect(sig.directories[0]!.hashType).toBe("sha256");
    // Every byte before the signature is covered by a page hash.
    expect(sig.directories[0]!.codeLimit).toBe(sig.dataoff);
  });

  test("the check sees one changed byte, and re-signing makes the signature match again", () => {
    const file = new Uint8Array(readFileSync(binary("darwin-arm64")));
    const sig = inspectMachO(file);
    const at = Math.floor(sig.dataoff / 2);
    file[at] = file[at]! ^ 0xff;
    const broken = inspectMachO(file);
    expect(broken.problems).toEqual([`sha256 CodeDirectory: 1 of ${sig.directories[0]!.nCodeSlots} page hashes do not match the file (first: page ${Math.floor(at / 4096)})`]);
    expect(resignAdhoc(file).problems).toEqual([]);
    expect(inspectMachO(file).problems).toEqual([]);
  });
});

describe("a release that cannot be built here", () => {
  test("fails at once, naming the missing cross-compiler's package, and leaves the previous release as it was", () => {
    // A PATH with what a release needs but the aarch64 cross-compiler.
    const bin = tmp("silo-release-path-");
    for (const t of ["bun", "cc", "git", "tar", "gzip", "sh"]) symlinkSync(Bun.which(t)!, join(bin, t));
    const out = join(tmp("silo-release-out-"), "release");
    mkdirSync(out);
    writeFileSync(join(out, "SHA256SUMS"), "the previous release\n");
    const r = Bun.spawnSync([Bun.which("bun")!, "scripts/release.ts", "--out", out], { cwd: repoRoot, env: { PATH: bin, HOME: process.env.HOME ?? "/root" }, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe("release: no aarch64-linux-gnu-gcc to compile the linux-arm64 native sandbox stage (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)\n");
    expect(readdirSync(join(out, ".."))).toEqual(["release"]);
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe("the previous release\n");
    expect(existsSync(join(out, "Formula"))).toBe(false);
  });
});
