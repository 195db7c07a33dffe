import { expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { stripSetidBits } from "../../../src/app/strip-setid.ts";
import { tmp } from "../../helpers/silo.ts";

const mode = (p: string) => statSync(p).mode & 0o7777;

test("strips setuid/setgid from files changed since the build began; private directories and symlinks are left", () => {
  const root = tmp("silo-strip-");
  const outside = tmp("silo-strip-outside-");
  mkdirSync(join(root, "a/b"), { recursive: true });
  mkdirSync(join(root, "private"), { mode: 0o700 });
  for (const f of ["top", "a/b/deep", "private/layer", "sgid"]) copyFileSync("/bin/true", join(root, f));
  copyFileSync("/bin/true", join(outside, "target"));
  for (const f of ["top", "a/b/deep", "private/layer"]) chmodSync(join(root, f), 0o4755);
  chmodSync(join(root, "sgid"), 0o2711);
  chmodSync(join(outside, "target"), 0o4755);
  symlinkSync(join(outside, "target"), join(root, "link"));
  symlinkSync(outside, join(root, "dirlink"));

  expect(stripSetidBits(root, Date.now() + 60_000)).toEqual([]); // nothing changed since then
  expect(stripSetidBits(root, Date.now() - 60_000).sort()).toEqual(["a/b/deep", "sgid", "top"]);
  expect([mode(join(root, "top")), mode(join(root, "a/b/deep")), mode(join(root, "sgid"))]).toEqual([0o755, 0o755, 0o711]);
  expect(mode(join(root, "private/layer"))).toBe(0o4755);
  expect(mode(join(outside, "target"))).toBe(0o4755);
});
