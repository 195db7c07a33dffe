/**
 * The host policy: pure and strict. Patterns are `api.example.com` (that host only), `*.github.com`
 * (subdomains only, not github.com itself), `*` (everything) or an IP literal. `deny` beats `allow`.
 * Only a pattern that names the host exactly (no wildcard) lets it reach loopback/private addresses.
 */
import { canonicalIp, isIpLiteral } from "./address.ts";

export {
  classifyAddress,
  isAddressPermitted,
  isIpLiteral,
  parseIPv4,
  parseIPv6,
  type AddressKind,
} from "./address.ts";

/** Lowercase, without a trailing dot or IPv6 brackets; IP literals in canonical form. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return canonicalIp(h) ?? h;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const isHostname = (h: string) => h.length <= 253 && h.split(".").every((l) => LABEL.test(l));

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
  if (p.includes("/")) return `"${pattern}": paths and address ranges are not supported, name each host`;
  if (/:\d+$/.test(p)) return `"${pattern}": ports are not part of a host pattern, write the host alone`;
  if (p.startsWith("*.")) {
    const rest = p.slice(2);
    if (rest.includes("*")) return `"${pattern}": only one leading "*." is allowed`;
    if (!isHostname(rest)) return `"${pattern}" is not a valid host name pattern`;
    if (!rest.includes(".")) return `"${pattern}" would match a whole top-level domain; name a domain under it`;
    return null;
  }
  if (p.includes("*")) return `"${pattern}": "*" may only stand alone or as a leading "*." label`;
  return isHostname(p.replace(/\.$/, "")) ? null : `"${pattern}" is not a valid host name`;
}

/** Does one (valid) pattern match a normalized host? */
export function matchPattern(host: string, pattern: string): boolean {
  const p = normalizeHost(pattern);
  if (p === "*") return true;
  if (p.startsWith("*.")) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return host === p;
}

export type HostDecision =
  | { allowed: true; /** matched a pattern that names the host exactly */ explicit: boolean }
  | { allowed: false; reason: "denied"; pattern: string }
  | { allowed: false; reason: "not-allowed" };

/** Decide a host against allow/deny lists. Invalid patterns never match (config validation reports them). */
export function decideHost(host: string, policy: { allow: readonly string[]; deny: readonly string[] }): HostDecision {
  const h = normalizeHost(host);
  const valid = (p: string) => validatePattern(p) === null;
  const denied = policy.deny.find((p) => valid(p) && matchPattern(h, p));
  if (denied !== undefined) return { allowed: false, reason: "denied", pattern: denied };
  const hits = policy.allow.filter((p) => valid(p) && matchPattern(h, p));
  if (hits.length === 0) return { allowed: false, reason: "not-allowed" };
  return { allowed: true, explicit: hits.some((p) => normalizeHost(p) === h) };
}

/** Convenience for callers that only need yes/no. */
export function isHostAllowed(host: string, policy: { allow: readonly string[]; deny: readonly string[] }): boolean {
  return decideHost(host, policy).allowed;
}
