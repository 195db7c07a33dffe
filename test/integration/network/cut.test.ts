// A tunnel the egress proxy gives up on must reach the client as an error, never as the clean end of a
// short download (THREATS.md invariant 7: what the proxy lets through arrives whole, or visibly not at all).
// The upstream here sends part of a body and then resets its connection. First, the positive control: read
// as plain bytes, on the proxy's own socket, that cut is a clean end, indistinguishable from a finished
// download. Then, through each relay a sandbox uses, the client gets a connection reset instead, whether the
// cut comes while the tunnel is in JavaScript or after its hand-over to the splice worker; and a response
// that simply ends still ends cleanly, byte-exact.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startEgressProxy, type EgressProxy } from "../../../src/net/proxy.ts";
import { startSandboxRelays, type SandboxRelays } from "../../../src/net/relay.ts";
import { spliceStats } from "../../../src/net/splice.ts";
import { makeHome, makeProject, runSilo, tmp, type SiloResult } from "../../helpers/silo.ts";
import { clientScript, parseEnding, readToEnd, startBodyServer } from "./_cut.ts";

const MiB = 1 << 20;
const HEAD = "HTTP/1.0 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n".length;
const stage = join(import.meta.dir, "../../../dist/.native", `${process.platform}-${process.arch}`, "silo-stage");

describe("a tunnel the proxy cuts", () => {
  const dir = tmp("silo-cut-");
  const small = startBodyServer(256 * 1024, true); // cut while the tunnel is still in JavaScript
  const large = startBodyServer(24 * MiB, true); // cut after the hand-over to the splice worker
  const whole = startBodyServer(24 * MiB, false);
  let proxy: EgressProxy;
  let relays: SandboxRelays;
  let native: ReturnType<typeof Bun.spawn>;
  let nativePort = 0;

  beforeAll(async () => {
    if (!existsSync(stage)) throw new Error(`${stage} is missing: run \`bun run build\` first`);
    proxy = await startEgressProxy({ socketPath: join(dir, "p.sock"), allow: ["127.0.0.1"], deny: [], hostAccess: false, tool: "t" });
    relays = await startSandboxRelays({ mode: "proxy", proxySocket: proxy.socketPath, proxyPort: 0, hostAccess: false, ports: [] });
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    nativePort = probe.port;
    probe.stop(true);
    native = Bun.spawn([stage, "--relays-only", `127.0.0.1:${nativePort}>${proxy.socketPath}`], { stdout: "pipe", stderr: "inherit" });
    await (native.stdout as ReadableStream<Uint8Array>).getReader().read(); // its first line: listening
  });
  afterAll(async () => {
    native?.kill();
    relays?.close();
    await proxy?.close();
    for (const s of [small, large, whole]) s.stop(true);
  });

  const tunnel = (server: { port: number }) => ({ connect: `127.0.0.1:${server.port}` });

  test("positive control: on the proxy socket, read as bytes, the cut is a clean end", async () => {
    for (const server of [small, large]) {
      const e = await readToEnd({ unix: proxy.socketPath }, tunnel(server));
      expect(e.end).toBe("eof");
    }
  });

  // Each cut several times: the mark races the relay's reads, and the upstream's reset the proxy's.
  const ends = async (port: number, server: { port: number }) => {
    const got: string[] = [];
    for (let i = 0; i < 8; i++) got.push((await readToEnd({ port }, tunnel(server))).end);
    return got;
  };
  const resets = Array(8).fill("reset");

  test("through the native relay, the client gets a reset (cut in JavaScript and after the hand-over)", async () => {
    expect(await ends(nativePort, small)).toEqual(resets);
    const offloaded = spliceStats.offloaded;
    expect(await ends(nativePort, large)).toEqual(resets);
    expect(spliceStats.offloaded).toBeGreaterThan(offloaded);
  });

  test("through the relay process (the shell stage's), the client gets a reset too", async () => {
    expect(await ends(relays.proxyPort!, small)).toEqual(resets);
    expect(await ends(relays.proxyPort!, large)).toEqual(resets);
  });

  test("a response that ends stays a clean end, byte-exact, through either relay", async () => {
    for (const port of [nativePort, relays.proxyPort!])
      for (let i = 0; i < 3; i++) expect(await readToEnd({ port }, tunnel(whole))).toMatchObject({ end: "eof", bytes: HEAD + 24 * MiB });
  });

  // Plain HTTP goes through node:http, which sends a body of unannounced length to an HTTP/1.1 client in
  // chunks: a cut shows as a body without its last (empty) chunk, which HTTP clients report (curl: exit 18).
  test("plain HTTP: a response that ends is whole; a cut one ends without its last chunk", async () => {
    for (const port of [nativePort, relays.proxyPort!]) {
      const ok = await readToEnd({ port }, { get: `http://127.0.0.1:${whole.port}/` });
      expect(ok.end).toBe("eof");
      expect(ok.tail).toEndWith("\r\n0\r\n\r\n");
      expect(ok.bytes).toBeGreaterThan(24 * MiB);
      const cut = await readToEnd({ port }, { get: `http://127.0.0.1:${small.port}/` });
      expect(cut.tail).not.toEndWith("0\r\n\r\n");
    }
  });
});

// The same through silo run, with the fixture python image: a client in the sandbox, the egress proxy in silo,
// the upstream on the host. Both set-up stages: the native one (its relay is C) and the /bin/sh one (its
// relay is a second silo process).
for (const stage of ["native", "sh"] as const)
  describe(`a tunnel the proxy cuts, through silo run (${stage} stage)`, () => {
    let home: string;
    let dir: string;
    const cutServer = startBodyServer(8 * MiB, true);
    const wholeServer = startBodyServer(8 * MiB, false);
    const env: Record<string, string> = stage === "sh" ? { SILO_STAGE: "sh" } : {};
    const ok = (r: SiloResult) => {
      if (r.exitCode !== 0) expect(`exit ${r.exitCode}\n${r.stderr}`).toBe("exit 0");
      return r;
    };

    beforeAll(async () => {
      home = makeHome();
      ok(await runSilo(["install", "python"], { home }));
      dir = makeProject(`[overrides.python.network.proxy]\nallow = ["127.0.0.1"]\n`);
      ok(await runSilo(["trust"], { home, cwd: dir }));
    });
    afterAll(() => {
      cutServer.stop(true);
      wholeServer.stop(true);
    });

    const inside = async (server: { port: number }) => {
      const code = clientScript(3128, { connect: `127.0.0.1:${server.port}` });
      return parseEnding(ok(await runSilo(["run", "python", "-c", code], { home, cwd: dir, env })).stdout);
    };

    test("the client in the sandbox gets a connection reset, not a short clean end", async () => {
      for (let i = 0; i < 3; i++) expect((await inside(cutServer)).end).toBe("reset");
    });

    test("a response that ends arrives whole, with a clean end", async () => {
      expect(await inside(wholeServer)).toEqual({ end: "eof", bytes: HEAD + 8 * MiB });
    });
  });
