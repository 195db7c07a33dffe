import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { log } from "../core/log.ts";

/** A parsed `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export interface Challenge {
  scheme: "bearer" | "basic" | string;
  params: Record<string, string>;
}

/** Parse RFC 7235 auth-params (quoted strings with backslash escapes, or tokens). One challenge is enough for registries. */
export function parseChallenge(header: string): Challenge | null {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest)))
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

export interface Credentials {
  username: string;
  password: string;
}

/** Hosts that Docker files Docker Hub credentials under. */
const HUB_KEYS = ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];

const keyHost = (k: string) => k.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "").toLowerCase();

/**
 * Basic credentials for `host` from Docker's config.json (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`). Credential helpers (`credsStore`, `credHelpers`) are external programs and
 * are not run; silo says so under --debug. Missing file or entry: undefined (anonymous pull).
 */
export function dockerCredentials(host: string, configPath?: string): Credentials | undefined {
  const path = configPath ?? join(process.env.DOCKER_CONFIG || join(process.env.HOME || homedir(), ".docker"), "config.json");
  let doc: { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credsStore?: string; credHelpers?: Record<string, string> };
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
  const h = host.toLowerCase();
  const wanted = HUB_KEYS.includes(h) ? HUB_KEYS.map(keyHost) : [h];
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    if (!wanted.includes(keyHost(key)) || !entry) continue;
    if (entry.username && entry.password) return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const plain = Buffer.from(entry.auth, "base64").toString("utf8");
      const i = plain.indexOf(":");
      if (i > 0) return { username: plain.slice(0, i), password: plain.slice(i + 1) };
    }
  }
  if (doc.credsStore || doc.credHelpers?.[host])
    log.debug(`${path} keeps credentials for ${host} in a credential helper, which silo does not run; pulling anonymously`);
  return undefined;
}

export const basicHeader = (c: Credentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
