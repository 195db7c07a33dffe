/**
 * The hot-path logger: plain writes to stderr (stdout belongs to the tool and carries LSP JSON-RPC).
 * consola costs ~16 ms of start-up, so it is imported only by commands that prompt or draw boxes.
 * `--debug` and `SILO_DEBUG=1` set the one debug switch.
 *
 * It writes to fd 2 with writeSync and asks isatty(2): merely touching `process.stderr` builds Node's
 * stream machinery, measured at +7.5 MB of RSS in the compiled binary, on every shim call.
 */
import { writeSync } from "node:fs";
import { isatty } from "./tty.ts";

// Asked on the first coloured line only: most runs print nothing of silo's.
let color: boolean | undefined;
const paint = (code: string, s: string) => ((color ??= isatty(2) && !process.env.NO_COLOR) ? `\x1b[${code}m${s}\x1b[0m` : s);

let debugOn = process.env.SILO_DEBUG === "1" || process.env.SILO_DEBUG === "true";
let quiet = false;

export function setDebug(on: boolean) {
  debugOn = on;
}
export function setQuiet(on: boolean) {
  quiet = on;
}
export const isDebug = () => debugOn;
export const isQuiet = () => quiet;

let sink: ((s: string) => void) | null = null;
/** Tests capture diagnostics here (null restores fd 2). */
export function setLogSink(fn: ((s: string) => void) | null) {
  sink = fn;
}
const write = (s: string) => (sink ? sink(s + "\n") : writeFd(2, s + "\n"));

/** Write all of `s` to a file descriptor (synchronously: a log line must not be lost at exit). */
export function writeFd(fd: number, s: string) {
  const buf = Buffer.from(s);
  for (let off = 0; off < buf.length; ) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return;
    }
  }
}

export const log = {
  error: (msg: string) => write(`${paint("31", "error")} ${msg}`),
  warn: (msg: string) => write(`${paint("33", "warn")} ${msg}`),
  info: (msg: string) => !quiet && write(`${paint("36", "info")} ${msg}`),
  hint: (msg: string) => write(`${paint("2", "hint")} ${msg}`),
  success: (msg: string) => !quiet && write(`${paint("32", "✔")} ${msg}`),
  debug: (msg: string) => debugOn && write(paint("2", `[debug] ${msg}`)),
  /** Output meant for stdout (command results, not diagnostics). */
  out: (msg: string) => writeFd(1, msg + "\n"),
};
