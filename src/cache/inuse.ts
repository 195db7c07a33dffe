/**
 * What running sandboxes use right now, read from the kernel rather than from bookkeeping: every sandbox's
 * root is an overlay mounted (in its own mount namespace) with the source name `silo`, and its options
 * list the layers (`lowerdir=`) and the upper dir. /proc/<pid>/mountinfo of each process shows them; one
 * read per mount namespace is enough. A process of another user that we may not inspect is skipped (its
 * sandboxes use its own SILO_HOME, not ours).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * Layer and upper directories of silo overlays in one mountinfo text. The stage gives the overlay paths
 * relative to the mount point's parent (the run dir: `l0` a symlink to a layer, `upper`), so that the
 * sandbox does not read SILO_HOME in its own mountinfo; they are resolved here from the stage's mount
 * namespace, where the mount point is the run dir's `root`. Inside the sandbox the mount point is `/` and
 * they cannot be: skipped (the stage's namespace, where bwrap's parent process stays, names them).
 */
export function parseSiloMounts(mountinfo: string, readLink: (p: string) => string = readlinkSync): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const [fstype, source, opts] = line.slice(sep + 3).split(" ");
    if (fstype !== "overlay" || source !== "silo" || !opts) continue;
    const mountPoint = unescape(line.slice(0, sep).split(" ")[4] ?? "/");
    const named = (p: string): string[] => {
      if (isAbsolute(p)) return [p];
      if (mountPoint === "/") return [];
      const at = resolve(dirname(mountPoint), p);
      try {
        return [resolve(dirname(at), readLink(at))];
      } catch {
        return [at]; // not a symlink: the directory itself
      }
    };
    for (const opt of opts.split(",")) {
      const eq = opt.indexOf("=");
      const key = opt.slice(0, eq);
      // `lowerdir+=` / `datadir+=` (one option per layer) appear on kernels using the new mount API.
      if (key === "lowerdir" || key === "lowerdir+" || key === "datadir+") out.push(...opt.slice(eq + 1).split(":").filter(Boolean).map(unescape).flatMap(named));
      else if (key === "upperdir") out.push(...named(unescape(opt.slice(eq + 1))));
    }
  }
  return out;
}

/** Every directory that some running sandbox has as a layer or upper dir. */
export function mountedLayers(): Set<string> {
  const seen = new Set<string>();
  const out = new Set<string>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
      if (seen.has(ns)) continue;
      seen.add(ns);
      for (const p of parseSiloMounts(readFileSync(`/proc/${pid}/mountinfo`, "utf8"))) out.add(p);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
