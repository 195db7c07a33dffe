// The first `silo install` on a machine that cannot sandbox: it stops before pulling anything, with the fix
// for that distribution. The machine is made in a bwrap of the real one: /usr/bin/bwrap hidden (a
// non-executable /dev/null over it), another distribution's /etc/os-release, or user namespaces disabled.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emptyHome, siloBin, tmp } from "../../helpers/silo.ts";

const requests: string[] = [];
let registry: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  // A registry mirror that records every request: the proof that nothing was pulled.
  registry = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => (requests.push(new URL(req.url).pathname), new Response("{}", { status: 404 })) });
});
afterAll(() => registry?.stop(true));

const OS_RELEASE: Record<string, string> = {
  debian: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
  ubuntu: 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n',
  fedora: 'PRETTY_NAME="Fedora Linux 41 (Workstation Edition)"\nID=fedora\nVERSION_ID=41\n',
  arch: 'NAME="Arch Linux"\nID=arch\n',
};

/** `silo install python` inside a bwrap of this machine with `extra` bwrap arguments (async: we serve too). */
async function installIn(extra: string[]) {
  const home = emptyHome();
  writeFileSync(join(home, "silo.toml"), `[images.mirrors]\n"docker.io" = "http://127.0.0.1:${registry.port}"\n`);
  requests.length = 0;
  const argv = ["bwrap", "--dev-bind", "/", "/", ...extra, "--", siloBin, "install", "python"];
  const proc = Bun.spawn(argv, { env: { PATH: "/usr/bin:/bin", HOME: home, SILO_HOME: home }, stdout: "ignore", stderr: "pipe" });
  const [stderr, exitCode] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stderr, home };
}

function osRelease(distro: string): string {
  const f = join(tmp(), "os-release");
  writeFileSync(f, OS_RELEASE[distro]!);
  return f;
}

describe("silo install on a machine without bubblewrap", () => {
  test("positive control: with bwrap there, the same install reaches the registry", async () => {
    const r = await installIn([]);
    expect(r.exitCode).toBe(125);
    expect(requests.length).toBeGreaterThan(0);
  });

  for (const [distro, fix] of [["debian", "sudo apt install bubblewrap"], ["ubuntu", "sudo apt install bubblewrap"], ["fedora", "sudo dnf install bubblewrap"], ["arch", "sudo pacman -S bubblewrap"]]) {
    test(`${distro}: stops before pulling, names \`${fix}\``, async () => {
      const r = await installIn(["--ro-bind", "/dev/null", "/usr/bin/bwrap", "--ro-bind", osRelease(distro!), "/etc/os-release"]);
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toBe(
        `error this machine cannot start a silo sandbox (bwrap driver): bubblewrap (bwrap) is not installed; nothing was installed\nhint fix: ${fix}, then check with \`silo doctor\`\n`,
      );
      expect(requests).toEqual([]);
      expect(existsSync(join(r.home, "config.toml"))).toBe(false);
      expect(readdirSync(r.home).filter((f) => f === "images" || f === "rootfs" || f === "bin")).toEqual([]);
    });
  }
});

test("silo install with user namespaces disabled stops before pulling, and says so", async () => {
  const r = await installIn(["--unshare-user", "--disable-userns"]);
  expect(r.exitCode).toBe(125);
  expect(r.stderr).toStartWith("error this machine cannot start a silo sandbox (bwrap driver): unprivileged user namespaces are not permitted: ");
  expect(r.stderr).toContain("nothing was installed\nhint fix: ");
  expect(requests).toEqual([]);
});
