/**
 * The hot-path logger: plain writes to stderr (stdout belongs to the tool and carries LSP JSON-RPC).
 * consola costs ~16 ms of start-up, so it is imported only by commands that prompt or draw boxes.
 * `--debug` and `SILO_DEBUG=1` set the one debug switch.
 */
const color = process.stderr.isTTY && !process.env.NO_COLOR;
const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);

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

const write = (s: string) => process.stderr.write(s + "\n");

export const log = {
  error: (msg: string) => write(`${paint("31", "error")} ${msg}`),
  warn: (msg: string) => write(`${paint("33", "warn")} ${msg}`),
  info: (msg: string) => !quiet && write(`${paint("36", "info")} ${msg}`),
  hint: (msg: string) => write(`${paint("2", "hint")} ${msg}`),
  success: (msg: string) => !quiet && write(`${paint("32", "✔")} ${msg}`),
  debug: (msg: string) => debugOn && write(paint("2", `[debug] ${msg}`)),
  /** Output meant for stdout (command results, not diagnostics). */
  out: (msg: string) => process.stdout.write(msg + "\n"),
};
