/**
 * Where a run's milliseconds go: `SILO_TRACE=1` prints each mark with the time since the process started
 * (Bun's performance.now() origin) when silo exits. Off, a mark is one boolean test.
 */
import { writeFd } from "./log.ts";

const on = process.env.SILO_TRACE === "1";
const marks: [string, number][] = [];

export function mark(label: string): void {
  if (!on) return;
  if (marks.length === 0) process.on("exit", flushTrace);
  marks.push([label, performance.now()]);
}

/** Print the marks now (before silo hands its process over to another program, which has no "exit" for it). */
export function flushTrace(): void {
  if (!on || marks.length === 0) return;
  writeFd(2, `trace: ${marks.map(([l, t]) => `${l} ${t.toFixed(1)}`).join(", ")}\n`);
  marks.length = 0;
}
