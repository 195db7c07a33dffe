/**
 * Pull progress on stderr. A TTY gets one live line per layer (bytes, total, rate, state), redrawn at most
 * ten times a second; a pipe gets a start line and the summary; quiet gets nothing.
 */
import { isQuiet, log } from "../core/log.ts";

export type LayerState = "waiting" | "cached" | "downloading" | "downloaded" | "unpacking" | "done";

interface Row {
  id: string;
  total: number;
  bytes: number;
  state: LayerState;
  started: number;
  finished: number;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export const formatSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export class PullProgress {
  private rows: Row[];
  private drawn = 0;
  private last = 0;
  private lastOut = "";
  /** Bytes written so far by the layer being unpacked. */
  private unpacked?: { i: number; bytes: () => number };
  private timer?: ReturnType<typeof setInterval>;
  private readonly live: boolean;
  private readonly silent: boolean;

  constructor(
    private readonly name: string,
    layers: { digest: string; size: number }[],
    opts: { quiet?: boolean; tty?: boolean } = {},
  ) {
    this.silent = !!opts.quiet || isQuiet();
    this.live = !this.silent && (opts.tty ?? !!process.stderr.isTTY);
    this.rows = layers.map((l) => ({ id: l.digest.slice(7, 19), total: l.size, bytes: 0, state: "waiting", started: 0, finished: 0 }));
  }

  start(missing: number, bytes: number) {
    if (this.silent) return;
    if (!this.live) {
      log.info(`pulling ${this.name}: ${missing} of ${this.rows.length} layer${this.rows.length === 1 ? "" : "s"} to download (${formatBytes(bytes)})`);
      return;
    }
    process.stderr.write(`pulling ${this.name}\n`);
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref?.();
    this.draw(true);
  }

  set(i: number, state: LayerState) {
    const r = this.rows[i]!;
    if (state === "downloading" && !r.started) r.started = performance.now();
    if (state === "downloaded" || state === "cached") r.finished = performance.now();
    if (state === "cached") r.bytes = r.total;
    r.state = state;
    this.draw();
  }

  add(i: number, n: number) {
    this.rows[i]!.bytes += n;
  }

  reset(i: number) {
    this.rows[i]!.bytes = 0;
  }

  /** Layer i is being unpacked; `bytes` reports what it has written so far. */
  unpacking(i: number, bytes: () => number) {
    this.unpacked = { i, bytes };
    this.set(i, "unpacking");
  }

  /** Stop drawing; print the summary line. */
  finish(summary?: string) {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.live) this.draw(true);
    if (summary && !this.silent) log.success(summary);
  }

  private draw(force = false) {
    if (!this.live) return;
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    let body = "";
    this.rows.forEach((r, i) => (body += `\x1b[2K  ${r.id}  ${this.describe(r, now, i)}\n`));
    if (body === this.lastOut) return;
    this.lastOut = body;
    process.stderr.write((this.drawn ? `\x1b[${this.drawn}A` : "") + body);
    this.drawn = this.rows.length;
  }

  private describe(r: Row, now: number, i: number): string {
    switch (r.state) {
      case "waiting":
        return `waiting      ${formatBytes(r.total)}`;
      case "cached":
        return `already here ${formatBytes(r.total)}`;
      case "downloading": {
        const secs = Math.max(0.001, (now - r.started) / 1000);
        const pct = r.total ? Math.floor((100 * r.bytes) / r.total) : 0;
        return `downloading  ${formatBytes(r.bytes)} / ${formatBytes(r.total)} (${pct}%)  ${formatBytes(r.bytes / secs)}/s`;
      }
      case "downloaded":
        return `downloaded   ${formatBytes(r.total)} in ${formatSeconds(r.finished - r.started)}`;
      case "unpacking":
        return `unpacking    ${this.unpacked?.i === i ? `${formatBytes(this.unpacked.bytes())} written` : formatBytes(r.total)}`;
      case "done":
        return `done         ${formatBytes(r.total)}`;
    }
  }
}
