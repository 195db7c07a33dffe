// Unpacking as an unprivileged user: files belong to that user, device nodes are skipped, read-only
// directories keep their mode and the rootfs can still be removed. Run as root, the test drops to `nobody`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmp } from "../../helpers/silo.ts";
import { makeImage, pushToRegistry, removeHomes } from "./_registry.ts";
import { fixtureRegistry } from "../../helpers/silo.ts";
import { removeTree } from "../../../src/core/fs.ts";

const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;
let base: string;

beforeAll(async () => {
  await pushToRegistry(
    "library/silo-readonly",
    "1",
    makeImage([
      [
        { name: "ro", type: "dir", mode: 0o555 },
        { name: "ro/file", data: "inside a read-only dir", mode: 0o444 },
        { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
        { name: "sbin/suid", data: "#!/bin/sh\n", mode: 0o4755 },
      ],
    ]),
  );
  base = tmp("silo-rootless-");
  chmodSync(base, 0o755);
});
afterAll(() => {
  removeTree(base);
  removeHomes();
});

/** Run the pull child as `nobody` (when we are root) or as ourselves (already unprivileged). */
async function pullAsUser(ref: string, extraEnv: Record<string, string> = {}) {
  const home = join(base, `home-${Math.random().toString(36).slice(2)}`);
  const userHome = join(base, "user-home");
  mkdirSync(home);
  mkdirSync(userHome, { recursive: true });
  if (asRoot) for (const d of [home, userHome]) chownSync(d, NOBODY, NOBODY);
  const argv = ["bun", join(import.meta.dir, "_pull-child.ts"), home, ref, fixtureRegistry];
  const p = Bun.spawn(asRoot ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", ...argv] : argv, {
    env: { PATH: process.env.PATH!, HOME: userHome, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", ...extraEnv },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  return { home, ...(JSON.parse(out) as { rootfs: string; digest: string; uid: number }) };
}

test("python:3.11-slim unpacks rootless, owned by the user", async () => {
  const r = await pullAsUser("python:3.11-slim");
  const uid = asRoot ? NOBODY : process.getuid!();
  expect(r.uid).toBe(uid);
  for (const p of ["usr/bin/python3.11", "etc/shadow", "usr/bin"]) expect(statSync(join(r.rootfs, p)).uid).toBe(uid);
  expect(statSync(join(r.rootfs, "usr/bin/chfn")).mode & 0o7777).toBe(0o4755); // setuid bit kept
  expect(statSync(join(r.rootfs, "etc/shadow")).mode & 0o777).toBe(0o640);
  expect(existsSync(join(r.rootfs, "dev/null"))).toBe(false); // a device node needs root
  expect(existsSync(join(r.rootfs, "dev"))).toBe(true);
});

test("read-only directories keep their mode, and the rootfs can still be removed", async () => {
  const r = await pullAsUser("silo-readonly:1");
  expect(statSync(join(r.rootfs, "ro")).mode & 0o777).toBe(0o555);
  expect(statSync(join(r.rootfs, "ro/file")).mode & 0o777).toBe(0o444);
  expect(lstatSync(join(r.rootfs, "sbin/suid")).mode & 0o7777).toBe(0o4755);
  const removed = await pullAsUser("silo-readonly:1", { REMOVE_AFTER: "1" });
  expect(existsSync(removed.rootfs)).toBe(false);
  expect(existsSync(`${removed.rootfs}.json`)).toBe(false);
});
