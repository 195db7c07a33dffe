/**
 * `silo doctor`'s CA check: CA certificates the host trusts beyond its distribution's set (a corporate
 * proxy's, most often) that an installed tool's image does not, and are not in `[network] caCertificates`
 * yet. TLS through such a network works on the host and fails in the sandbox; the fix is one line of the
 * global silo.toml, printed whole.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { HomePaths } from "../core/paths.ts";
import { rootfsDir } from "../image/local.ts";
import { certificateKeys, configLineOf, expandHome, readCaCertificates, readImageBundle } from "./ca-bundle.ts";

/** Where admins add CAs (Debian's update-ca-certificates; Fedora's update-ca-trust). */
const LOCAL_CA_DIRS = ["/usr/local/share/ca-certificates", "/etc/pki/ca-trust/source/anchors"];
/** The distribution's own CAs (Debian): certificates of a host bundle that are found here are not extra. */
const DISTRO_CA_DIR = "/usr/share/ca-certificates";

interface Source {
  file: string;
  keys: string[];
  /** A whole bundle named by SSL_CERT_FILE or NODE_EXTRA_CA_CERTS (its distribution CAs are not extra). */
  bundle: boolean;
}

/** One or more lines for `silo doctor`. */
export async function caCheckLines(home: HomePaths): Promise<string[]> {
  const { parseTomlFile } = await import("../config/load.ts");
  const { readInstalled } = await import("../config/installed.ts");
  let configured: string[] = [];
  let hasNetworkTable = false;
  try {
    const g = (await parseTomlFile(home.globalConfig)) as { network?: { caCertificates?: unknown } };
    hasNetworkTable = !!g.network;
    if (Array.isArray(g.network?.caCertificates)) configured = g.network.caCertificates.filter((e): e is string => typeof e === "string");
  } catch (e) {
    return [`ca         cannot read ${home.globalConfig}: ${(e as Error).message}`];
  }
  const have = new Set<string>();
  try {
    for (const c of readCaCertificates(configured, (entry) => configLineOf([home.globalConfig], entry))) have.add(certificateKeys(c)[0]!);
  } catch (e) {
    return [`ca         FAIL ${(e as Error).message}`];
  }

  // The images of the installed tools (one read per image).
  const images: { tools: string[]; keys: Set<string> }[] = [];
  const byDigest = new Map<string, { tools: string[]; keys: Set<string> }>();
  for (const [name, t] of Object.entries((await readInstalled(home)).tools)) {
    const seen = byDigest.get(t.digest);
    if (seen) {
      seen.tools.push(name);
      continue;
    }
    let dir: string;
    try {
      dir = rootfsDir(home, t.digest);
    } catch {
      continue;
    }
    if (!existsSync(dir)) continue;
    const entry = { tools: [name], keys: readImageBundle(dir).keys };
    byDigest.set(t.digest, entry);
    images.push(entry);
  }

  const sources = hostSources();
  let distro: Set<string> | null = null;
  // Each missing certificate once, named by the first source that holds it (a single-CA file before a bundle).
  const missing = new Map<string, { source: string; tools: string[] }>();
  for (const s of sources)
    for (const k of s.keys) {
      if (have.has(k) || missing.has(k)) continue;
      if (s.bundle && (distro ??= distroKeys()).has(k)) continue;
      const lacking = images.filter((i) => !i.keys.has(k)).flatMap((i) => i.tools);
      // Without an installed tool, a CA an admin added is one no image ships.
      if (images.length > 0 ? lacking.length === 0 : s.bundle) continue;
      missing.set(k, { source: s.file, tools: lacking });
    }
  if (missing.size === 0)
    return [`ca         ${configured.length ? `the host's extra CAs are in [network] caCertificates (${configured.length} file${configured.length > 1 ? "s" : ""})` : sources.length ? "the images trust the host's CA certificates" : "no extra CA certificates on this host"}`];

  const files = [...new Set([...missing.values()].map((m) => m.source))];
  const tools = [...new Set([...missing.values()].flatMap((m) => m.tools))].sort();
  const list = [...configured, ...files].map((f) => JSON.stringify(f)).join(", ");
  const where = tools.length ? `the image${tools.length > 1 ? "s" : ""} of ${tools.join(", ")} do${tools.length > 1 ? "" : "es"} not` : "no image ships them";
  const line = `caCertificates = [${list}]`;
  return [
    `ca         the host trusts ${missing.size} CA certificate${missing.size > 1 ? "s" : ""} that ${where}: TLS through a proxy that re-signs it fails in the sandbox`,
    `             (${files.join(", ")})`,
    hasNetworkTable
      ? `             fix: in the [network] table of ${home.globalConfig}, set:\n               ${line}`
      : `             fix: add to ${home.globalConfig}:\n               [network]\n               ${line}`,
  ];
}

/** The host's extra CAs: the local CA directories' files, then SSL_CERT_FILE and NODE_EXTRA_CA_CERTS. */
function hostSources(): Source[] {
  const out: Source[] = [];
  const add = (file: string, bundle: boolean) => {
    if (out.some((s) => s.file === file)) return;
    let text: string;
    try {
      text = readFileSync(file, "latin1");
    } catch {
      return;
    }
    const keys = certificateKeys(text);
    if (keys.length) out.push({ file, keys, bundle });
  };
  for (const dir of LOCAL_CA_DIRS) for (const f of listFiles(dir, 2)) if (/\.(crt|pem)$/.test(f)) add(f, false);
  for (const v of ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"]) {
    const f = process.env[v];
    if (f && f.startsWith("/")) add(expandHome(f), true);
  }
  return out;
}

function distroKeys(): Set<string> {
  const keys = new Set<string>();
  for (const f of listFiles(DISTRO_CA_DIR, 2)) {
    try {
      for (const k of certificateKeys(readFileSync(f, "latin1"))) keys.add(k);
    } catch {
      /* unreadable: not counted */
    }
  }
  return keys;
}

/** Regular files under `dir`, `depth` levels down, sorted. */
function listFiles(dir: string, depth: number): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isFile() || e.isSymbolicLink()) out.push(p);
    else if (e.isDirectory() && depth > 1) out.push(...listFiles(p, depth - 1));
  }
  return out;
}
