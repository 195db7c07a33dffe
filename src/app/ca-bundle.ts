/**
 * `[network] caCertificates`: extra CAs for networks whose egress re-signs TLS (corporate proxies). The
 * host trusts their CA, an image does not, and every TLS client in the sandbox fails ("self-signed
 * certificate in certificate chain"). silo writes the image's system bundle plus those CAs to a file in
 * SILO_HOME and binds it read-only over the image's bundle paths (the image itself is untouched), and points
 * the variables each ecosystem reads at it.
 *
 * Only the CERTIFICATE blocks of a configured file enter the sandbox (a PEM file may hold a private key
 * beside them). The image is data from a registry: its bundle is read beneath its rootfs, never through a
 * symlink that leaves it (core/beneath.ts). The generated file is keyed by the rootfs (its manifest digest)
 * and the certificates, so a warm run reads the configured files and finds it; without caCertificates this
 * module is not loaded at all.
 */
import { closeSync, existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { SiloError } from "../core/errors.ts";
import { lstatBeneath, openDir, readFileBeneath, readLinkBeneath } from "../core/beneath.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { userHome, type HomePaths } from "../core/paths.ts";
import { sha256 } from "../config/locate.ts";
import type { Mount } from "../runner/spec.ts";

/** Where distributions keep the system bundle (Go's crypto/x509 list): each that exists in the image is covered. */
export const BUNDLE_PATHS = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL
  "/etc/ssl/ca-bundle.pem", // openSUSE
  "/etc/pki/tls/cacert.pem", // OpenELEC
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+
  "/etc/ssl/cert.pem", // Alpine, OpenBSD
];
/**
 * Where the bundle goes when the image has none: the Debian path where bwrap can make it (each directory on
 * the way missing or a real one), else a silo-owned directory (as the ssh-agent socket's).
 */
export const FALLBACK_PATH = "/run/silo/ca-certificates.crt";
/** What reads a CA file from the environment: OpenSSL (and Python, Ruby, Go), Node, requests, pip, curl, git, cargo. */
export const CA_ENV = ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "CARGO_HTTP_CAINFO"];

const BEGIN = "-----BEGIN CERTIFICATE-----";
const END = "-----END CERTIFICATE-----";
/** A configured file larger than this is not a CA file (a whole bundle is ~200 KB). */
const MAX_FILE = 4 << 20;

/**
 * The base64 body of each CERTIFICATE block in PEM text, whitespace removed: a certificate's identity for
 * comparisons. (A scan with indexOf: a regex over a 200 KB bundle took tens of milliseconds.)
 */
export function certificateKeys(text: string): string[] {
  const out: string[] = [];
  for (let at = text.indexOf(BEGIN); at >= 0; at = text.indexOf(BEGIN, at)) {
    const end = text.indexOf(END, at + BEGIN.length);
    if (end < 0) break;
    const body = text.slice(at + BEGIN.length, end);
    at = end + END.length;
    if (!/^[A-Za-z0-9+/=\s]+$/.test(body)) continue;
    const b64 = body.replace(/\s+/g, "");
    if (b64.length % 4 === 0) out.push(b64);
  }
  return out;
}

/** The CERTIFICATE blocks of PEM text, each normalized (`-----BEGIN CERTIFICATE-----`, 64-column base64). */
export const certificateBlocks = (text: string): string[] =>
  certificateKeys(text).map((b64) => `${BEGIN}\n${b64.replace(/(.{64})/g, "$1\n").replace(/\n$/, "")}\n${END}\n`);

/** `~/x` → $HOME/x; other entries are absolute (the schema says so). */
export const expandHome = (entry: string): string => (entry.startsWith("~/") ? join(userHome(), entry.slice(2)) : entry);

/**
 * Read and check every configured file: it exists, is a regular file, and holds at least one certificate.
 * Returns their certificates (normalized, in order, without repeats). `where` names the config line of an
 * entry for the error (called only when one is bad).
 */
export function readCaCertificates(entries: string[], where: (entry: string) => string | null): string[] {
  const certs: string[] = [];
  for (const entry of entries) {
    const file = expandHome(entry);
    const bad = (why: string, fix: string) => {
      const at = where(entry);
      return new SiloError("E_CONFIG", `${at ? `${at}: ` : ""}[network] caCertificates: ${file} ${why}`, fix);
    };
    let bytes: Buffer;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw bad("is not a regular file", "name a PEM file holding the CA certificate");
      if (st.size > MAX_FILE) throw bad(`is ${st.size} bytes, not a CA certificate file`, "name a PEM file holding the CA certificate");
      bytes = readFileSync(file);
    } catch (e) {
      if (e instanceof SiloError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw bad(code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? String(e)})`, "fix the path in silo.toml, or remove the entry");
    }
    const found = certificateBlocks(bytes.toString("latin1"));
    if (found.length === 0) {
      const der = bytes[0] === 0x30; // an ASN.1 SEQUENCE: a DER certificate
      throw bad(
        der ? "is DER, not PEM" : "holds no PEM CERTIFICATE block",
        der ? `convert it: openssl x509 -inform der -in ${file} -out ${file.replace(/(\.[^./]+)?$/, ".pem")}` : "name a PEM file with a -----BEGIN CERTIFICATE----- block",
      );
    }
    for (const c of found) if (!certs.includes(c)) certs.push(c);
  }
  return certs;
}

export interface CaBundle {
  /** The generated bundle (image bundle + extra CAs) bound over each `targets` path. */
  file: string;
  /** Guest paths it is bound at: the image's bundle files (symlinks resolved), or FALLBACK_PATH. */
  targets: string[];
}

/**
 * The generated bundle for this image and these certificates: reused when it exists (its marker, the
 * .json, is written last), else made from the image's bundle now. Each file is written atomically, so a
 * run that dies halfway leaves the old state or a bundle without a marker that the next run rewrites.
 */
export function ensureCaBundle(home: HomePaths, rootfs: string, certs: string[]): CaBundle {
  const key = sha256(Buffer.from(`${basename(rootfs)}\0${certs.join("")}`)).slice(0, 32);
  const dir = join(home.state, "ca");
  const file = join(dir, `${key}.pem`);
  const marker = join(dir, `${key}.json`);
  if (existsSync(file)) {
    try {
      const m = JSON.parse(readFileSync(marker, "utf8")) as { targets?: unknown };
      if (Array.isArray(m.targets) && m.targets.every((t) => typeof t === "string" && t.startsWith("/"))) return { file, targets: m.targets as string[] };
    } catch {
      /* no marker yet, or a bad one: made again below */
    }
  }
  const image = readImageBundle(rootfs);
  const base = image.text && !image.text.endsWith("\n") ? `${image.text}\n` : image.text;
  const extra = certs.filter((c) => !image.keys.has(c.split("\n").slice(1, -2).join("")));
  writeFileAtomic(file, `${base}${extra.length ? "\n# silo: [network] caCertificates\n" : ""}${extra.join("")}`, 0o644);
  const targets = image.targets.length ? image.targets : [image.fallback];
  writeFileAtomic(marker, JSON.stringify({ rootfs: basename(rootfs), targets }), 0o644);
  return { file, targets };
}

/** The mounts and environment that make the sandbox trust `bundle`; the user's own `[env]` values win. */
export function caBundleSpec(bundle: CaBundle, userEnv: Record<string, string>): { mounts: Mount[]; env: Record<string, string> } {
  const mounts: Mount[] = bundle.targets.map((guest) => ({ host: bundle.file, guest, readonly: true, kind: "file" }));
  const env: Record<string, string> = {};
  for (const k of CA_ENV) if (userEnv[k] === undefined) env[k] = bundle.targets[0]!;
  return { mounts, env };
}

/**
 * The image's system bundle: the text of the first bundle file found, the certificate keys in it, and the
 * real guest path of every BUNDLE_PATHS entry that is a regular file (an entry that is a symlink is
 * followed inside the rootfs: a bind over a symlink would follow it from outside the sandbox's root).
 */
export function readImageBundle(rootfs: string): { text: string; keys: Set<string>; targets: string[]; fallback: string } {
  const fd = openDir(rootfs);
  try {
    const targets: string[] = [];
    let text = "";
    for (const p of BUNDLE_PATHS) {
      const real = resolveInImage(fd, p);
      if (!real || targets.includes(real)) continue;
      const bytes = readFileBeneath(fd, real.slice(1), 16 << 20);
      if (!bytes) continue;
      targets.push(real);
      if (!text) text = bytes.toString("latin1");
    }
    return { text, keys: new Set(certificateKeys(text)), targets, fallback: canCreate(fd, BUNDLE_PATHS[0]!) ? BUNDLE_PATHS[0]! : FALLBACK_PATH };
  } finally {
    closeSync(fd);
  }
}

/** bwrap can make `guest` as a mount point: it is missing, and each directory on its way is missing or a real one. */
function canCreate(rootFd: number, guest: string): boolean {
  const parts = guest.split("/").filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const st = lstatBeneath(rootFd, parts.slice(0, i).join("/"));
    if (!st) return true;
    if (i === parts.length || !st.isDirectory()) return false;
  }
  return false;
}

/**
 * `guest` with every symlink resolved inside the image (absolute targets from the image's root), when it
 * names a regular file; null otherwise (missing, a directory, a loop, `..` above the root stays at it).
 */
export function resolveInImage(rootFd: number, guest: string): string | null {
  let pending = guest.split("/").filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop();
      continue;
    }
    const rel = [...done, part].join("/");
    const st = lstatBeneath(rootFd, rel);
    if (!st) return null;
    if (st.isSymbolicLink()) {
      if (++hops > 16) return null;
      const target = readLinkBeneath(rootFd, rel);
      if (target === null) return null;
      if (target.startsWith("/")) done.length = 0;
      pending = [...target.split("/").filter(Boolean), ...pending];
      continue;
    }
    if (pending.length > 0 && !st.isDirectory()) return null;
    if (pending.length === 0 && !st.isFile()) return null;
    done.push(part);
  }
  return done.length ? `/${done.join("/")}` : null;
}

/** file:line of the entry in the config files that may name it (an error path only). */
export function configLineOf(files: (string | null)[], entry: string): string | null {
  for (const f of files) {
    if (!f) continue;
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    const i = text.split("\n").findIndex((l) => l.includes(`"${entry}"`) || l.includes(`'${entry}'`));
    if (i >= 0) return `${f}:${i + 1}`;
  }
  return null;
}
