/**
 * The host policy: pure and strict. Name patterns are `api.example.com` (that host only), `*.github.com`
 * (subdomains only, not github.com itself) and `*` (every name); address patterns are an IP literal or a
 * CIDR range (`10.0.0.0/8`, `fd00::/8`). A name pattern never matches an IP literal, so `*` does not open
 * every address: a destination given as an address is reached only when that address is listed. `deny`
 * beats `allow`; `deny = ["*"]` refuses addresses too. Only a pattern that names the host exactly (no
 * wildcard), or a range that lies inside one address class, lets it reach loopback/private addresses.
 */
import { canonicalIp, classifyAddress, endsInNumber, inCidr, isIpLiteral, parseCidr } from "./address.ts";

export {
  classifyAddress,
  isAddressPermitted,
  isIpLiteral,
  parseIPv4,
  parseIPv4Loose,
  parseIPv6,
  type AddressKind,
} from "./address.ts";

/** Lowercase, without a trailing dot or IPv6 brackets; IP literals in canonical form (address.ts canonicalIp). */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return canonicalIp(h) ?? h;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const isHostname = (h: string) => h.length <= 253 && h.split(".").every((l) => LABEL.test(l)) && !endsInNumber(h);
const unbracket = (p: string) => (p.startsWith("[") && p.endsWith("]") ? p.slice(1, -1) : p);
/** A CIDR pattern's range, or null when the pattern is not one. */
const cidrOf = (p: string) => (p.includes("/") ? parseCidr(unbracket(p.trim().toLowerCase())) : null);

/**
 * Check one allow/deny pattern for the config validator. Returns an error message, or null when valid.
 * A wildcard must sit in front of at least two labels: `*.com` would open a whole top-level domain.
 */
export function validatePattern(pattern: string): string | null {
  const p = pattern.trim().toLowerCase();
  if (p === "") return "an empty host pattern matches nothing";
  if (p === "*") return null;
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(p)) return `"${pattern}" is a URL: write only the host name`;
  if (isIpLiteral(p)) return null;
  if (cidrOf(p)) return null;
  if (p.includes("/")) return `"${pattern}": paths are not part of a host pattern (an address range is written 10.0.0.0/8)`;
  if (/:\d+$/.test(p)) return `"${pattern}": ports are not part of a host pattern, write the host alone`;
  if (p.startsWith("*.")) {
    const rest = p.slice(2);
    if (rest.includes("*")) return `"${pattern}": only one leading "*." is allowed`;
    if (!isHostname(rest)) return `"${pattern}" is not a valid host name pattern`;
    if (!rest.includes(".")) return `"${pattern}" would match a whole top-level domain; name a domain under it`;
    return null;
  }
  if (p.includes("*")) return `"${pattern}": "*" may only stand alone or as a leading "*." label`;
  const bare = p.replace(/\.$/, "");
  if (canonicalIp(bare) !== null) return null; // 127.1, 0x7f.0.0.1: the address the resolver would read
  return isHostname(bare) ? null : `"${pattern}" is not a valid host name`;
}

/** Does one (valid) pattern match a normalized host? Name patterns match names, address patterns addresses. */
export function matchPattern(host: string, pattern: string): boolean {
  const ip = isIpLiteral(host);
  const range = cidrOf(pattern);
  if (range) return ip && inCidr(host, range);
  const p = normalizeHost(pattern);
  if (p === "*") return !ip;
  if (p.startsWith("*.")) return !ip && host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return host === p;
}

/**
 * Does a matching pattern name the host exactly (and so lift the private-address refusal)? An address
 * range does when its first and last address are of the same class as the host: `10.0.0.0/8` opens
 * 10.1.2.3, but `0.0.0.0/0` opens no loopback and `169.254.0.0/16` not the metadata service.
 */
function namesExactly(host: string, pattern: string): boolean {
  const range = cidrOf(pattern);
  if (!range) return normalizeHost(pattern) === host;
  const kind = classifyAddress(host);
  return classifyAddress(range.first) === kind && classifyAddress(range.last) === kind;
}

export type HostDecision =
  | { allowed: true; /** matched a pattern that names the host exactly */ explicit: boolean }
  | { allowed: false; reason: "denied"; pattern: string }
  | { allowed: false; reason: "not-allowed" };

/**
 * Decide a host (a name or an IP literal in any spelling) against allow/deny lists. Invalid patterns never
 * match (config validation reports them). A host ending in a number that is no IP address is refused: the
 * resolver must never be the one to decide what it means.
 */
export function decideHost(host: string, policy: { allow: readonly string[]; deny: readonly string[] }): HostDecision {
  const h = normalizeHost(host);
  const valid = (p: string) => validatePattern(p) === null;
  const denied = policy.deny.find((p) => valid(p) && (p.trim() === "*" || matchPattern(h, p)));
  if (denied !== undefined) return { allowed: false, reason: "denied", pattern: denied };
  if (endsInNumber(h) && !isIpLiteral(h)) return { allowed: false, reason: "not-allowed" };
  const hits = policy.allow.filter((p) => valid(p) && matchPattern(h, p));
  if (hits.length === 0) return { allowed: false, reason: "not-allowed" };
  return { allowed: true, explicit: hits.some((p) => namesExactly(h, p)) };
}

/** The deny pattern (an address or range) that an address a name resolved to falls under, if any. */
export function deniedAddress(address: string, deny: readonly string[]): string | undefined {
  const a = canonicalIp(address);
  if (a === null) return undefined;
  return deny.find((p) => p.trim() !== "*" && validatePattern(p) === null && matchPattern(a, p));
}

/** Convenience for callers that only need yes/no. */
export function isHostAllowed(host: string, policy: { allow: readonly string[]; deny: readonly string[] }): boolean {
  return decideHost(host, policy).allowed;
}
