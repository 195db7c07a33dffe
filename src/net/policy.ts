/**
 * One decision per proxied request: host pattern → name resolution → address class. The proxy connects
 * to the address checked here, never to the name again, so a DNS answer that changes between the check
 * and the connection (rebinding) cannot sneak a private address in.
 */
import { classifyAddress, isAddressPermitted, isIpLiteral, type AddressKind } from "./address.ts";
import { decideHost, normalizeHost } from "./allowlist.ts";

/** `host.silo.internal` is the host's loopback when hostAccess is on (the sandbox's /etc/hosts says so). */
export const HOST_INTERNAL_NAME = "host.silo.internal";

/** Resolve a name to its addresses (all families). Injectable so tests can map names without /etc/hosts. */
export type Lookup = (host: string) => Promise<string[]>;

export interface PolicyInput {
  allow: readonly string[];
  deny: readonly string[];
  hostAccess: boolean;
  lookup?: Lookup;
}

export type DenyReason =
  | { kind: "denied"; pattern: string }
  | { kind: "not-allowed" }
  | { kind: "private"; address: string; addressKind: AddressKind }
  | { kind: "server-name"; serverName: string | null };

export type Verdict =
  | {
      ok: true;
      host: string;
      /** The first address to use; `addresses` holds every permitted one, IPv4 first, for fallback. */
      address: string;
      addresses: string[];
      /** CONNECT must carry this host as its TLS server name */
      sniRequired: boolean;
    }
  | { ok: false; status: 403; host: string; reason: DenyReason }
  | { ok: false; status: 502; host: string; message: string };

export async function defaultLookup(host: string): Promise<string[]> {
  const { lookup } = await import("node:dns/promises");
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => a.address);
}

export function createAuthorizer(p: PolicyInput): (host: string) => Promise<Verdict> {
  const lookup = p.lookup ?? defaultLookup;
  return async (rawHost) => {
    const host = normalizeHost(rawHost);
    const d = decideHost(host, p);
    if (!d.allowed && d.reason === "denied") return { ok: false, status: 403, host, reason: { kind: "denied", pattern: d.pattern } };
    if (p.hostAccess && host === HOST_INTERNAL_NAME) return { ok: true, host, address: "127.0.0.1", addresses: ["127.0.0.1", "::1"], sniRequired: false };
    if (!d.allowed) return { ok: false, status: 403, host, reason: { kind: "not-allowed" } };
    const literal = isIpLiteral(host);
    let addresses: string[];
    try {
      addresses = literal ? [host] : await lookup(host);
    } catch (e) {
      return { ok: false, status: 502, host, message: `cannot resolve ${host}: ${(e as Error).message}` };
    }
    if (addresses.length === 0) return { ok: false, status: 502, host, message: `${host} has no addresses` };
    const lift = { explicit: d.explicit, hostAccess: p.hostAccess };
    // Keep the addresses we may use: an allowed name with public and private answers still works. IPv4
    // first: "localhost" or a dual-stack name must not fail on a machine or server without IPv6.
    const usable = addresses.filter((a) => isAddressPermitted(classifyAddress(a), lift));
    usable.sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")));
    if (usable.length === 0) {
      const first = addresses[0]!;
      return { ok: false, status: 403, host, reason: { kind: "private", address: first, addressKind: classifyAddress(first) } };
    }
    return { ok: true, host, address: usable[0]!, addresses: usable, sniRequired: !literal };
  };
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
      return (
        `silo blocked ${host}: it resolves to ${reason.address}, a ${reason.addressKind} address, which only hosts ` +
        `named exactly in the allowlist may reach.\nTo allow it: ${allow}\n`
      );
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
