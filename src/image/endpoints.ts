import { SiloError } from "../core/errors.ts";
import { DOCKER_HUB, DOCKER_HUB_API, type ImageRef } from "./ref.ts";

/** One place an image can be fetched from: a mirror, or the registry itself. */
export interface Endpoint {
  /** `scheme://host[:port]`, no trailing slash. */
  base: string;
  /** `host[:port]` for messages. */
  host: string;
  /** The image's own registry as users name it (`docker.io`). */
  registry: string;
  /** The host credentials are looked up under in Docker's config.json. */
  credentialHost: string;
  /** Repository path on this endpoint (a mirror may add a path prefix). */
  repository: string;
  mirror: boolean;
  /** An `[images] insecure` host over https: certificates are not checked. */
  tlsInsecure: boolean;
  /** Authorization header earned by a 401 challenge, reused for later requests. */
  auth?: string;
  usedCredentials?: boolean;
  /** An https attempt on a host that may only speak plain HTTP (loopback, insecure): its failure says little. */
  probe?: boolean;
}

const LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

const hostname = (host: string) => host.replace(/:\d+$/, "");

export const isLoopback = (host: string) => LOOPBACK.test(hostname(host));

/** Plain HTTP is allowed for loopback addresses and for hosts named in `[images] insecure` (with or without port). */
export function isPlainHttpAllowed(host: string, insecure: readonly string[]): boolean {
  if (isLoopback(host)) return true;
  const h = host.toLowerCase();
  return insecure.some((i) => {
    const x = i.toLowerCase().replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
    return x === h || x === hostname(h);
  });
}

/** Mirrors of the image's registry first (in the order given), then the registry itself. */
export function planEndpoints(ref: ImageRef, mirrors: Record<string, string | string[]>, insecure: readonly string[]): Endpoint[] {
  const out: Endpoint[] = [];
  const raw = mirrors[ref.registry] ?? (ref.registry === DOCKER_HUB ? (mirrors["index.docker.io"] ?? mirrors[DOCKER_HUB_API]) : undefined);
  for (const m of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
    let u: URL;
    try {
      u = new URL(/^[a-z]+:\/\//i.test(m) ? m : `https://${m}`);
    } catch {
      throw new SiloError("E_CONFIG", `[images.mirrors] "${ref.registry}" = "${m}" is not a URL`, 'write it like "https://mirror.example.com" or "http://127.0.0.1:5000"');
    }
    if (u.protocol !== "https:" && u.protocol !== "http:")
      throw new SiloError("E_CONFIG", `mirror ${m}: only http and https are supported`);
    if (u.protocol === "http:" && !isPlainHttpAllowed(u.host, insecure))
      throw new SiloError(
        "E_CONFIG",
        `mirror ${m} uses plain HTTP, which silo allows only for loopback addresses`,
        `use https, or add "${u.host}" to [images] insecure in your global silo.toml if you trust the network`,
      );
    const prefix = u.pathname.replace(/^\/+|\/+$/g, "").replace(/^v2(\/|$)/, "");
    out.push({
      base: u.origin,
      host: u.host,
      registry: ref.registry,
      credentialHost: u.host,
      repository: prefix ? `${prefix}/${ref.repository}` : ref.repository,
      mirror: true,
      tlsInsecure: u.protocol === "https:" && isPlainHttpAllowed(u.host, insecure) && !isLoopback(u.host),
    });
  }
  const host = ref.registry === DOCKER_HUB ? DOCKER_HUB_API : ref.registry;
  const common = { host, registry: ref.registry, credentialHost: ref.registry, repository: ref.repository, mirror: false };
  const plainOk = isPlainHttpAllowed(host, insecure);
  // Like Docker: https first; loopback and insecure hosts fall back to plain HTTP.
  out.push({ ...common, base: `https://${host}`, tlsInsecure: plainOk && !isLoopback(host), probe: plainOk });
  if (plainOk) out.push({ ...common, base: `http://${host}`, tlsInsecure: false });
  return out;
}
