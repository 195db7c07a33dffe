// bun run bench [name...]: runs scripts/bench/<name>.ts (all of them by default), each comparing silo
// against its baseline in the same run. Figures are medians; the machines are shared and noisy.
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = import.meta.dir;
const all = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "index.ts" && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${all.join(", ")}`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : all) {
  console.log(`\n=== bench: ${name} ===`);
  const mod = (await import(join(dir, `${name}.ts`))) as { default: () => Promise<void> };
  await mod.default();
}
