import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildBwrapArgs } from "../../../src/runner/drivers/bwrap/argv.ts";
import type { SandboxPlan } from "../../../src/runner/drivers/bwrap/plan.ts";
import { checkMountTargets, mountTargets } from "../../../src/runner/drivers/bwrap/targets.ts";
import type { RunSpec } from "../../../src/runner/spec.ts";
import { tmp } from "../../helpers/silo.ts";

const spec: RunSpec = {
  tool: "python", layers: ["/h/rootfs/base", "/h/builds/extra"], workspace: "/p/proj", cwd: "/workspace", argv: ["python3"], env: { A: "--bind" },
  mounts: [
    { host: "/h/cache/claude", guest: "/root/.claude", readonly: false, kind: "dir" },
    { host: "/h/cache/login/.credentials.json", guest: "/root/.claude/.credentials.json", readonly: true, kind: "file" },
  ],
  readonlyPaths: [], maskedPaths: [], tty: false, hostname: "python", resources: { tmpMB: 64 },
  network: { mode: "none", hostAccess: false, ports: [], sshAgent: "/h/agent.sock" }, self: ["/silo"],
};
const plan = {
  root: "/h/run/1/root", emptyFile: "/h/run/1/empty", relays: false, stage: "native",
  readonly: [{ host: "/p/proj/.git/hooks", guest: "/workspace/.git/hooks" }], masked: [{ guest: "/workspace/node_modules", kind: "dir" }],
  hostRoot: { binfmtMisc: true },
} as unknown as SandboxPlan;

describe("mountTargets", () => {
  test("reads every destination of buildBwrapArgs, each under the mount bwrap finds there", () => {
    const t = mountTargets(buildBwrapArgs(spec, plan));
    const at = (dest: string) => t.find((x) => x.dest === dest);
    for (const d of ["/proc", "/dev", "/tmp", "/etc/hosts", "/etc/resolv.conf", "/workspace", "/root/.claude", "/run/silo/ssh-agent.sock", "/sys"])
      expect(at(d)?.under).toEqual({ kind: "root" });
    expect(at("/root/.claude/.credentials.json")).toEqual({ dest: "/root/.claude/.credentials.json", under: { kind: "host", dir: "/h/cache/claude" }, rel: ".credentials.json" });
    expect(at("/workspace/.git/hooks")?.under).toEqual({ kind: "host", dir: "/p/proj" });
    expect(at("/dev/shm")?.under).toEqual({ kind: "fresh" });
    expect(at("/proc/sys")?.under).toEqual({ kind: "fresh" });
    // A mount over one at the same path lands on that mount's root: nothing to resolve.
    expect(mountTargets(["--bind", "/r", "/", "--tmpfs", "/a", "--ro-bind", "/x", "/a"]).map((x) => x.dest)).toEqual(["/a"]);
  });
  test("an option it does not know fails closed (its arity would shift every destination after it)", () => {
    expect(() => mountTargets(["--bind", "/r", "/", "--overlay-src", "/x", "--bind", "/a", "/b"])).toThrow("does not know bwrap's option --overlay-src");
  });
});

describe("checkMountTargets", () => {
  const args = ["--bind", "/r", "/", "--bind", "/h/c", "/root/.cache/pip", "--ro-bind-data", "5", "/run/silo/x.sock"];
  function layers() {
    const d = tmp("silo-targets-");
    const image = join(d, "image");
    const build = join(d, "build");
    for (const p of ["root", "run", "usr/lib", "etc"]) mkdirSync(join(image, p), { recursive: true });
    mkdirSync(join(build, "root"), { recursive: true });
    return { d, image, build };
  }

  test("a plain tree passes", () => {
    const { image, build } = layers();
    expect(() => checkMountTargets(args, [image, build])).not.toThrow();
  });
  test("a symlink in a sandbox-written layer, at any component (the final one too), is refused and named", () => {
    const { image, build } = layers();
    symlinkSync("/oldroot/tmp/X", join(build, "root/.cache"));
    expect(() => checkMountTargets(args, [image, build])).toThrow(`/root/.cache is a symlink (to /oldroot/tmp/X) in the layer ${build}`);
    const b = layers();
    mkdirSync(join(b.build, "run/silo"), { recursive: true });
    symlinkSync("/oldroot/tmp/planted", join(b.build, "run/silo/x.sock"));
    expect(() => checkMountTargets(args, [b.image, b.build])).toThrow("/run/silo/x.sock is a symlink");
    // hidden below a directory of a higher layer: still refused (cheap, and no layer should hold one)
    expect(() => checkMountTargets(args, [b.image, b.build, join(b.d, "image")])).toThrow("is a symlink");
  });
  test("the image's own links are followed inside the image; one leading out of it is refused", () => {
    const { image, build } = layers();
    symlinkSync("usr/lib", join(image, "lib"));
    expect(() => checkMountTargets(["--bind", "/r", "/", "--tmpfs", "/lib/x"], [image, build])).not.toThrow();
    symlinkSync("../usr/lib", join(image, "run/silo"));
    expect(() => checkMountTargets(args, [image, build])).not.toThrow();
    const abs = layers();
    symlinkSync("/oldroot/tmp", join(abs.image, "root/.cache"));
    expect(() => checkMountTargets(args, [abs.image, abs.build])).toThrow("the image's /root/.cache is a symlink to /oldroot/tmp, which leads out of the image");
    const up = layers();
    symlinkSync("../../oldroot/tmp", join(up.image, "run/silo"));
    expect(() => checkMountTargets(args, [up.image, up.build])).toThrow("the image's /run/silo is a symlink to ../../oldroot/tmp");
    const loop = layers();
    symlinkSync("b", join(loop.image, "run/silo"));
    symlinkSync("silo", join(loop.image, "run/b"));
    expect(() => checkMountTargets(args, [loop.image, loop.build])).toThrow("leads out of the image");
  });
  test("a build layer's directory over the image's link is what the overlay shows", () => {
    const { image, build } = layers();
    symlinkSync("/oldroot/tmp", join(image, "root/.cache"));
    mkdirSync(join(build, "root/.cache"));
    expect(() => checkMountTargets(args, [image, build])).not.toThrow();
  });
  test("a bind into a host directory (a cache, the project) is walked there: a link in it is refused", () => {
    const { d, image, build } = layers();
    const cache = join(d, "claude");
    mkdirSync(cache);
    const login = ["--bind", "/r", "/", "--bind", cache, "/root/.claude", "--ro-bind", "/h/login", "/root/.claude/.credentials.json"];
    expect(() => checkMountTargets(login, [image, build])).not.toThrow();
    writeFileSync(join(cache, "plain"), "");
    symlinkSync("/oldroot/tmp/planted", join(cache, ".credentials.json"));
    expect(() => checkMountTargets(login, [image, build])).toThrow(`${cache}/.credentials.json is a symlink (to /oldroot/tmp/planted)`);
  });
});
