/**
 * Host-side ends of the relays: the hostAccess bridge (Unix socket → host loopback port) and the port
 * forwards (host 127.0.0.1:<host> → Unix socket of the in-sandbox relay → sandbox 127.0.0.1:<guest>).
 * Both carry a 2-byte port header in front of the stream (pipe.ts `portHeader`).
 */
import type { SocketListener } from "bun";
import { readFileSync, rmSync } from "node:fs";
import { SiloError } from "../core/errors.ts";
import { listenWithPortHeader, loopbackTargets, newEnd, pipeHandlers, portHeader, relayTo, type End } from "./pipe.ts";

export interface Closable {
  close(): Promise<void>;
}

/**
 * Listen on `socketPath`; each connection names a port in its header and is joined to 127.0.0.1:<port>
 * (or [::1]:<port>) on the host. `ports`, when given, limits which ports may be named; otherwise the ports
 * listening on host loopback are discovered in the background, and a connection naming port 0 (the
 * relay, at start) is answered with that list as JSON. Reading /proc/net/tcp walks the kernel's whole
 * connection table (tens of ms on big machines), so it overlaps the sandbox's own start-up this way.
 */
export async function startHostAccessBridge(opts: { socketPath: string; ports?: number[] }): Promise<Closable> {
  const permitted = opts.ports ? new Set(opts.ports) : null;
  const listed = opts.ports ? Promise.resolve(opts.ports) : discoverHostPortsAsync();
  listed.catch(() => undefined);
  const listener = listenWithPortHeader(
    opts.socketPath,
    (sock, port, rest) => {
      if (port === 0) {
        listed.then((l) => sock.end(JSON.stringify(l))).catch(() => sock.end("[]"));
        return;
      }
      if (permitted && !permitted.has(port)) return void sock.end();
      void relayTo(sock, loopbackTargets(port), rest);
    },
    30,
  );
  return {
    async close() {
      listener.stop(true);
      rmSync(opts.socketPath, { force: true });
    },
  };
}

/** Ask a hostAccess bridge for the host ports to relay (the port-0 request above). */
export async function fetchHostPorts(socketPath: string): Promise<number[]> {
  const chunks: Uint8Array[] = [];
  const done = Promise.withResolvers<void>();
  await Bun.connect({
    unix: socketPath,
    socket: {
      open: (s) => void s.write(portHeader(0)),
      data: (_s, d) => void chunks.push(d),
      close: () => done.resolve(),
      error: (_s, e) => done.reject(e),
    },
  });
  await done.promise;
  const list = JSON.parse(Buffer.concat(chunks).toString() || "[]") as unknown;
  if (!Array.isArray(list) || !list.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) throw new Error("bad port list from the host");
  return list as number[];
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
  const read = (f: string) => {
    try {
      return readFileSync(`${procNet}/${f}`, "utf8");
    } catch {
      return "";
    }
  };
  return parseListeningPorts(read("tcp"), read("tcp6"));
}

export async function discoverHostPortsAsync(procNet = "/proc/net"): Promise<number[]> {
  const { readFile } = await import("node:fs/promises");
  const read = (f: string) => readFile(`${procNet}/${f}`, "utf8").catch(() => "");
  const [tcp, tcp6] = await Promise.all([read("tcp"), read("tcp6")]);
  return parseListeningPorts(tcp, tcp6);
}

function parseListeningPorts(tcp: string, tcp6: string): number[] {
  const ports = new Set<number>();
  const local4 = new Set(["0100007F", "00000000"]);
  const local6 = new Set(["00000000000000000000000001000000", "00000000000000000000000000000000"]);
  for (const [text, locals] of [[tcp, local4], [tcp6, local6]] as const) {
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "0A") continue; // 0A = LISTEN
      const [addr, port] = f[1]!.split(":");
      if (addr && port && locals.has(addr.toUpperCase())) ports.add(parseInt(port, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}
