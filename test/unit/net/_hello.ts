// Builds synthetic TLS ClientHellos for the SNI parser tests (and the proxy's integration tests).
const u16 = (n: number) => [n >> 8, n & 0xff];
const u24 = (n: number) => [n >> 16, (n >> 8) & 0xff, n & 0xff];

export interface HelloOptions {
  /** Server name to put in the server_name extension; omitted: no SNI extension. */
  serverName?: string;
  /** Extensions placed before server_name (type, bytes). */
  before?: [number, number[]][];
  /** Split the handshake message into records of at most this many bytes. */
  recordSize?: number;
  /** Omit the extensions block altogether (a TLS 1.0-era hello). */
  noExtensions?: boolean;
}

export function buildClientHello(o: HelloOptions = {}): Uint8Array {
  const ext = (type: number, data: number[]) => [...u16(type), ...u16(data.length), ...data];
  const exts: number[] = [];
  for (const [t, d] of o.before ?? []) exts.push(...ext(t, d));
  if (o.serverName !== undefined) {
    const name = [...new TextEncoder().encode(o.serverName)];
    const entry = [0, ...u16(name.length), ...name];
    exts.push(...ext(0, [...u16(entry.length), ...entry]));
  }
  exts.push(...ext(43, [2, 0x03, 0x04])); // supported_versions: TLS 1.3
  const body = [
    0x03, 0x03,
    ...new Array(32).fill(7), // random
    32, ...new Array(32).fill(9), // session id
    ...u16(4), 0x13, 0x01, 0x13, 0x02, // cipher suites
    1, 0, // compression: null
    ...(o.noExtensions ? [] : [...u16(exts.length), ...exts]),
  ];
  const hs = [1, ...u24(body.length), ...body];
  const size = o.recordSize ?? 16384;
  const out: number[] = [];
  for (let i = 0; i < hs.length; i += size) {
    const frag = hs.slice(i, i + size);
    out.push(22, 0x03, 0x01, ...u16(frag.length), ...frag);
  }
  return Uint8Array.from(out);
}
