import { describe, expect, test } from "bun:test";
import { encodeFrame, FrameReader, FramingError } from "../../../src/lsp/framing.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (frames: Uint8Array[]) => frames.map((f) => dec.decode(f));

/** Feed `data` to a fresh reader in chunks of the given sizes (the last size repeats). */
function feed(data: Uint8Array, sizes: number[]): string[] {
  const reader = new FrameReader();
  const out: string[] = [];
  let pos = 0;
  for (let k = 0; pos < data.length; k++) {
    const n = sizes[Math.min(k, sizes.length - 1)]!;
    out.push(...text(reader.push(data.slice(pos, pos + n))));
    pos += n;
  }
  expect(reader.idle).toBe(true);
  return out;
}

const msg = (id: number, extra = "") => JSON.stringify({ jsonrpc: "2.0", id, method: "x", params: { extra } });

describe("FrameReader", () => {
  test("one message in one chunk", () => {
    expect(feed(encodeFrame(msg(1)), [1 << 20])).toEqual([msg(1)]);
  });

  test("a header split at every possible byte", () => {
    const frame = encodeFrame(msg(7));
    for (let cut = 1; cut < 30; cut++) {
      const reader = new FrameReader();
      const first = reader.push(frame.slice(0, cut));
      const second = reader.push(frame.slice(cut));
      expect(text([...first, ...second])).toEqual([msg(7)]);
    }
  });

  test("byte-by-byte delivery", () => {
    const data = new Uint8Array([...encodeFrame(msg(1)), ...encodeFrame(msg(2, "ü€😀"))]);
    expect(feed(data, [1])).toEqual([msg(1), msg(2, "ü€😀")]);
  });

  test("several messages in one chunk, and a chunk ending mid-header of the next", () => {
    const all = new Uint8Array([...encodeFrame(msg(1)), ...encodeFrame(msg(2)), ...encodeFrame(msg(3))]);
    expect(feed(all, [all.length])).toEqual([msg(1), msg(2), msg(3)]);
    const firstTwoPlusHalfHeader = encodeFrame(msg(1)).length + encodeFrame(msg(2)).length + 10;
    expect(feed(all, [firstTwoPlusHalfHeader, 1 << 20])).toEqual([msg(1), msg(2), msg(3)]);
  });

  test("a large body over many chunks", () => {
    const big = msg(9, "x".repeat(5_000_000));
    expect(feed(encodeFrame(big), [100, 65536])).toEqual([big]);
  });

  test("Content-Length counts bytes of multi-byte UTF-8, not characters", () => {
    const body = msg(4, "héllo wörld 日本語 🎉".repeat(1000));
    const frame = encodeFrame(body);
    const header = dec.decode(frame.slice(0, 40)).split("\r\n")[0]!;
    expect(header).toBe(`Content-Length: ${bytes(body).length}`);
    expect(bytes(body).length).toBeGreaterThan(body.length);
    // Chunk boundaries fall inside multi-byte sequences.
    expect(feed(frame, [7, 3, 1001])).toEqual([body]);
  });

  test("extra headers (Content-Type) and header-name case are accepted", () => {
    const body = msg(5);
    const raw = bytes(`content-type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH: ${bytes(body).length}\r\n\r\n${body}`);
    expect(feed(raw, [5])).toEqual([body]);
  });

  test("an empty body is a frame", () => {
    expect(feed(bytes("Content-Length: 0\r\n\r\n"), [100])).toEqual([""]);
  });

  test("idle is false while a body is incomplete", () => {
    const reader = new FrameReader();
    expect(reader.push(encodeFrame(msg(1)).slice(0, 25))).toEqual([]);
    expect(reader.idle).toBe(false);
  });

  test("a header without Content-Length or with garbage fails loudly", () => {
    expect(() => new FrameReader().push(bytes("Content-Type: x\r\n\r\n{}"))).toThrow(FramingError);
    expect(() => new FrameReader().push(bytes("Content-Length: 1x\r\n\r\n{}"))).toThrow(FramingError);
    expect(() => new FrameReader().push(new Uint8Array(70_000).fill(65))).toThrow(FramingError);
  });

  test("returned bodies stay valid after later pushes", () => {
    const reader = new FrameReader();
    const a = reader.push(encodeFrame(msg(1)));
    reader.push(encodeFrame(msg(2)));
    expect(text(a)).toEqual([msg(1)]);
  });
});

describe("encodeFrame", () => {
  test("string and bytes give the same frame", () => {
    const s = msg(3, "ö");
    expect(encodeFrame(s)).toEqual(encodeFrame(bytes(s)));
    expect(dec.decode(encodeFrame(s))).toBe(`Content-Length: ${bytes(s).length}\r\n\r\n${s}`);
  });
});
