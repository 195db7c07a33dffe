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
  if (/^\[?[0-9a-f:.]+\]?\/\d+$/.test(p)) return `"${pattern}" is not an address range (a prefix of 0–32 bits for IPv4, 0–128 for IPv6)`;
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

/** A valid pattern, read once: what it matches, and the text the refusal names. */
interface Rule {
  pattern: string;
  kind: "all" | "suffix" | "exact" | "range";
  /** The normalized host (exact), or the suffix with its leading dot (suffix). */
  value: string;
  range?: NonNullable<ReturnType<typeof parseCidr>>;
}

/** Allow and deny lists with their patterns checked and normalized once, for a policy that decides often. */
export interface HostRules {
  compiled: true;
  allow: Rule[];
  deny: Rule[];
}

function compileRule(pattern: string): Rule | null {
  if (validatePattern(pattern) !== null) return null;
  const range = cidrOf(pattern);
  if (range) return { pattern, kind: "range", value: "", range };
  const p = normalizeHost(pattern);
  if (p === "*") return { pattern, kind: "all", value: "" };
  if (p.startsWith("*.")) return { pattern, kind: "suffix", value: p.slice(1) };
  return { pattern, kind: "exact", value: p };
}

/** Compile allow/deny lists (invalid patterns dropped: config validation reports them). */
export function compileHostRules(policy: { allow: readonly string[]; deny: readonly string[] }): HostRules {
  const compile = (list: readonly string[]) => list.map(compileRule).filter((r): r is Rule => r !== null);
  return { compiled: true, allow: compile(policy.allow), deny: compile(policy.deny) };
}

/** Name patterns match names, address patterns addresses (`host` normalized; `ip`: is it an address). */
function ruleMatches(r: Rule, host: string, ip: boolean): boolean {
  switch (r.kind) {
    case "range":
      return ip && inCidr(host, r.range!);
    case "all":
      return !ip;
    case "suffix":
      return !ip && host.endsWith(r.value) && host.length > r.value.length;
    case "exact":
      return host === r.value;
  }
}

/** Does one (valid) pattern match a normalized host? */
export function matchPattern(host: string, pattern: string): boolean {
  const r = compileRule(pattern);
  return r !== null && ruleMatches(r, host, isIpLiteral(host));
}

/**
 * Does a matching rule name the host exactly (and so lift the private-address refusal)? An address range
 * does when its first and last address are of the same class as the host: `10.0.0.0/8` opens 10.1.2.3,
 * but `0.0.0.0/0` opens no loopback, `169.254.0.0/16` not the metadata service, and a range around one
 * of the host's own addresses (`own`) not that address.
 */
function namesExactly(r: Rule, host: string, own?: ReadonlySet<string>): boolean {
  if (r.kind !== "range") return r.kind === "exact";
  const kind = classifyAddress(host, own);
  return classifyAddress(r.range!.first, own) === kind && classifyAddress(r.range!.last, own) === kind;
}

export type HostDecision =
  | { allowed: true; /** matched a pattern that names the host exactly */ explicit: boolean }
  | { allowed: false; reason: "denied"; pattern: string }
  | { allowed: false; reason: "not-allowed" };

/**
 * Decide a host (a name or an IP literal in any spelling) against allow/deny lists (or rules compiled from
 * them). A host ending in a number that is no IP address is refused: the resolver must never be the one to
 * decide what it means. `deny = ["*"]` refuses addresses too. `own`: the host's own addresses
 * (address.ts ownAddressSet), which no range lifts.
 */
export function decideHost(
  host: string,
  policy: HostRules | { allow: readonly string[]; deny: readonly string[] },
  own?: ReadonlySet<string>,
): HostDecision {
  const rules = "compiled" in policy ? policy : compileHostRules(policy);
  const h = normalizeHost(host);
  const ip = isIpLiteral(h);
  const denied = rules.deny.find((r) => r.kind === "all" || ruleMatches(r, h, ip));
  if (denied !== undefined) return { allowed: false, reason: "denied", pattern: denied.pattern };
  if (!ip && endsInNumber(h)) return { allowed: false, reason: "not-allowed" };
  const hits = rules.allow.filter((r) => ruleMatches(r, h, ip));
  if (hits.length === 0) return { allowed: false, reason: "not-allowed" };
  return { allowed: true, explicit: hits.some((r) => namesExactly(r, h, own)) };
}

/** The deny pattern (an address or range) that an address a name resolved to falls under, if any. */
export function deniedAddress(address: string, rules: HostRules): string | undefined {
  const a = canonicalIp(address);
  if (a === null) return undefined;
  return rules.deny.find((r) => r.kind !== "all" && ruleMatches(r, a, true))?.pattern;
}

/** Convenience for callers that only need yes/no. */
export function isHostAllowed(host: string, policy: { allow: readonly string[]; deny: readonly string[] }): boolean {
  return decideHost(host, policy).allowed;
}
