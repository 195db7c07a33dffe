// The network policy end to end through dist/silo with the bwrap driver and the fixture python image: what a
// trusted project's silo.toml opens, and that nothing else is reachable from inside — not by raw TCP, UDP
// or DNS, with or without an allowlist. Every target is on this machine's loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { makeHome, makeProject, runSilo, siloBin, tmp, type SiloResult } from "../../helpers/silo.ts";
import { helloServer, makeCert } from "./_helpers.ts";


function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

/** Expect success, showing silo's stderr when it is not. */
function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
  return r;
}

/** A UDP listener on host loopback that records what arrives (a stand-in for any UDP/DNS server). */
async function udpRecorder() {
  const got: string[] = [];
  let wait = Promise.withResolvers<void>();
  const sock = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data(_s, d) {
        got.push(d.toString("latin1"));
        if (d.toString() === "marker") wait.resolve();
      },
    },
  });
  const send = async (text: string) => {
    const c = await Bun.udpSocket({});
    c.send(text, sock.port, "127.0.0.1");
    c.close();
  };
  return {
    port: sock.port,
    got,
    send,
    /** Everything sent before this has arrived once the marker is here (loopback keeps order). */
    async settle() {
      wait = Promise.withResolvers<void>();
      await send("marker");
      await wait.promise;
    },
    close: () => sock.close(),
  };
}

// Both set-up stages of the bwrap driver: the native one (the default; its relays are a C process) and the
// /bin/sh one (SILO_STAGE=sh; its relays are a second silo process).
for (const stage of ["native", "sh"] as const)
describe(`network policy through silo run (${stage} stage)`, () => {
  let home: string;
  const web = helloServer("web");
  const certDir = tmp("silo-e2e-cert-");
  const cert = makeCert(certDir, ["localhost"]);
  const secure = helloServer("secure", cert);

  const stageEnv: Record<string, string> = stage === "sh" ? { SILO_STAGE: "sh" } : {};
  const silo = (cwd: string, args: string[], env?: Record<string, string>) => runSilo(args, { home, cwd, env: { ...stageEnv, ...env } });
  /** A project with this silo.toml (and the test certificate), trusted unless told otherwise. */
  async function project(toml: string, trusted = true): Promise<string> {
    const dir = makeProject(toml, { "cert.pem": await Bun.file(cert.cert).text() });
    if (trusted) ok(await silo(dir, ["trust"]));
    return dir;
  }
  const py = (dir: string, code: string, env?: Record<string, string>) => silo(dir, ["run", "python", "-c", code], env);

  beforeAll(async () => {
    home = makeHome();
    ok(await runSilo(["install", "python"], { home }));
  });
  afterAll(() => {
    web.stop(true);
    secure.stop(true);
  });

  test("with an allowlist, the allowed host answers through the proxy while raw TCP, UDP and DNS all fail", async () => {
    const udp = await udpRecorder();
    // On the host, both servers are reachable.
    expect(await (await fetch(`http://127.0.0.1:${web.port}/host`)).text()).toBe("web /host");
    await udp.send("from-host");
    await udp.settle();
    expect(udp.got).toEqual(["from-host", "marker"]);
    udp.got.length = 0;

    const dir = await project(`[overrides.python.network.proxy]\nallow = ["localhost"]\n`);
    const code = `
import socket, os, json, http.client
out = {"env": os.environ.get("HTTPS_PROXY")}
try:
    socket.create_connection(("127.0.0.1", ${web.port}), timeout=3); out["tcp"] = "connected"
except Exception as e:
    out["tcp"] = type(e).__name__
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"from-sandbox", ("127.0.0.1", ${udp.port}))
q = b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01"
u.sendto(q, ("127.0.0.1", ${udp.port}))
try:
    socket.getaddrinfo("localhost.example.com", 80); out["dns"] = "resolved"
except Exception as e:
    out["dns"] = type(e).__name__
c = http.client.HTTPConnection("127.0.0.1", int(out["env"].rsplit(":", 1)[1]), timeout=10)
c.request("GET", "http://localhost:${web.port}/allowed")
r = c.getresponse()
out["proxy"] = [r.status, r.read().decode()]
print(json.dumps(out))
`;
    const r = ok(await py(dir, code));
    expect(JSON.parse(r.stdout)).toEqual({ env: "http://127.0.0.1:3128", tcp: "ConnectionRefusedError", dns: "gaierror", proxy: [200, "web /allowed"] });
    await udp.settle();
    expect(udp.got).toEqual(["marker"]); // neither the datagram nor the DNS query came out
    udp.close();
  });

  test("a host not on the list gets the 403 with the fix, and silo prints one line for it", async () => {
    const dir = await project(`[overrides.python.network.proxy]\nallow = ["localhost"]\n`);
    const code = `
import http.client, os
for path in ("/a", "/b"):
    c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=10)
    c.request("GET", "http://denied.example.test" + path)
    r = c.getresponse()
    print(r.status, r.getheader("X-Silo-Denied"), r.read().decode().splitlines()[-1])
`;
    const r = ok(await py(dir, code));
    expect(r.stdout.trim().split("\n")).toEqual([
      "403 denied.example.test To allow it: silo config network allow python denied.example.test",
      "403 denied.example.test To allow it: silo config network allow python denied.example.test",
    ]);
    expect(r.stderr.split("\n").filter((l) => l.includes("denied.example.test"))).toHaveLength(1);
  });

  test("HTTPS through CONNECT reaches the allowed host; another TLS server name in the tunnel is refused", async () => {
    const dir = await project(`[overrides.python.network.proxy]\nallow = ["localhost"]\n`);
    const code = `
import http.client, ssl, socket
ctx = ssl.create_default_context(cafile="/workspace/cert.pem")
c = http.client.HTTPSConnection("127.0.0.1", 3128, context=ctx, timeout=10)
c.set_tunnel("localhost", ${secure.port})
c.request("GET", "/tls")
r = c.getresponse()
print(r.status, r.read().decode())
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(b"CONNECT localhost:${secure.port} HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n")
print(s.recv(1024).split(b"\\r\\n")[0].decode())
ctx2 = ssl.create_default_context(cafile="/workspace/cert.pem")
ctx2.check_hostname = False
try:
    ctx2.wrap_socket(s, server_hostname="fronted.example.test"); print("fronted: connected")
except Exception as e:
    print("fronted:", type(e).__name__)
`;
    const r = ok(await py(dir, code));
    expect(r.stdout.trim().split("\n")).toEqual(["200 secure /tls", "HTTP/1.1 200 Connection Established", "fronted: SSLError"]);
  });

  test("hostAccess: host.silo.internal reaches a service on the host's loopback; 127.0.0.1 stays the sandbox's own", async () => {
    const dir = await project(`[overrides.python.network]\nhostAccess = true\n`);
    const code = `
import socket
s = socket.create_connection(("host.silo.internal", ${web.port}), timeout=10)
s.sendall(b"GET /ha HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
data = b""
while True:
    d = s.recv(65536)
    if not d: break
    data += d
print(data.decode().split("\\r\\n\\r\\n", 1)[1])
try:
    socket.create_connection(("127.0.0.1", ${web.port}), timeout=3); print("loopback: connected")
except Exception as e:
    print("loopback:", type(e).__name__)
`;
    const r = ok(await py(dir, code));
    expect(r.stdout.trim().split("\n")).toEqual(["web /ha", "loopback: ConnectionRefusedError"]);
  });

  test("a forwarded port serves a request from the host while the command runs", async () => {
    const hostPort = freePort();
    await expect(fetch(`http://127.0.0.1:${hostPort}/`)).rejects.toThrow(); // nothing there before
    const dir = await project(`[[overrides.python.ports]]\nhost = ${hostPort}\nguest = 8000\n`);
    const code = `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ("guest " + self.path).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 8000), H)
print("listening", flush=True)
srv.handle_request()
print("served", flush=True)
`;
    const proc = Bun.spawn([siloBin, "run", "python", "-c", code], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home, ...stageEnv },
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = proc.stdout.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toStartWith("listening");
    const res = await fetch(`http://127.0.0.1:${hostPort}/fwd`);
    expect(await res.text()).toBe("guest /fwd");
    expect(await proc.exited).toBe(0);
  });

  test("a forward whose host port is taken fails before the command starts (exit 125, clear message)", async () => {
    const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const dir = await project(`[[overrides.python.ports]]\nhost = ${taken.port}\nguest = 8000\n`);
      const r = await py(dir, "print('the command ran')");
      expect(r.exitCode).toBe(125);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(`host port ${taken.port}: already in use on the host`);
    } finally {
      taken.stop(true);
    }
  });

  test("ssh-agent forwarding lists the test agent's keys; no key file enters", async () => {
    const dir0 = tmp("silo-e2e-ssh-");
    const sock = join(dir0, "agent.sock");
    const key = join(dir0, "id_test");
    const agent = spawnSync("ssh-agent", ["-a", sock], { encoding: "utf8" });
    expect(agent.status).toBe(0);
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
    try {
      expect(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "silo-test-key", "-f", key]).status).toBe(0);
      expect(spawnSync("ssh-add", ["-q", key], { env: { ...process.env, SSH_AUTH_SOCK: sock } }).status).toBe(0);
      // On the host the agent holds the key.
      expect(spawnSync("ssh-add", ["-l"], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: "utf8" }).stdout).toContain("silo-test-key");
      const dir = await project(`passSshAgent = true\n`);
      // The agent protocol by hand (REQUEST_IDENTITIES), so the image needs no ssh-add.
      const code = `
import socket, struct, os
path = os.environ["SSH_AUTH_SOCK"]
s = socket.socket(socket.AF_UNIX); s.connect(path)
s.sendall(struct.pack(">IB", 1, 11))
n = struct.unpack(">I", s.recv(4))[0]
body = b""
while len(body) < n: body += s.recv(n - len(body))
count = struct.unpack(">I", body[1:5])[0]; off = 5; comments = []
for _ in range(count):
    kl = struct.unpack(">I", body[off:off + 4])[0]; off += 4 + kl
    cl = struct.unpack(">I", body[off:off + 4])[0]; comments.append(body[off + 4:off + 4 + cl].decode()); off += 4 + cl
print(path, body[0], count, ",".join(comments), os.path.exists(${JSON.stringify(key)}), os.path.exists("/root/.ssh"))
`;
      const r = ok(await py(dir, code, { SSH_AUTH_SOCK: sock }));
      expect(r.stdout.trim()).toBe("/run/silo/ssh-agent.sock 12 1 silo-test-key False False");
    } finally {
      if (pid > 0) process.kill(pid);
    }
  });

  test("an untrusted project's network widening is ignored", async () => {
    const hostPort = freePort();
    const toml =
      `passSshAgent = true\n[overrides.python.network]\nhostAccess = true\n[overrides.python.network.proxy]\nallow = ["*", "localhost"]\n` +
      `[[overrides.python.ports]]\nhost = ${hostPort}\nguest = 8000\n`;
    const code = `
import os, socket, sys, http.client
def get(url):
    c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=10)
    c.request("GET", url)
    return c.getresponse().status
print(os.environ.get("SSH_AUTH_SOCK"), get("http://localhost:${web.port}/"), get("http://host.silo.internal:${web.port}/"))
try:
    socket.create_connection(("host.silo.internal", ${web.port}), timeout=3); print("host.silo.internal: connected")
except Exception as e:
    print("host.silo.internal:", type(e).__name__)
print("ready", flush=True)
sys.stdin.readline()
`;
    // A socket of this user's for SSH_AUTH_SOCK (silo refuses anything else): passSshAgent's bind is seen inside.
    const agent = join(tmp(), "agent.sock");
    const agentServer = Bun.listen({ unix: agent, socket: { data() {} } });
    const runIn = async (dir: string) => {
      const proc = Bun.spawn([siloBin, "run", "python", "-c", code], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", SILO_HOME: home, SSH_AUTH_SOCK: agent, ...stageEnv },
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
      });
      let out = "";
      const reader = proc.stdout.getReader();
      while (!out.includes("ready\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      // While the command runs: is the forwarded port bound on the host?
      const forwarded = await Bun.connect({ hostname: "127.0.0.1", port: hostPort, socket: { data() {} } }).then(
        (c) => (c.end(), "bound"),
        () => "free",
      );
      proc.stdin.write("\n");
      proc.stdin.end();
      const stderr = await new Response(proc.stderr).text();
      expect(await proc.exited).toBe(0);
      return { lines: out.trim().split("\n").slice(0, 2), forwarded, stderr };
    };
    // Trusted, the same file opens all of it (the proof that the test can see each widening)...
    const trusted = await runIn(await project(toml));
    expect(trusted.lines).toEqual(["/run/silo/ssh-agent.sock 200 200", "host.silo.internal: connected"]);
    expect(trusted.forwarded).toBe("bound");
    // ...untrusted, none of it: only the registry's own allowlist (pypi) is left.
    const untrusted = await runIn(await project(toml, false));
    expect(untrusted.lines).toEqual(["None 403 403", "host.silo.internal: gaierror"]);
    expect(untrusted.forwarded).toBe("free");
    expect(untrusted.stderr).toContain("not trusted");
    agentServer.stop(true);
  });
});
