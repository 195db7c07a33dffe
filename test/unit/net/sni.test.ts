import { describe, expect, test } from "bun:test";
import { parseClientHello } from "../../../src/net/sni.ts";
import { buildClientHello } from "./_hello.ts";

describe("parseClientHello", () => {
  test("reads the server name", () => {
    expect(parseClientHello(buildClientHello({ serverName: "api.example.com" }))).toEqual({ state: "hello", serverName: "api.example.com" });
  });

  test("finds server_name after other extensions", () => {
    const hello = buildClientHello({ serverName: "x.test", before: [[10, [0, 2, 0, 29]], [16, [0, 3, 2, 104, 50]]] });
    expect(parseClientHello(hello)).toEqual({ state: "hello", serverName: "x.test" });
  });

  test("no SNI extension → serverName null", () => {
    expect(parseClientHello(buildClientHello())).toEqual({ state: "hello", serverName: null });
    expect(parseClientHello(buildClientHello({ noExtensions: true }))).toEqual({ state: "hello", serverName: null });
  });

  test("incomplete until the whole hello is there, byte by byte", () => {
    const hello = buildClientHello({ serverName: "slow.test" });
    for (let i = 0; i < hello.length; i++) expect(parseClientHello(hello.subarray(0, i)).state).toBe("incomplete");
    expect(parseClientHello(hello)).toEqual({ state: "hello", serverName: "slow.test" });
  });

  test("a hello split across several TLS records is reassembled", () => {
    const hello = buildClientHello({ serverName: "split.test", recordSize: 7 });
    expect(parseClientHello(hello)).toEqual({ state: "hello", serverName: "split.test" });
    expect(parseClientHello(hello.subarray(0, hello.length - 1)).state).toBe("incomplete");
  });

  test("plain HTTP or SSH in a tunnel is not TLS", () => {
    expect(parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")).state).toBe("not-tls");
    expect(parseClientHello(new TextEncoder().encode("SSH-2.0-OpenSSH_9.2\r\n")).state).toBe("not-tls");
  });

  test("a handshake that is not a ClientHello is refused", () => {
    const hello = buildClientHello({ serverName: "a.test" });
    hello[5] = 2; // ServerHello
    expect(parseClientHello(hello).state).toBe("not-tls");
  });

  test("malformed lengths are refused, not read past", () => {
    const hello = buildClientHello({ serverName: "a.test" });
    // Corrupt the extensions length to run past the message.
    const bad = Uint8Array.from(hello);
    const extLenAt = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 4 + 2;
    bad[extLenAt] = 0xff;
    expect(parseClientHello(bad).state).toBe("not-tls");
  });

  test("a non-ASCII server name is refused", () => {
    expect(parseClientHello(buildClientHello({ serverName: "ex\u00e4mple.test" })).state).toBe("not-tls");
  });
});
