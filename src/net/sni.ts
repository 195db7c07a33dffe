/**
 * Read the server name (SNI) out of a TLS ClientHello without terminating TLS. The proxy holds the first
 * bytes of a CONNECT tunnel until the whole ClientHello has arrived (it may span several TLS records),
 * then compares the name with the CONNECT host, so a tunnel to an allowed host cannot be used to reach
 * another name behind the same front (domain fronting).
 */
export type HelloResult =
  | { state: "incomplete" }
  | { state: "hello"; serverName: string | null }
  | { state: "not-tls"; why: string };

/** Largest ClientHello we are willing to buffer (post-quantum key shares make them a few KB). */
export const MAX_HELLO_BYTES = 64 * 1024;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;

/** Parse what has arrived so far. Call again with more bytes while the result is `incomplete`. */
export function parseClientHello(buf: Uint8Array): HelloResult {
  // Reassemble the handshake message from consecutive handshake records.
  const msg: number[] = [];
  let off = 0;
  let need = -1;
  while (need < 0 || msg.length < need) {
    if (buf.length < off + 5) return incompleteOr(buf);
    if (buf[off] !== RECORD_HANDSHAKE) return { state: "not-tls", why: "first record is not a TLS handshake" };
    if (buf[off + 1] !== 3) return { state: "not-tls", why: "unknown TLS record version" };
    const len = (buf[off + 3]! << 8) | buf[off + 4]!;
    if (len === 0 || len > 16384 + 2048) return { state: "not-tls", why: "bad TLS record length" };
    if (buf.length < off + 5 + len) return incompleteOr(buf);
    for (let i = off + 5; i < off + 5 + len; i++) msg.push(buf[i]!);
    off += 5 + len;
    if (need < 0 && msg.length >= 4) {
      if (msg[0] !== HANDSHAKE_CLIENT_HELLO) return { state: "not-tls", why: "first handshake message is not a ClientHello" };
      need = 4 + ((msg[1]! << 16) | (msg[2]! << 8) | msg[3]!);
      if (need > MAX_HELLO_BYTES) return { state: "not-tls", why: "ClientHello too large" };
    }
  }
  return readServerName(Uint8Array.from(msg.slice(4, need)));
}

function incompleteOr(buf: Uint8Array): HelloResult {
  return buf.length > MAX_HELLO_BYTES ? { state: "not-tls", why: "ClientHello too large" } : { state: "incomplete" };
}

/** Walk a ClientHello body to the server_name extension. */
function readServerName(b: Uint8Array): HelloResult {
  const bad = (why: string): HelloResult => ({ state: "not-tls", why: `malformed ClientHello: ${why}` });
  let p = 2 + 32; // client_version, random
  if (b.length < p + 1) return bad("too short");
  p += 1 + b[p]!; // session_id
  if (b.length < p + 2) return bad("no cipher suites");
  p += 2 + ((b[p]! << 8) | b[p + 1]!);
  if (b.length < p + 1) return bad("no compression methods");
  p += 1 + b[p]!;
  if (p === b.length) return { state: "hello", serverName: null }; // no extensions at all
  if (b.length < p + 2) return bad("truncated extensions");
  const end = p + 2 + ((b[p]! << 8) | b[p + 1]!);
  if (end > b.length) return bad("extensions overrun");
  p += 2;
  while (p + 4 <= end) {
    const type = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
    if (p + len > end) return bad("extension overrun");
    if (type === EXT_SERVER_NAME) return readNameList(b.subarray(p, p + len), bad);
    p += len;
  }
  return { state: "hello", serverName: null };
}

function readNameList(e: Uint8Array, bad: (why: string) => HelloResult): HelloResult {
  if (e.length < 2) return bad("empty server_name");
  const end = 2 + ((e[0]! << 8) | e[1]!);
  if (end > e.length) return bad("server_name overrun");
  let p = 2;
  while (p + 3 <= end) {
    const type = e[p]!;
    const len = (e[p + 1]! << 8) | e[p + 2]!;
    p += 3;
    if (p + len > end) return bad("host_name overrun");
    if (type === 0) {
      const name = new TextDecoder().decode(e.subarray(p, p + len));
      // Only plain host name characters: anything else cannot equal an allowed host.
      return /^[\x21-\x7e]+$/.test(name) ? { state: "hello", serverName: name } : bad("host_name is not ASCII");
    }
    p += len;
  }
  return { state: "hello", serverName: null };
}

/** A fatal TLS alert (access_denied) so a client sees why the tunnel closed rather than a bare reset. */
export const TLS_ALERT_ACCESS_DENIED = Uint8Array.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);
