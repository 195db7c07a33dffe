// scripts/install.sh end to end against the release directory served on loopback: a good install, a
// corrupted tarball (nothing installed), platforms it picks or refuses (a fake `uname` first on PATH).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, linkSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmp } from "../../helpers/silo.ts";
import { EM_AARCH64, EM_X86_64, elfMachine, ensureRelease, version } from "./_release.ts";

let good: string;
let corrupt: string;
const requests: string[] = [];
let server: ReturnType<typeof Bun.serve>;
const url = (dir: "good" | "corrupt") => `http://127.0.0.1:${server.port}/${dir}`;

beforeAll(() => {
  good = ensureRelease();
  // The same release, with one byte of the linux-x64 tarball changed after SHA256SUMS was written.
  corrupt = tmp("silo-release-corrupt-");
  for (const f of readdirSync(good)) if (f.endsWith(".tar.gz") || f === "SHA256SUMS") linkSync(join(good, f), join(corrupt, f));
  const tarball = join(corrupt, `silo-${version}-linux-x64.tar.gz`);
  const bytes = readFileSync(tarball);
  const mid = bytes.length >> 1;
  bytes[mid] = bytes[mid]! ^ 0xff;
  unlinkSync(tarball); // a hard link to the good one: write a new file, not through the link
  writeFileSync(tarball, bytes);
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const m = /^\/(good|corrupt)\/([\w.-]+)$/.exec(path);
      const file = m && join(m[1] === "good" ? good : corrupt, m[2]!);
      return file && existsSync(file) ? new Response(Bun.file(file)) : new Response("not found", { status: 404 });
    },
  });
});
afterAll(() => server?.stop(true));

/** A directory with a `uname` that reports this system and machine, to put first on PATH. */
function fakeUname(system: string, machine: string): string {
  const dir = tmp("silo-uname-");
  writeFileSync(join(dir, "uname"), `#!/bin/sh\ncase "$1" in -s) echo ${system} ;; -m) echo ${machine} ;; *) echo ${system} ;; esac\n`);
  chmodSync(join(dir, "uname"), 0o755);
  return dir;
}

/** Run install.sh (served from the good release) with sh, a fresh HOME and TMPDIR; async: we also serve. */
async function install(args: string[], opts: { path?: string } = {}) {
  const home = tmp("silo-install-home-");
  const tmpdir = tmp("silo-install-tmp-");
  const script = join(tmp("silo-install-script-"), "install.sh");
  copyFileSync(join(good, "install.sh"), script);
  const proc = Bun.spawn(["sh", script, ...args], {
    env: { PATH: `${opts.path ? `${opts.path}:` : ""}/usr/bin:/bin`, HOME: home, TMPDIR: tmpdir },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr, home, tmpdir };
}

describe("install.sh", () => {
  test("installs the linux-x64 build to ~/.local/bin, with completions, and prints the shellenv line", async () => {
    const r = await install(["--base-url", url("good")]);
    expect(r.exitCode, r.stderr).toBe(0);
    const bin = join(r.home, ".local/bin/silo");
    expect(elfMachine(bin)).toBe(EM_X86_64);
    const v = Bun.spawnSync([bin, "--version"], { stdout: "pipe" }).stdout.toString();
    expect(v).toStartWith(`silo ${version} (`);
    expect(r.stdout).toContain(`install.sh: installed ${v.trim()} to ${bin}`);
    expect(r.stdout).toContain(`eval "$(silo shellenv)"`);
    expect(r.stdout).toContain(`${join(r.home, ".local/bin")} is not on PATH`);
    for (const f of ["bash-completion/completions/silo", "zsh/site-functions/_silo", "fish/vendor_completions.d/silo.fish"])
      expect(existsSync(join(r.home, ".local/share", f)), f).toBe(true);
    expect(readdirSync(r.tmpdir)).toEqual([]);
  });

  test("--prefix and --version pick the directory and the tarball", async () => {
    const prefix = join(tmp(), "opt");
    const r = await install(["--prefix", prefix, "--version", `v${version}`, "--base-url", url("good")]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(elfMachine(join(prefix, "bin/silo"))).toBe(EM_X86_64);
    expect(existsSync(join(r.home, ".local"))).toBe(false);
  });

  test("a tarball that does not match SHA256SUMS aborts and installs nothing", async () => {
    const r = await install(["--base-url", url("corrupt")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`install\\.sh: silo-${version.replaceAll(".", "\\.")}-linux-x64\\.tar\\.gz does not match SHA256SUMS \\(expected [0-9a-f]{64}, got [0-9a-f]{64}\\): nothing installed\\n$`));
    expect(existsSync(join(r.home, ".local"))).toBe(false);
    expect(readdirSync(r.tmpdir)).toEqual([]);
  });

  test("picks the arm64 builds on an aarch64 Linux and an arm64 Mac", async () => {
    const linux = await install(["--base-url", url("good")], { path: fakeUname("Linux", "aarch64") });
    expect(linux.exitCode, linux.stderr).toBe(0);
    expect(elfMachine(join(linux.home, ".local/bin/silo"))).toBe(EM_AARCH64);
    const mac = await install(["--base-url", url("good")], { path: fakeUname("Darwin", "arm64") });
    expect(mac.exitCode, mac.stderr).toBe(0);
    expect(readFileSync(join(mac.home, ".local/bin/silo")).readUInt32LE(0)).toBe(0xfeedfacf);
    expect(mac.stderr).toContain(`downloading silo-${version}-darwin-arm64.tar.gz`);
  });

  test("an unknown platform, or an Intel Mac, is refused before anything is downloaded", async () => {
    const cases: [string, string, string][] = [
      ["Linux", "riscv64", "install.sh: silo has no release for linux on riscv64 (there are: Linux x86_64, Linux arm64, macOS on Apple silicon)\n"],
      ["FreeBSD", "amd64", "install.sh: silo has no release for FreeBSD (there are: Linux x86_64, Linux arm64, macOS on Apple silicon)\n"],
      ["Darwin", "x86_64", "install.sh: silo needs Apple silicon on macOS (its sandbox is an arm64 virtual machine); this Mac is Intel\n"],
    ];
    for (const [system, machine, message] of cases) {
      requests.length = 0;
      const r = await install(["--base-url", url("good")], { path: fakeUname(system, machine) });
      expect(r.exitCode, `${system} ${machine}`).toBe(1);
      expect(r.stderr).toBe(message);
      expect(existsSync(join(r.home, ".local"))).toBe(false);
      expect(requests).toEqual([]);
    }
  });
});

