/**
 * The host-side egress proxy, on a Unix socket that the relay inside the sandbox's network namespace
 * reaches. A connection that opens with CONNECT (every HTTPS client) is handled here on Bun's native
 * sockets: policy, resolution, upstream connection, `200`, then the ClientHello is held until its server
 * name is checked, and the two sockets are joined. Anything else (plain `http://` requests, with
 * keep-alive and bodies) is handed to a node:http server started on first use (proxy-http.ts).
 */
import type { Socket, UnixSocketListener } from "bun";
import { rmSync } from "node:fs";
import { log } from "../core/log.ts";
import { connectEnd, join, newEnd, pipeHandlers, relayTo, type End } from "./pipe.ts";
import { checkServerName, createAuthorizer, denyMessage, denyResponse, errorResponse, type DenyReason, type Lookup, type OwnAddresses } from "./policy.ts";
import { parseClientHello, TLS_ALERT_ACCESS_DENIED } from "./sni.ts";

export interface DenyInfo {
  reason: DenyReason;
  /** The same text the sandboxed client receives in the 403 body (first line: what; second: the fix). */
  message: string;
}

export interface EgressProxyOptions {
  /** Where to listen (created; a stale socket file is replaced). */
  socketPath: string;
  /** Host patterns that may be reached. Empty: nothing (but `host.silo.internal` with hostAccess). */
  allow: string[];
  /** Host patterns that may never be reached; they beat `allow`, even `*`. */
  deny: string[];
  /** Lift the private-address refusal and map `host.silo.internal` to the host's 127.0.0.1. */
  hostAccess: boolean;
  /** The host ports hostAccess opens (missing or empty: all), as the hostAccess bridge allows them. */
  hostPorts?: number[];
  /** Tool name, for the fix command in refusals. */
  tool: string;
  /** Called once per denied host (the caller prints one stderr line for it). */
  onDeny?: (host: string, info: DenyInfo) => void;
  /** Name resolution; node:dns by default. Tests map names to loopback addresses with it. */
  lookup?: Lookup;
  /** The host's own interface addresses (refused like loopback); os.networkInterfaces() by default. */
  ownAddresses?: OwnAddresses;
}

export interface EgressProxy {
  socketPath: string;
  close(): Promise<void>;
}

const MAX_HEAD = 16 * 1024;
/** The first byte of a TLS handshake record: what a ClientHello starts with. */
const TLS_HANDSHAKE_RECORD = 0x16;
const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";

export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  const authorize = createAuthorizer(opts);
  const seen = new Set<string>();
  const refuse = (host: string, reason: DenyReason) => {
    const message = denyMessage(opts.tool, host, reason);
    log.debug(`proxy: ${message.split("\n")[0]}`);
    const key = reason.kind === "host-port" ? `${host}:${reason.port}` : host;
    if (seen.has(key)) return;
    seen.add(key);
    opts.onDeny?.(host, { reason, message });
  };
  // Started on the first plain-HTTP request: most runs only ever see CONNECT, and node:http costs start-up.
  let httpStarting: Promise<{ socketPath: string; close(): Promise<void> }> | null = null;
  const plainHttp = () =>
    (httpStarting ??= import("./proxy-http.ts").then((m) =>
      m.startPlainHttpProxy({ socketPath: `${opts.socketPath}.http`, connectSocket: opts.socketPath, authorize, tool: opts.tool, refuse }),
    ));

  async function onConnect(s: Socket<End>, target: string, rest: Uint8Array) {
    const hp = splitHostPort(target);
    if (!hp) return void s.end(errorResponse(400, `bad CONNECT target ${JSON.stringify(target)}`));
    const v = await authorize(hp.host, hp.port);
    if (!v.ok) {
      if (v.status === 403) refuse(v.host, v.reason);
      return void s.end(v.status === 403 ? denyResponse(opts.tool, v.host, v.reason) : errorResponse(502, v.message));
    }
    let up: Socket<End> | null = null;
    let lastError = "";
    for (const address of v.addresses) {
      try {
        up = await connectEnd({ hostname: address, port: hp.port });
        break;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    if (!up) return void s.end(errorResponse(502, `cannot connect to ${v.host}:${hp.port}: ${lastError}`));
    if (s.data.closed) return void up.end();
    const upstream = up;
    s.write(ESTABLISHED);
    // From here the tunnel is open: if the upstream breaks, the relay resets its client (cut.ts).
    s.data.cutMark = true;
    if (v.sni === "any") return join(s, upstream, rest);
    // Hold the client's first bytes until the whole ClientHello is here, then check its server name. To a
    // listed address, the server's bytes flow meanwhile (a protocol whose server speaks first still works),
    // and bytes that are not TLS pass: only a server name, when there is one, must pass the name rules.
    const listed = v.sni === "listed";
    // A client that leaves before its hello is checked takes the upstream connection with it.
    s.data.onClose = () => upstream.end();
    if (listed) {
      upstream.data.peer = s;
      for (const d of upstream.data.early.splice(0)) s.write(d);
      s.timeout(0);
    }
    let buf: Uint8Array = concatAll([rest, ...s.data.early.splice(0)]);
    const check = () => {
      if (buf.length === 0) return false;
      if (listed && buf[0] !== TLS_HANDSHAKE_RECORD) return pass();
      const r = parseClientHello(buf);
      if (r.state === "incomplete") return false;
      const name = r.state === "hello" && r.serverName ? r.serverName.toLowerCase().replace(/\.$/, "") : null;
      let problem: DenyReason | null;
      if (!listed) problem = name === v.host ? null : { kind: "server-name", serverName: name };
      else if (r.state === "not-tls") problem = { kind: "server-name", serverName: null };
      else problem = name === null ? null : checkServerName(name, opts);
      if (!problem) return pass();
      refuse(v.host, problem);
      s.data.onClose = null;
      s.end(TLS_ALERT_ACCESS_DENIED);
      upstream.end();
      return true;
    };
    const pass = () => {
      s.data.onClose = null;
      join(s, upstream, buf);
      return true;
    };
    if (check()) return;
    s.data.onData = (_s, d) => {
      buf = concatAll([buf, d]);
      check();
    };
    if (!listed) s.timeout(30);
    s.resume();
  }

  function onHead(s: Socket<End>, head: Buffer, end: number) {
    s.pause();
    s.data.onData = null;
    const line = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
    const [method, target] = line.split(" ");
    if (method === "CONNECT" && target) {
      onConnect(s, target, head.subarray(end + 4)).catch((e) => {
        log.debug(`proxy: CONNECT ${target} failed: ${e}`);
        s.end();
      });
      return;
    }
    // Plain HTTP: the node:http server parses and checks every request on this connection.
    plainHttp()
      .then((h) => relayTo(s, [{ unix: h.socketPath }], head))
      .catch((e) => {
        log.debug(`proxy: plain HTTP server failed: ${e}`);
        s.end(errorResponse(502, "proxy unavailable"));
      });
  }

  rmSync(opts.socketPath, { force: true });
  const listener: UnixSocketListener<End> = Bun.listen<End>({
    unix: opts.socketPath,
    allowHalfOpen: true,
    socket: {
      ...pipeHandlers,
      open(s) {
        let got: Buffer = Buffer.alloc(0);
        s.data = newEnd({
          onData: (_s, d) => {
            got = got.length ? Buffer.concat([got, d]) : d;
            const end = got.indexOf("\r\n\r\n");
            if (end >= 0) onHead(s, got, end);
            else if (got.length > MAX_HEAD) s.end(errorResponse(431, "request head too large"));
          },
        });
        s.timeout(30);
      },
    },
  });

  return {
    socketPath: opts.socketPath,
    async close() {
      listener.stop(true);
      rmSync(opts.socketPath, { force: true });
      if (httpStarting) await httpStarting.then((h) => h.close()).catch(() => undefined);
    },
  };
}

/** `host:port` or `[v6]:port` → parts; null if malformed. */
export function splitHostPort(target: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:\s]+):(\d+)$/.exec(target);
  // Host name or IP characters only: the host is echoed in a response header.
  if (!m || !/^[A-Za-z0-9._:%-]+$/.test(m[1]!)) return null;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!, port } : null;
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts);
}
