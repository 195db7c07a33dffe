/**
 * The address classifier: which kind of network an IP address belongs to. The egress proxy resolves every
 * name itself and refuses anything that is not `public` unless the configuration lifts it, so an allowed
 * name that resolves (or is rebound) to 127.0.0.1, a LAN address or the cloud metadata service does not
 * open them. IPv6 forms that embed an IPv4 address (::ffff:127.0.0.1, ::ffff:7f00:1, NAT64, 6to4) are
 * classified by the embedded address. An address of one of the host's own interfaces is `host` whatever its
 * range: a connection to it is delivered locally (over loopback), to services bound to 0.0.0.0, so it is
 * the host as much as 127.0.0.1 is, even in a public range.
 */
export type AddressKind =
  | "public"
  | "loopback"
  | "host"
  | "private"
  | "link-local"
  | "metadata"
  | "unspecified"
  | "multicast"
  | "reserved"
  | "invalid";

/** Parse dotted-quad IPv4 into a 32-bit number; null unless it is exactly four decimal octets. */
export function parseIPv4(s: string): number | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

/** Parse an IPv6 address (brackets and a %zone allowed) into eight 16-bit groups; null if malformed. */
export function parseIPv6(input: string): number[] | null {
  let s = input.startsWith("[") && input.endsWith("]") ? input.slice(1, -1) : input;
  s = s.replace(/%.*$/, "");
  if (!s.includes(":")) return null;
  // A trailing dotted quad stands for the last two groups: rewrite it as hex and parse as usual.
  const lastColon = s.lastIndexOf(":");
  const last = s.slice(lastColon + 1);
  if (last.includes(".")) {
    const v4 = parseIPv4(last);
    if (v4 === null) return null;
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const toGroups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = toGroups(halves[0]!);
  const rest = halves.length === 2 ? toGroups(halves[1]!) : [];
  for (const g of [...head, ...rest]) if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const hex = (gs: string[]) => gs.map((g) => parseInt(g, 16));
  return [...hex(head), ...new Array<number>(8 - total).fill(0), ...hex(rest)];
}

/**
 * IPv4 as inet_aton reads it (and so getaddrinfo, which the proxy's resolver calls, and the URL parser):
 * one to four parts, each decimal, `0x` hex or `0`-led octal, the last one filling the remaining bytes —
 * `127.1`, `0x7f.1`, `2130706433` and `0177.0.0.1` are all 127.0.0.1. Null for anything else.
 */
export function parseIPv4Loose(s: string): number | null {
  const parts = s.split(".");
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0x[0-9a-f]*$/i.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) v = parseInt(p, 8);
    else if (/^[1-9][0-9]*$/.test(p)) v = Number(p);
    else return null;
    values.push(v);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255) || last >= 256 ** (4 - values.length)) return null;
  return values.reduce((n, v, i) => n + v * 256 ** (3 - i), 0) + last;
}

/** Does the host end in a numeric label? Then it is an IPv4 address or nothing (never a DNS name to look up). */
export const endsInNumber = (s: string): boolean => /(^|\.)(0x[0-9a-f]*|[0-9]+)$/i.test(s);

/** Is this string an IP literal (v4 dotted quad or v6, brackets allowed)? */
export function isIpLiteral(s: string): boolean {
  return parseIPv4(s) !== null || parseIPv6(s) !== null;
}

const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");

/**
 * The one spelling of an IP literal, so that a rule for an address matches it however it is written: IPv4
 * in any form inet_aton reads (parseIPv4Loose) becomes a dotted quad, an IPv4-mapped IPv6 address
 * (`::ffff:127.0.0.1`, which connects to the same socket) its IPv4 address, other IPv6 eight lowercase
 * hex groups. Null when it is not an IP literal.
 */
export function canonicalIp(s: string): string | null {
  const v4 = parseIPv4Loose(s);
  if (v4 !== null) return dotted(v4);
  const g = parseIPv6(s);
  if (!g) return null;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return dotted(((g[6]! << 16) >>> 0) + g[7]!);
  return g.map((x) => x.toString(16)).join(":");
}

/**
 * The host's own addresses (every interface's), canonical (canonicalIp), for classifyAddress. Addresses
 * that are not IP literals are dropped.
 */
export function ownAddressSet(addresses: Iterable<string>): ReadonlySet<string> {
  const set = new Set<string>();
  for (const a of addresses) {
    const c = canonicalIp(a);
    if (c !== null) set.add(c);
  }
  return set;
}

/** An address (canonical, see canonicalIp) as eight 16-bit groups, IPv4 as ::ffff:a.b.c.d. */
function groupsOf(addr: string): number[] | null {
  const v4 = parseIPv4(addr);
  return v4 !== null ? [0, 0, 0, 0, 0, 0xffff, v4 >>> 16, v4 & 0xffff] : parseIPv6(addr);
}

/** A CIDR range `10.0.0.0/8`, `fd00::/8`: its first and last address (canonical), or null if malformed. */
export function parseCidr(s: string): { first: string; last: string; groups: number[]; bits: number } | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return null;
  const v4 = parseIPv4(m[1]!);
  const groups = v4 !== null ? groupsOf(m[1]!) : parseIPv6(m[1]!);
  const max = v4 !== null ? 32 : 128;
  const bits = Number(m[2]);
  if (!groups || bits > max) return null;
  const b = bits + 128 - max; // IPv4 ranges are kept as IPv4-mapped IPv6 ones
  const mask = (i: number) => (b >= (i + 1) * 16 ? 0xffff : b <= i * 16 ? 0 : (0xffff << (16 - (b - i * 16))) & 0xffff);
  const lo = groups.map((g, i) => g & mask(i));
  const hi = groups.map((g, i) => (g & mask(i)) | (~mask(i) & 0xffff));
  const show = (gs: number[]) => (v4 !== null ? dotted(((gs[6]! << 16) >>> 0) + gs[7]!) : gs.map((x) => x.toString(16)).join(":"));
  return { first: show(lo), last: show(hi), groups: lo, bits: b };
}

/** Is the (canonical) address inside the range? */
export function inCidr(addr: string, range: { groups: number[]; bits: number }): boolean {
  const g = groupsOf(addr);
  if (!g) return false;
  for (let i = 0; i < 8; i++) {
    const left = range.bits - i * 16;
    if (left <= 0) return true;
    const mask = left >= 16 ? 0xffff : (0xffff << (16 - left)) & 0xffff;
    if ((g[i]! & mask) !== range.groups[i]) return false;
  }
  return true;
}

const METADATA_V4 = ["169.254.169.254", "169.254.170.2", "169.254.169.253", "100.100.100.200", "192.0.0.192"];

const inV4 = (n: number, base: string, bits: number) => {
  const b = parseIPv4(base)!;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((n & mask) >>> 0) === ((b & mask) >>> 0);
};

function classifyV4(n: number, own?: ReadonlySet<string>): AddressKind {
  if (inV4(n, "0.0.0.0", 8)) return "unspecified";
  if (inV4(n, "127.0.0.0", 8)) return "loopback";
  // Cloud metadata and credential endpoints: AWS/GCP/Azure (169.254.169.254), AWS ECS task credentials
  // (169.254.170.2), AWS's resolver (169.254.169.253), Alibaba (100.100.100.200), Oracle (192.0.0.192).
  // Before the host's own addresses: a node that serves the metadata address itself (GKE) keeps it closed.
  if (METADATA_V4.some((m) => n === parseIPv4(m))) return "metadata";
  if (own?.has(dotted(n))) return "host";
  if (inV4(n, "169.254.0.0", 16)) return "link-local";
  if (inV4(n, "10.0.0.0", 8) || inV4(n, "172.16.0.0", 12) || inV4(n, "192.168.0.0", 16)) return "private";
  if (inV4(n, "100.64.0.0", 10)) return "private"; // carrier-grade NAT (and Alibaba's metadata service)
  if (inV4(n, "224.0.0.0", 4)) return "multicast";
  if (inV4(n, "240.0.0.0", 4)) return "reserved"; // includes 255.255.255.255
  if (inV4(n, "192.0.0.0", 24) || inV4(n, "192.0.2.0", 24) || inV4(n, "198.51.100.0", 24)) return "reserved";
  if (inV4(n, "203.0.113.0", 24) || inV4(n, "198.18.0.0", 15) || inV4(n, "192.88.99.0", 24)) return "reserved";
  return "public";
}

function classifyV6(g: number[], own?: ReadonlySet<string>): AddressKind {
  const [a, b, c, d, e, f, x, y] = g as [number, number, number, number, number, number, number, number];
  const v4 = ((x << 16) >>> 0) + y;
  const zero5 = a === 0 && b === 0 && c === 0 && d === 0 && e === 0;
  if (zero5 && f === 0 && x === 0 && y === 0) return "unspecified";
  if (zero5 && f === 0 && x === 0 && y === 1) return "loopback";
  if (zero5 && (f === 0xffff || f === 0)) return classifyV4(v4, own); // IPv4-mapped / IPv4-compatible
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0xffff && f === 0) return classifyV4(v4, own); // SIIT
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return classifyV4(v4, own); // NAT64
  if (a === 0x64 && b === 0xff9b && c === 1) return "private"; // local-use NAT64
  if (a === 0x2002) return classifyV4(((b << 16) >>> 0) + c, own); // 6to4 embeds the IPv4 address
  if (a === 0xfd00 && b === 0xec2 && g.slice(2, 7).every((v) => v === 0) && y === 0x254) return "metadata";
  if (own?.has(g.map((v) => v.toString(16)).join(":"))) return "host";
  if ((a & 0xfe00) === 0xfc00) return "private"; // unique local fc00::/7 (fd00::/8)
  if ((a & 0xffc0) === 0xfe80) return "link-local";
  if ((a & 0xffc0) === 0xfec0) return "private"; // deprecated site-local
  if ((a & 0xff00) === 0xff00) return "multicast";
  if (a === 0x2001 && b === 0xdb8) return "reserved"; // documentation
  if (a === 0x2001 && b === 0) return "reserved"; // Teredo hides the real IPv4 address
  if (a === 0x100 && b === 0 && c === 0 && d === 0) return "reserved"; // discard prefix
  return "public";
}

/**
 * Classify an IP literal. Anything that is not an IP literal is `invalid`. `own`: the host's own addresses
 * (ownAddressSet), which are `host` unless they are loopback, unspecified or a metadata endpoint.
 */
export function classifyAddress(addr: string, own?: ReadonlySet<string>): AddressKind {
  const v4 = parseIPv4(addr);
  if (v4 !== null) return classifyV4(v4, own);
  const v6 = parseIPv6(addr);
  return v6 ? classifyV6(v6, own) : "invalid";
}

/**
 * May the proxy connect to an address of this kind? Public always; everything else only when the host was
 * named exactly in the allow list. hostAccess opens the host's own services (loopback, the host's own
 * interface addresses, private networks), never link-local or the cloud metadata and credential
 * endpoints: a name the sandbox controls (DNS) could resolve there.
 */
export function isAddressPermitted(kind: AddressKind, lift: { explicit: boolean; hostAccess: boolean }): boolean {
  if (kind === "invalid") return false;
  if (kind === "public" || lift.explicit) return true;
  return lift.hostAccess && (kind === "loopback" || kind === "host" || kind === "private");
}
