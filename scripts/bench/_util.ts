/** Small helpers shared by the benchmarks: medians of interleaved runs, pretty ratios. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Time each command `runs` times, interleaved (A B C A B C ...) so drift in machine load hits all alike. */
export function timeInterleaved(cases: Record<string, () => void>, runs: number, warmup = 3): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < warmup; i++) for (const f of Object.values(cases)) f();
  for (let i = 0; i < runs; i++)
    for (const [k, f] of Object.entries(cases)) {
      const t = performance.now();
      f();
      out[k]!.push(performance.now() - t);
    }
  return out;
}

export function spawnOk(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = Bun.spawnSync(argv, { cwd: opts.cwd, env: opts.env ?? (process.env as Record<string, string>), stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
}

export const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
