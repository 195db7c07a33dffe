/**
 * One decision per proxied request: destination (name or address, and port) → name resolution → address
 * class. The proxy connects to the address checked here, never to the name again, so a DNS answer that
 * changes between the check and the connection (rebinding) cannot sneak a private address in.
 */
import { classifyAddress, isAddressPermitted, isIpLiteral, ownAddressSet, type AddressKind } from "./address.ts";
import { compileHostRules, decideHost, deniedAddress, normalizeHost } from "./allowlist.ts";

/** `host.silo.internal` is the host's loopback when hostAccess is on (the sandbox's /etc/hosts says so). */
export const HOST_INTERNAL_NAME = "host.silo.internal";

/** Resolve a name to its addresses (all families). Injectable so tests can map names without /etc/hosts. */
export type Lookup = (host: string) => Promise<string[]>;

/** The addresses of the host's own interfaces. Injectable so tests can give the host any address. */
export type OwnAddresses = () => Promise<readonly string[]>;

/**
 * How long a read of the host's interface addresses is used: one read is ~0.3 ms (getifaddrs), too much
 * for every request of a busy install, and an address the host gains later (a VPN coming up under a
 * long-lived sandbox) must not stay open for long.
 */
const OWN_ADDRESSES_TTL_MS = 2000;

export interface PolicyInput {
  allow: readonly string[];
  deny: readonly string[];
  hostAccess: boolean;
  /** The host ports hostAccess opens (the bridge's rule); missing or empty: every port. */
  hostPorts?: readonly number[];
  lookup?: Lookup;
  /** The host's own addresses; os.networkInterfaces() by default. */
  ownAddresses?: OwnAddresses;
}

export type DenyReason =
  | { kind: "denied"; pattern: string }
  | { kind: "not-allowed" }
  | { kind: "private"; address: string; addressKind: AddressKind }
  | { kind: "host-port"; port: number; hostPorts: readonly number[] }
  | { kind: "server-name"; serverName: string | null }
  /** A tunnel to a listed address whose TLS server name the name rules refuse (pattern: the deny entry). */
  | { kind: "server-name-rules"; serverName: string; pattern: string | null };

/**
 * What the TLS server name of a CONNECT tunnel must be: `match` the CONNECT host (a name), `listed` pass
 * the name rules if there is one (an address: one IP may serve many names), or `any` (the host's own
 * loopback through host.silo.internal).
 */
export type ServerNameRule = "match" | "listed" | "any";

export type Verdict =
  | {
      ok: true;
      host: string;
      /** The first address to use; `addresses` holds every permitted one, IPv4 first, for fallback. */
      address: string;
      addresses: string[];
      sni: ServerNameRule;
    }
  | { ok: false; status: 403; host: string; reason: DenyReason }
  | { ok: false; status: 502; host: string; message: string };

export async function defaultLookup(host: string): Promise<string[]> {
  const { lookup } = await import("node:dns/promises");
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => a.address);
}

/** Every address of every interface of the host (up or down): a connection to any of them stays on the host. */
export async function readOwnAddresses(): Promise<string[]> {
  const { networkInterfaces } = await import("node:os");
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

/**
 * The decision for one destination `host:port` (host as the client wrote it: a name or an IP literal in
 * any spelling). hostAccess opens the host's own addresses (host.silo.internal, the addresses of the
 * host's interfaces, and any non-public address a name resolves to) only on `hostPorts` when those are
 * listed, as the hostAccess bridge does. An address of the host's interfaces counts as the host whatever
 * its range (address.ts): without hostAccess only naming it exactly opens it, as for 127.0.0.1.
 */
export function createAuthorizer(p: PolicyInput): (host: string, port: number) => Promise<Verdict> {
  const lookup = p.lookup ?? defaultLookup;
  const readOwn = p.ownAddresses ?? readOwnAddresses;
  const rules = compileHostRules(p);
  const hostPortOk = (port: number) => !p.hostPorts?.length || p.hostPorts.includes(port);
  const hostPortRefusal = (port: number): DenyReason => ({ kind: "host-port", port, hostPorts: p.hostPorts ?? [] });
  let ownRead: { at: number; set: Promise<ReadonlySet<string>> } | null = null;
  const ownAddresses = () => {
    const now = Date.now();
    if (!ownRead || now - ownRead.at > OWN_ADDRESSES_TTL_MS) ownRead = { at: now, set: readOwn().then(ownAddressSet) };
    return ownRead.set;
  };
  return async (rawHost, port) => {
    const host = normalizeHost(rawHost);
    const own = await ownAddresses();
    const d = decideHost(host, rules, own);
    if (!d.allowed && d.reason === "denied") return { ok: false, status: 403, host, reason: { kind: "denied", pattern: d.pattern } };
    if (p.hostAccess && host === HOST_INTERNAL_NAME) {
      if (!hostPortOk(port)) return { ok: false, status: 403, host, reason: hostPortRefusal(port) };
      return { ok: true, host, address: "127.0.0.1", addresses: ["127.0.0.1", "::1"], sni: "any" };
    }
    if (!d.allowed) return { ok: false, status: 403, host, reason: { kind: "not-allowed" } };
    const literal = isIpLiteral(host);
    let addresses: string[];
    try {
      addresses = literal ? [host] : await lookup(host);
    } catch (e) {
      return { ok: false, status: 502, host, message: `cannot resolve ${host}: ${(e as Error).message}` };
    }
    if (addresses.length === 0) return { ok: false, status: 502, host, message: `${host} has no addresses` };
    // Deny by address too: an address or range in `deny` is never connected to, whatever name led there.
    let deniedBy: string | undefined;
    const candidates = addresses.filter((a) => {
      const pattern = deniedAddress(a, rules);
      deniedBy ??= pattern;
      return pattern === undefined;
    });
    if (candidates.length === 0) return { ok: false, status: 403, host, reason: { kind: "denied", pattern: deniedBy! } };
    const lift = { explicit: d.explicit, hostAccess: p.hostAccess };
    // Keep the addresses we may use: an allowed name with public and private answers still works. IPv4
    // first: "localhost" or a dual-stack name must not fail on a machine or server without IPv6.
    let portRefused = false;
    const usable = candidates.filter((a) => {
      const kind = classifyAddress(a, own);
      if (!isAddressPermitted(kind, lift)) return false;
      // Opened by hostAccess alone (not public, not named exactly): the host's port rule applies.
      if (kind !== "public" && !d.explicit && !hostPortOk(port)) {
        portRefused = true;
        return false;
      }
      return true;
    });
    usable.sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")));
    if (usable.length === 0) {
      if (portRefused) return { ok: false, status: 403, host, reason: hostPortRefusal(port) };
      const first = candidates[0]!;
      return { ok: false, status: 403, host, reason: { kind: "private", address: first, addressKind: classifyAddress(first, own) } };
    }
    return { ok: true, host, address: usable[0]!, addresses: usable, sni: literal ? "listed" : "match" };
  };
}

/**
 * The server name a tunnel to a listed address carries must pass the name rules as a CONNECT to that
 * name would (deny first, then allow); null when it does.
 */
export function checkServerName(serverName: string, p: Pick<PolicyInput, "allow" | "deny">): DenyReason | null {
  const d = decideHost(serverName, p);
  if (d.allowed) return null;
  return { kind: "server-name-rules", serverName: normalizeHost(serverName), pattern: d.reason === "denied" ? d.pattern : null };
}

/** The human text of a refusal: what was blocked, why, and the exact command that changes it. */
export function denyMessage(tool: string, host: string, reason: DenyReason): string {
  const allow = `silo config network allow ${tool} ${host}`;
  switch (reason.kind) {
    case "not-allowed":
      return `silo blocked ${host}: it is not on the network allowlist of ${tool}.\nTo allow it: ${allow}\n`;
    case "denied":
      return (
        `silo blocked ${host}: it matches "${reason.pattern}" in the network deny list of ${tool}.\n` +
        `To lift it: silo config network remove ${tool} ${reason.pattern}\n`
      );
    case "private":
      if (reason.addressKind === "host")
        return (
          `silo blocked ${host}: it resolves to ${reason.address}, an address of this machine, which only hostAccess ` +
          `(or the address named exactly in the allowlist) opens.\n` +
          `To open the host to ${tool}: hostAccess = true under [overrides.${tool}.network] in silo.toml\n`
        );
      return (
        `silo blocked ${host}: it resolves to ${reason.address}, a ${reason.addressKind} address, which only hosts ` +
        `named exactly in the allowlist may reach.\nTo allow it: ${allow}\n`
      );
    case "host-port":
      return (
        `silo blocked ${host} port ${reason.port}: hostAccess opens only the host port${reason.hostPorts.length > 1 ? "s" : ""} ` +
        `${reason.hostPorts.join(", ")} to ${tool} (hostPorts).\n` +
        `To open it: add ${reason.port} to hostPorts under [overrides.${tool}.network] in silo.toml\n`
      );
    case "server-name-rules":
      return reason.pattern === null
        ? `silo blocked a tunnel to ${host}: its TLS server name ${reason.serverName} is not on the network allowlist of ${tool}.\n` +
            `To allow it: silo config network allow ${tool} ${reason.serverName}\n`
        : `silo blocked a tunnel to ${host}: its TLS server name ${reason.serverName} matches "${reason.pattern}" in the network deny list of ${tool}.\n` +
            `To lift it: silo config network remove ${tool} ${reason.pattern}\n`;
    case "server-name":
      return (
        `silo blocked a tunnel to ${host}: ${reason.serverName === null ? "it carries no TLS server name" : `its TLS server name is ${reason.serverName}`}, ` +
        `and a tunnel may only reach the host it was opened for.\n` +
        (reason.serverName === null ? "" : `If ${reason.serverName} should be reachable: silo config network allow ${tool} ${reason.serverName}\n`)
      );
  }
}

/** A complete `403` response, for the raw-socket CONNECT path. */
export function denyResponse(tool: string, host: string, reason: DenyReason): string {
  const body = denyMessage(tool, host, reason);
  return (
    `HTTP/1.1 403 Forbidden\r\nX-Silo-Denied: ${host}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** A plain error response (400, 502) for the raw-socket path. */
export function errorResponse(status: 400 | 431 | 502, message: string): string {
  const text = { 400: "Bad Request", 431: "Request Header Fields Too Large", 502: "Bad Gateway" }[status];
  const body = `silo proxy: ${message}\n`;
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
