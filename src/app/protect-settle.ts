/**
 * The slow half of the exit check (app/protect.ts settleProtected), loaded only when a protected name
 * changed: decide what to quarantine and which symlinks to put back, all beneath a descriptor of the
 * project without following a symlink (core/beneath.ts).
 */
import { closeSync, symlinkSync } from "node:fs";
import { at, closeQuietly, lstatBeneath, openDir, openParent, readLinkBeneath } from "../core/beneath.ts";
import { log } from "../core/log.ts";
import type { HomePaths } from "../core/paths.ts";
import type { ProtectSnapshot } from "./protect.ts";
import { quarantine, type QuarantineItem } from "./quarantine.ts";

type Link = ProtectSnapshot["links"][number];

export function settleChanges(home: HomePaths, s: ProtectSnapshot, changedLinks: Link[], appeared: string[], workspaces: string[]): string[] {
  const rootFd = openDir(s.root);
  try {
    const items = new Map<string, QuarantineItem>();
    const add = (path: string, reason: string) => items.has(path) || items.set(path, { base: s.root, from: path, path, reason });
    const restore: Link[] = [];
    for (const l of changedLinks) {
      const st = lstatBeneath(rootFd, l.path);
      // Made again with the same target: it means what it meant.
      if (st?.isSymbolicLink() && readLinkBeneath(rootFd, l.path) === l.target) continue;
      if (st) add(l.path, `the sandbox replaced the symlink ${l.path} → ${l.target}`);
      restore.push(l);
    }
    for (const p of appeared) {
      const found = plantedOnPath(rootFd, s, p);
      if (found) add(found.path, found.reason);
    }
    for (const w of workspaces) add(w, "a VS Code workspace file the sandbox created");
    const moved = quarantine(home, { root: s.root, tool: s.tool }, [...items.values()]);
    const back: string[] = [];
    for (const l of restore) {
      if (lstatBeneath(rootFd, l.path)) continue; // it could not be moved: its warning said so
      try {
        const parent = openParent(rootFd, l.path);
        try {
          symlinkSync(l.target, at(parent.fd, parent.name));
        } finally {
          closeSync(parent.fd);
        }
        back.push(`${l.path} → ${l.target}`);
      } catch (e) {
        log.warn(`silo could not put back the symlink ${l.path} → ${l.target}: ${(e as Error).message}`);
      }
    }
    if (back.length) log.warn(`silo put back the protected symlink${back.length > 1 ? "s" : ""} ${back.join(", ")}`);
    return moved;
  } finally {
    closeQuietly(rootFd);
  }
}

/**
 * What to quarantine for a protected path that did not exist and now resolves to something: a symlink
 * the sandbox planted on its way (`.git` → a victim directory: the link moves, not the victim's files),
 * else the path itself. Null when it now goes through one of the project's own, unchanged links (what
 * that leads to was looked at as a path of its own).
 */
function plantedOnPath(rootFd: number, s: ProtectSnapshot, p: string): { path: string; reason: string } | null {
  const parts = p.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join("/");
    const st = lstatBeneath(rootFd, prefix);
    if (!st) return null;
    if (st.isSymbolicLink()) {
      const own = s.links.find((l) => l.path === prefix);
      if (own && readLinkBeneath(rootFd, prefix) === own.target) return null;
      return { path: prefix, reason: `a symlink the sandbox planted where the protected path ${p} was missing` };
    }
  }
  return { path: p, reason: "the sandbox created this protected path (`[mount] writable` in a trusted silo.toml allows it)" };
}
