/**
 * Plain `http://` forwarding (absolute-form request targets) for the egress proxy. node:http parses the
 * requests, so keep-alive connections, chunked bodies and pipelining are handled, and every request on a
 * connection is checked on its own (a second request to another host cannot ride on the first one's
 * approval). Started by proxy.ts on first use, on a private Unix socket next to the proxy's.
 */
import { rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket as NetSocket } from "node:net";
import { log } from "../core/log.ts";
import { denyMessage, type DenyReason, type Verdict } from "./policy.ts";

export interface PlainHttpOptions {
  socketPath: string;
  /** The proxy's own socket: a CONNECT that arrives on a kept-alive connection is sent back through it. */
  connectSocket: string;
  authorize: (host: string, port: number) => Promise<Verdict>;
  tool: string;
  refuse: (host: string, reason: DenyReason) => void;
}

/** Hop-by-hop and proxy headers that must not travel upstream. */
const DROP = new Set(["proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "trailer", "upgrade"]);

export async function startPlainHttpProxy(o: PlainHttpOptions): Promise<{ socketPath: string; close(): Promise<void> }> {
  const http = await import("node:http");
  const net = await import("node:net");

  const fail = (res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}) => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close", ...extra });
    res.end(text);
  };

  async function forward(req: IncomingMessage, res: ServerResponse) {
    let url: URL;
    try {
      url = new URL(req.url ?? "");
    } catch {
      return fail(res, 400, "silo proxy: send absolute-form requests (http://host/path)\n");
    }
    if (url.protocol !== "http:") return fail(res, 400, `silo proxy: ${url.protocol} is not proxied as plain HTTP; use CONNECT\n`);
    const port = Number(url.port || 80);
    const v = await o.authorize(url.hostname, port);
    if (!v.ok) {
      if (v.status === 502) return fail(res, 502, `silo proxy: ${v.message}\n`);
      o.refuse(v.host, v.reason);
      return fail(res, 403, denyMessage(o.tool, v.host, v.reason), { "x-silo-denied": v.host });
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, val] of Object.entries(req.headers)) if (val !== undefined && !DROP.has(k)) headers[k] = val;
    // The Host of the checked target, never the client's own: behind a shared front (a CDN serves the npm
    // and PyPI registries) another Host would reach another site.
    headers.host = url.host;
    const up = http.request({
      host: v.address, // the checked address: the name is not resolved again
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
    });
    up.on("response", (r) => {
      const h: Record<string, string | string[]> = {};
      for (const [k, val] of Object.entries(r.headers)) if (val !== undefined && !DROP.has(k)) h[k] = val;
      res.writeHead(r.statusCode ?? 502, h);
      r.pipe(res);
    });
    up.on("error", (e) => fail(res, 502, `silo proxy: cannot reach ${v.host}:${port}: ${e.message}\n`));
    req.pipe(up);
  }

  const server = http.createServer((req, res) => {
    forward(req, res).catch((e) => fail(res, 502, `silo proxy: ${e}\n`));
  });
  // CONNECT after plain requests on one connection: replay it into the CONNECT path of the proxy.
  server.on("connect", (req: IncomingMessage, sock: NetSocket, head: Buffer) => {
    const back = net.connect(o.connectSocket, () => {
      back.write(`CONNECT ${req.url} HTTP/1.1\r\nHost: ${req.url}\r\n\r\n`);
      if (head.length) back.write(head);
      back.pipe(sock);
      sock.pipe(back);
    });
    back.on("error", () => sock.destroy());
    sock.on("error", () => back.destroy());
  });
  server.on("clientError", (e, sock) => {
    log.debug(`proxy: bad HTTP request: ${e.message}`);
    sock.destroy();
  });

  rmSync(o.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.socketPath, () => resolve());
  });
  return {
    socketPath: o.socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
        rmSync(o.socketPath, { force: true });
      }),
  };
}
