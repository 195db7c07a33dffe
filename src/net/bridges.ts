/**
 * Host-side ends of the relays: the hostAccess bridge (Unix socket → host loopback port) and the port
 * forwards (host 127.0.0.1:<host> → Unix socket of the in-sandbox relay → sandbox 127.0.0.1:<guest>).
 * Both carry a 2-byte port header in front of the stream (pipe.ts `portHeader`).
 */
import type { SocketListener } from "bun";
import { readFileSync, rmSync } from "node:fs";
import { SiloError } from "../core/errors.ts";
import { newEnd, pipeHandlers, portHeader, readPortHeader, relayTo, type End } from "./pipe.ts";

export interface Closable {
  close(): Promise<void>;
}

/**
 * Listen on `socketPath`; each connection names a port in its header and is joined to 127.0.0.1:<port>
 * (or [::1]:<port>) on the host. `ports`, when given, limits which ports may be named.
 */
export async function startHostAccessBridge(opts: { socketPath: string; ports?: number[] }): Promise<Closable> {
  const permitted = opts.ports ? new Set(opts.ports) : null;
  rmSync(opts.socketPath, { force: true });
  const listener = Bun.listen<End>({
    unix: opts.socketPath,
    allowHalfOpen: true,
    socket: {
      ...pipeHandlers,
      open(s) {
        s.data = newEnd({
          onData: readPortHeader((sock, port, rest) => {
            if (port === 0 || (permitted && !permitted.has(port))) return void sock.end();
            void relayTo(sock, [{ hostname: "127.0.0.1", port }, { hostname: "::1", port }], rest);
          }),
        });
        s.timeout(30);
      },
    },
  });
  return {
    async close() {
      listener.stop(true);
      rmSync(opts.socketPath, { force: true });
    },
  };
}

/** Fail with one clear error, before anything starts, if any of these host ports is taken. */
export async function checkPortsFree(ports: readonly { host: number }[] | readonly number[]): Promise<void> {
  const taken: number[] = [];
  for (const p of ports) {
    const port = typeof p === "number" ? p : p.host;
    try {
      Bun.listen({ hostname: "127.0.0.1", port, exclusive: true, socket: { data() {} } }).stop(true);
    } catch {
      taken.push(port);
    }
  }
  if (taken.length) throw portsTaken(taken);
}

function portsTaken(taken: number[]): SiloError {
  const list = taken.join(", ");
  return new SiloError(
    "E_NETWORK",
    `cannot forward host port${taken.length > 1 ? "s" : ""} ${list}: already in use on the host`,
    `stop whatever listens there (\`ss -ltnp 'sport = :${taken[0]}'\` shows it) or forward another host port, e.g. -p ${taken[0]! + 1}:<guest>`,
  );
}

/**
 * Listen on 127.0.0.1:<host> for every forward and relay each connection into the sandbox through
 * `forwardSocket`. Throws a SiloError naming every port that is taken (nothing is left listening then).
 */
export async function startPortForwards(ports: readonly { host: number; guest: number }[], forwardSocket: string): Promise<Closable> {
  const listeners: SocketListener<End>[] = [];
  const taken: number[] = [];
  for (const { host, guest } of ports) {
    try {
      listeners.push(
        Bun.listen<End>({
          hostname: "127.0.0.1",
          port: host,
          exclusive: true,
          allowHalfOpen: true,
          socket: {
            ...pipeHandlers,
            open(s) {
              s.data = newEnd();
              void relayTo(s, [{ unix: forwardSocket }], portHeader(guest));
            },
          },
        }),
      );
    } catch {
      taken.push(host);
    }
  }
  if (taken.length) {
    for (const l of listeners) l.stop(true);
    throw portsTaken(taken);
  }
  return {
    async close() {
      for (const l of listeners) l.stop(true);
    },
  };
}

/**
 * TCP ports listening on the host's loopback right now (127.0.0.1, 0.0.0.0, ::1, ::), from /proc/net.
 * hostAccess relays these when the configuration does not name ports: a sandbox cannot listen on "any
 * port" without packet-rewriting privileges, so it gets every service that is up when it starts.
 */
export function discoverHostPorts(procNet = "/proc/net"): number[] {
  const ports = new Set<number>();
  const local4 = new Set(["0100007F", "00000000"]);
  const local6 = new Set(["00000000000000000000000001000000", "00000000000000000000000000000000"]);
  for (const [file, locals] of [["tcp", local4], ["tcp6", local6]] as const) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${file}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "0A") continue; // 0A = LISTEN
      const [addr, port] = f[1]!.split(":");
      if (addr && port && locals.has(addr.toUpperCase())) ports.add(parseInt(port, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}
