/**
 * LSP base-protocol framing: `Content-Length: N\r\n[other headers\r\n]\r\n` followed by N BYTES of body
 * (UTF-8 JSON). Pure: no I/O. The reader accepts arbitrary chunking (a header split across chunks,
 * several messages in one chunk, a body spread over hundreds of chunks) and never concatenates a large
 * body more than once.
 */

const CR = 13;
const LF = 10;
/** A header block longer than this is not LSP: fail instead of buffering an unbounded stream. */
const MAX_HEADER_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class FramingError extends Error {
  override name = "FramingError";
}

/**
 * Streaming frame reader. `push(chunk)` returns the complete message bodies the chunk finished.
 * Returned bodies may be views into the pushed chunk (zero copy), so a caller that keeps a body beyond
 * the next `push` must not let the chunk's buffer be reused (Bun's stream chunks never are).
 */
export class FrameReader {
  /** Bytes of an unfinished header block. */
  private head: Uint8Array = EMPTY;
  /** Body being filled, once its header is parsed; `filled` bytes of it are valid. */
  private body: Uint8Array | null = null;
  private filled = 0;

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.body) {
        const take = Math.min(this.body.length - this.filled, chunk.length - pos);
        this.body.set(chunk.subarray(pos, pos + take), this.filled);
        this.filled += take;
        pos += take;
        if (this.filled === this.body.length) {
          out.push(this.body);
          this.body = null;
        }
        continue;
      }
      // Header state. Fast path: nothing pending, so search the chunk in place.
      const pending = this.head.length > 0;
      const src = pending ? concat(this.head, chunk.subarray(pos)) : chunk.subarray(pos);
      // A terminator split across chunks starts at most 3 bytes before the new data.
      const end = findHeaderEnd(src, pending ? Math.max(0, this.head.length - 3) : 0);
      if (end < 0) {
        if (src.length > MAX_HEADER_BYTES) throw new FramingError(`LSP header exceeds ${MAX_HEADER_BYTES} bytes`);
        this.head = pending ? src : src.slice();
        return out;
      }
      const length = parseContentLength(src.subarray(0, end));
      const bodyStart = end + 4;
      const consumedFromChunk = bodyStart - this.head.length;
      this.head = EMPTY;
      pos += consumedFromChunk;
      if (chunk.length - pos >= length) {
        out.push(chunk.subarray(pos, pos + length));
        pos += length;
      } else {
        this.body = new Uint8Array(length);
        this.filled = 0;
      }
    }
    return out;
  }

  /** True when no partial header or body is buffered (a clean end of stream). */
  get idle(): boolean {
    return this.body === null && this.head.length === 0;
  }
}

/** The header block for a body of `length` bytes. */
export function encodeHeader(length: number): Uint8Array {
  return encoder.encode(`Content-Length: ${length}\r\n\r\n`);
}

/** Frame one message body. `body` is a JSON string or its UTF-8 bytes; the length written is in bytes. */
export function encodeFrame(body: string | Uint8Array): Uint8Array {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const header = encoder.encode(`Content-Length: ${bytes.length}\r\n\r\n`);
  const out = new Uint8Array(header.length + bytes.length);
  out.set(header, 0);
  out.set(bytes, header.length);
  return out;
}

/** Index of the `\r\n\r\n` that ends the header block, or -1. */
function findHeaderEnd(buf: Uint8Array, from: number): number {
  for (let i = buf.indexOf(CR, from); i >= 0 && i + 3 < buf.length; i = buf.indexOf(CR, i + 1)) {
    if (buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) return i;
  }
  return -1;
}

function parseContentLength(header: Uint8Array): number {
  let length = -1;
  for (const line of decoder.decode(header).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== "content-length") continue;
    const value = line.slice(colon + 1).trim();
    if (!/^\d+$/.test(value)) throw new FramingError(`bad Content-Length: ${JSON.stringify(value)}`);
    length = Number(value);
  }
  if (length < 0) throw new FramingError(`LSP header without Content-Length: ${JSON.stringify(decoder.decode(header))}`);
  return length;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
