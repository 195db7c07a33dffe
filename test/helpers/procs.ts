import { readdirSync, readFileSync } from "node:fs";

/** Processes (not zombies) whose command line contains `mark`. */
export function liveProcessesWith(mark: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
      if (cmd.includes(mark) && state !== "Z" && Number(pid) !== process.pid) out.push(`${pid} ${cmd.replaceAll("\0", " ")}`);
    } catch {
      // gone
    }
  }
  return out;
}
