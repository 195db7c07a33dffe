/**
 * Mount destinations checked before the sandbox starts (THREATS.md invariant 2). bwrap resolves each
 * destination after its pivot, while /oldroot is the host's root, and creates what is missing (mkdir, or
 * creat through a dangling final symlink). A symlink that a sandbox left in a layer it wrote (a build
 * layer, the LSP install layer) or in a host directory it can write (a package cache, the project) would
 * then make a later run's mount create files anywhere on the host. So every destination in bwrap's options
 * is walked here first, with lstat, in what lies under it when bwrap gets there:
 *
 * - under `/` (the overlay): the layers, top first. A symlink in a layer above the image fails closed;
 *   one in the image (`/var/run -> /run` is legitimate) is followed inside the image, and fails closed
 *   when it leads out of it (an absolute target, or `..` above its root: bwrap would resolve those on
 *   its own root, which reaches the host through /oldroot).
 * - under a directory bound from the host (a cache, /workspace): that host directory; any symlink fails.
 * - under a tmpfs, /proc or /dev that bwrap made: nothing to check, nobody wrote there yet.
 *
 * A few lstat per component per layer: a run's dozen destinations cost well under a millisecond.
 */
import { lstatSync, readlinkSync, type Stats } from "node:fs";
import { posix } from "node:path";
import { SiloError } from "../../../core/errors.ts";

/** How many values follow each bwrap option that buildBwrapArgs may use (destinations are read apart). */
const ARITY: Record<string, number> = {
  "--unshare-user": 0, "--unshare-pid": 0, "--unshare-ipc": 0, "--unshare-uts": 0, "--unshare-cgroup-try": 0, "--unshare-net": 0,
  "--disable-userns": 0, "--die-with-parent": 0, "--new-session": 0, "--clearenv": 0,
  "--uid": 1, "--gid": 1, "--block-fd": 1, "--cap-drop": 1, "--cap-add": 1, "--hostname": 1, "--perms": 1, "--size": 1,
  "--seccomp": 1, "--json-status-fd": 1, "--chdir": 1, "--unsetenv": 1, "--remount-ro": 1, "--setenv": 2,
};
/** Options that mount or create something at their last value; `from` (their first) is a host directory for binds. */
const BINDS = new Set(["--bind", "--ro-bind", "--bind-try", "--ro-bind-try", "--dev-bind", "--dev-bind-try"]);
const FRESH = new Set(["--tmpfs", "--proc", "--dev", "--mqueue"]);
const CREATES = new Set(["--dir", "--ro-bind-data", "--bind-data", "--file", "--symlink"]);

/** What a destination lies under when bwrap reaches it. */
type Cover = { kind: "root" } | { kind: "host"; dir: string } | { kind: "fresh" };
export interface Target {
  dest: string;
  under: Cover;
  /** The destination's path below `under`'s mount point. */
  rel: string;
}

/** The destinations of bwrap's options, in order, each with the mount it lies under. */
export function mountTargets(args: string[]): Target[] {
  const mounts: { dest: string; cover: Cover }[] = [];
  const out: Target[] = [];
  for (let i = 0; i < args.length; ) {
    const opt = args[i]!;
    let n: number;
    let cover: Cover | null = null;
    if (BINDS.has(opt)) {
      n = 2;
      cover = { kind: "host", dir: args[i + 1]! };
    } else if (FRESH.has(opt)) {
      n = 1;
      cover = { kind: "fresh" };
    } else if (CREATES.has(opt)) n = 2;
    else if (opt in ARITY) {
      i += 1 + ARITY[opt]!;
      continue;
    } else throw new SiloError("E_SANDBOX", `internal: the mount check does not know bwrap's option ${opt}`);
    const dest = posix.normalize(args[i + n]!);
    i += 1 + n;
    if (cover && dest === "/") {
      mounts.push({ dest, cover: { kind: "root" } });
      continue;
    }
    // The innermost mount above it, the latest wins (one at the same path: the destination is its root).
    let below: { dest: string; cover: Cover } | undefined;
    for (const m of mounts) if (isUnder(m.dest, dest) && (!below || m.dest.length >= below.dest.length)) below = m;
    if (below && below.dest !== dest) out.push({ dest, under: below.cover, rel: posix.relative(below.dest, dest) });
    if (cover) mounts.push({ dest, cover });
  }
  return out;
}

/**
 * Refuse (exit 125) a destination that a symlink in a sandbox-written place would redirect. `layers` is
 * RunSpec.layers (the image first) plus a build's capture upper, lowest first.
 */
export function checkMountTargets(args: string[], layers: string[]): void {
  for (const t of mountTargets(args)) {
    if (t.under.kind === "root") walkLayers(t.dest, layers);
    else if (t.under.kind === "host") walkHost(t.dest, t.under.dir, t.rel);
  }
}

const MAX_LINKS = 40;

function walkLayers(dest: string, layers: string[]): void {
  const top = [...layers].reverse();
  const image = layers[0]!;
  let todo = parts(dest);
  let at = "/";
  let link: { p: string; target: string } | null = null;
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === "..") {
      // Only a link's target has `..` (destinations are normalized); above the image's root is bwrap's root.
      if (at === "/") throw outOfImage(dest, link!.p, link!.target, image);
      at = posix.dirname(at);
      continue;
    }
    const p = posix.join(at, name);
    // The topmost entry is what the overlay shows; a symlink in any sandbox-written layer refuses anyway.
    let shown: { layer: string; st: Stats } | null = null;
    for (const layer of top) {
      const st = lstatOrNull(layer + p);
      if (!st) continue;
      if (st.isSymbolicLink() && layer !== image) throw planted(dest, p, layer, readlinkSync(layer + p));
      shown ??= { layer, st };
    }
    if (!shown || isWhiteout(shown.st)) return; // missing: bwrap makes it in the thrown-away upper
    if (shown.st.isSymbolicLink()) {
      const target = readlinkSync(image + p);
      if (target.startsWith("/") || ++links > MAX_LINKS) throw outOfImage(dest, p, target, image);
      link = { p, target };
      todo = [...parts(target), ...todo];
      continue;
    }
    if (!shown.st.isDirectory()) return; // bwrap fails on it (ENOTDIR) or binds over a file
    at = p;
  }
}

function walkHost(dest: string, dir: string, rel: string): void {
  let p = dir;
  for (const name of parts(rel)) {
    p = posix.join(p, name);
    const st = lstatOrNull(p);
    if (!st) return;
    if (st.isSymbolicLink())
      throw new SiloError("E_SANDBOX", `refusing to mount ${dest}: ${p} is a symlink (to ${readlinkSync(p)}), which bwrap would follow on the host`,
        `a sandbox may have planted it: remove it (rm ${p}) and run again`);
    if (!st.isDirectory()) return;
  }
}

function planted(dest: string, p: string, layer: string, target: string): SiloError {
  const lsp = /\/builds\/\.lsp\/([^/]+)\//.exec(layer + "/");
  const fix = lsp
    ? `remove the language server's layer (rm -rf ${layer}); it is installed again on the next start`
    : "remove the build layer (`silo build TOOL --remove`, with --global for the global one) and build it again";
  return new SiloError("E_SANDBOX", `refusing to mount ${dest}: ${p} is a symlink (to ${target}) in the layer ${layer}, which a sandbox wrote; bwrap would follow it on the host`, fix);
}

const outOfImage = (dest: string, p: string, target: string, image: string) =>
  new SiloError("E_SANDBOX", `refusing to mount ${dest}: the image's ${p} is a symlink to ${target}, which leads out of the image (${image})`,
    "use an image without that link, or a mount destination that does not pass through it");

const parts = (p: string) => p.split("/").filter((x) => x !== "" && x !== ".");
const isUnder = (dir: string, p: string) => dir === "/" || p === dir || p.startsWith(dir + "/");
/** overlayfs' whiteout: a character device 0/0 hides what the layers below have there. */
const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
