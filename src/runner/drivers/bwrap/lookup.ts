/**
 * After bwrap fails without starting the command, tell "not found" (127) and "cannot execute" (126) from a
 * failure of the sandbox itself (125), by looking the command up in the sandbox's filesystem as seen from
 * the host: the workspace and mounts first, then the layers from the top. Only used on that failure path.
 */
import { accessSync, constants, lstatSync, readlinkSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { EXIT } from "../../../core/errors.ts";
import type { ExecSpec } from "./handoff.ts";

/** 127 when argv[0] does not exist in the sandbox, 126 when it exists but is not executable, else 125. */
export function classifyExecFailure(spec: ExecSpec, extraLayers: string[] = []): number {
  const cmd = spec.argv[0] ?? "";
  const candidates = cmd.includes("/")
    ? [posix.resolve(spec.cwd, cmd)]
    : (spec.env.PATH ?? "").split(":").filter(Boolean).map((d) => posix.join(posix.resolve(spec.cwd, d), cmd));
  let found = false;
  for (const guest of candidates) {
    const host = resolveGuest(spec, [...extraLayers, ...[...spec.layers].reverse()], guest, 0);
    if (!host) continue;
    found = true;
    try {
      const st = lstatSync(host);
      accessSync(host, constants.X_OK);
      if (st.isFile()) return EXIT.FAILURE; // there and executable: the sandbox itself failed
    } catch {
      // not executable here; keep looking further down PATH
    }
  }
  return found ? EXIT.CANNOT_EXECUTE : EXIT.NOT_FOUND;
}

/** Map a guest path to the host file it would be, following symlinks the way the sandbox would. */
function resolveGuest(spec: ExecSpec, layersTopFirst: string[], guest: string, depth: number): string | null {
  if (depth > 16) return null;
  const roots: { guest: string; host: string }[] = [
    ...spec.mounts.map((m) => ({ guest: m.guest, host: m.host })),
    { guest: "/workspace", host: spec.workspace },
  ];
  const bound = roots.find((r) => guest === r.guest || guest.startsWith(r.guest + "/"));
  const hosts = bound ? [join(bound.host, relative(bound.guest, guest))] : layersTopFirst.map((l) => join(l, guest));
  for (const host of hosts) {
    let st;
    try {
      st = lstatSync(host);
    } catch {
      continue;
    }
    if (!st.isSymbolicLink()) return host;
    const target = readlinkSync(host);
    return resolveGuest(spec, layersTopFirst, posix.resolve(dirname(guest), target), depth + 1);
  }
  return null;
}
