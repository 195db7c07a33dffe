/**
 * A small unified diff of two texts, for `silo quarantine show` (what a sandbox planted against what the
 * project holds now). Line LCS by dynamic programming: quarantined files are config files, a few hundred
 * lines; past MAX_CELLS the whole of both sides is shown as one hunk instead.
 */
const MAX_CELLS = 4_000_000;
const CONTEXT = 3;

/** `diff -u`-style lines (no header); [] when the texts are equal. */
export function unifiedDiff(before: string, after: string): string[] {
  if (before === after) return [];
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = a.length * b.length > MAX_CELLS ? wholeOps(a, b) : lcsOps(a, b);
  return hunks(ops);
}

type Op = { kind: " " | "-" | "+"; line: string };

function splitLines(s: string): string[] {
  if (s === "") return [];
  const lines = s.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  else lines[lines.length - 1] += "\n\\ No newline at end of file";
  return lines;
}

function wholeOps(a: string[], b: string[]): Op[] {
  return [...a.map((line) => ({ kind: "-" as const, line })), ...b.map((line) => ({ kind: "+" as const, line }))];
}

function lcsOps(a: string[], b: string[]): Op[] {
  const n = a.length, m = b.length;
  // lcs[i][j]: the LCS length of a[i..] and b[j..], in one flat array.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i * (m + 1) + j] = a[i] === b[j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!);
  const ops: Op[] = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: " ", line: a[i++]! }), j++;
    else if (i < n && (j === m || lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!)) ops.push({ kind: "-", line: a[i++]! });
    else ops.push({ kind: "+", line: b[j++]! });
  }
  return ops;
}

/** Group the ops into hunks with CONTEXT lines around each change. */
function hunks(ops: Op[]): string[] {
  const out: string[] = [];
  let k = 0;
  // Line numbers (1-based) in a and b at ops[k].
  const posA: number[] = [], posB: number[] = [];
  for (let i = 0, la = 1, lb = 1; i < ops.length; i++) {
    posA.push(la), posB.push(lb);
    if (ops[i]!.kind !== "+") la++;
    if (ops[i]!.kind !== "-") lb++;
  }
  while (k < ops.length) {
    while (k < ops.length && ops[k]!.kind === " ") k++;
    if (k === ops.length) break;
    const start = Math.max(0, k - CONTEXT);
    let end = k;
    // Extend while the next change is within 2*CONTEXT unchanged lines.
    for (let last = k; end < ops.length; end++) {
      if (ops[end]!.kind !== " ") last = end;
      else if (end - last > 2 * CONTEXT) break;
    }
    let stop = end;
    while (stop > k && ops[stop - 1]!.kind === " ") stop--;
    stop = Math.min(ops.length, stop + CONTEXT);
    const body = ops.slice(start, stop);
    const countA = body.filter((o) => o.kind !== "+").length;
    const countB = body.filter((o) => o.kind !== "-").length;
    const fromA = countA ? posA[start]! : posA[start]! - 1;
    const fromB = countB ? posB[start]! : posB[start]! - 1;
    out.push(`@@ -${fromA},${countA} +${fromB},${countB} @@`);
    for (const o of body) out.push(`${o.kind}${o.line}`);
    k = stop;
  }
  return out;
}
