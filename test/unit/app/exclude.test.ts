import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { excludedPaths } from "../../../src/app/exclude.ts";
import { tmp } from "../../helpers/silo.ts";

/** A project tree: paths ending in "/" are directories, "x -> y" a symlink. */
function project(paths: string[]): string {
  const root = tmp("silo-excl-");
  for (const p of paths) {
    const [path, target] = p.split(" -> ") as [string, string | undefined];
    mkdirSync(dirname(join(root, path)), { recursive: true });
    if (target !== undefined) symlinkSync(target, join(root, path));
    else if (path.endsWith("/")) mkdirSync(join(root, path), { recursive: true });
    else writeFileSync(join(root, path), "x");
  }
  return root;
}

const sorted = (a: string[]) => [...a].sort();

describe("excludedPaths", () => {
  test("literals pass through without a walk; globs are expanded against the tree", () => {
    const root = project(["k.pem", "a/k.pem", "a/b/c.pem", ".env", "a/.env", "secrets/x", "notes.txt"]);
    expect(excludedPaths(root, [".env", "missing"])).toEqual([".env", "missing"]);
    expect(sorted(excludedPaths(root, ["*.pem", "**/.env", "secrets/"]))).toEqual([".env", "a/.env", "a/b/c.pem", "a/k.pem", "k.pem", "secrets"]);
  });

  test("the project's own absolute path still names a path inside it; a leading slash anchors at the root", () => {
    const root = project(["a/.env", "etc/x.pem"]);
    expect(sorted(excludedPaths(root, [`${root}/a/.env`, `${root}/etc/*.pem`, "/etc/passwd"]))).toEqual(["a/.env", "etc/passwd", "etc/x.pem"]);
  });

  test("a trailing-slash literal hides only a directory", () => {
    const root = project(["secrets", "keys/a"]);
    expect(excludedPaths(root, ["secrets/", "keys/"])).toEqual(["keys"]);
  });

  test("a hidden directory is not walked into; SILO_HOME inside the project is skipped", () => {
    const root = project(["build/a.pem", "build/deep/b.pem", "home/rootfs/x.pem", "c.pem"]);
    expect(sorted(excludedPaths(root, ["build/", "*.pem"], "home"))).toEqual(["build", "c.pem"]);
    expect(sorted(excludedPaths(root, ["b*"]))).toEqual(["build"]);
  });

  test("a symlink is matched as a file, never entered, and an anchored walk never starts through one", () => {
    const outside = project(["x.pem", "sub/y.pem"]);
    const root = project([`link -> ${outside}`, `certs -> ${outside}/sub`, "real/z.pem", "k.pem -> real/z.pem"]);
    expect(sorted(excludedPaths(root, ["*.pem"]))).toEqual(["k.pem", "real/z.pem"]);
    expect(excludedPaths(root, ["certs/*.pem", "link/**"])).toEqual([]);
    expect(excludedPaths(root, ["link"])).toEqual(["link"]); // a literal: the plan resolves it, and drops it outside
  });

  test("an anchored glob walks only its base directory", () => {
    const root = project(["certs/a.pem", "certs/sub/b.pem", "other/c.pem"]);
    expect(sorted(excludedPaths(root, ["certs/*.pem", "certs/sub/*.pem", "nothere/*.pem"]))).toEqual(["certs/a.pem", "certs/sub/b.pem"]);
  });

  test("a directory the walk cannot list is hidden whole, never passed over", () => {
    const root = project(["locked/k.pem", "open/x.txt"]);
    chmodSync(join(root, "locked"), 0);
    const hidden = excludedPaths(root, ["*.pem"]);
    chmodSync(join(root, "locked"), 0o755);
    // Root lists it and finds the key; an unprivileged user cannot, and hides the directory.
    expect(hidden.length).toBe(1);
    expect(["locked", "locked/k.pem"]).toContain(hidden[0]!);
  });

  test("too many matches is an error, not a partial list", () => {
    const root = project(Array.from({ length: 4100 }, (_, i) => `f${i}.tmp`));
    expect(() => excludedPaths(root, ["*.tmp"])).toThrow(/match more than 4096 paths/);
  });
});
