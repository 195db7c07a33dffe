import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { dryRunArg, globalArgs, jsonArg } from "./_args.ts";

type Plan = import("../cache/gc.ts").Action[];
type Outcome = import("../app/cache.ts").Outcome;

const out = (s: string) => process.stdout.write(s + "\n");
const home = async () => (await import("../core/paths.ts")).homePaths();

/**
 * The one way plans are shown and run: `--dry-run` prints the plan; otherwise the same plan is executed.
 * With --json: { dryRun, actions (the plan), done, skipped, bytes } so a test can compare both runs.
 */
async function showOrRun(plan: Plan, args: { "dry-run"?: boolean; json?: boolean; quiet?: boolean }, what: string, since: number) {
  const { describeAction, planBytes } = await import("../cache/gc.ts");
  const { formatSize } = await import("../cache/usage.ts");
  const dry = !!args["dry-run"];
  let outcome: Outcome | null = null;
  if (!dry && plan.length) outcome = await (await import("../app/cache.ts")).executePlan(plan, await home(), since);
  const done = dry ? [] : (outcome?.done ?? []);
  if (args.json) {
    out(JSON.stringify({ dryRun: dry, actions: plan, done, skipped: outcome?.skipped ?? [], bytes: planBytes(dry ? plan : done) }, null, 2));
    return;
  }
  if (plan.length === 0) return out(`${what}: nothing to do`);
  for (const a of plan) out(`${dry ? "would " : ""}${describeAction(a)}`);
  for (const s of outcome?.skipped ?? []) out(`skipped ${describeAction(s.action)}: ${s.why}`);
  const packing = plan.every((a) => a.kind === "compress");
  const bytes = formatSize(planBytes(dry ? plan : done));
  const n = dry ? plan.length : done.length;
  if (packing) out(`${what}: ${dry ? "would compress" : "compressed"} ${n} ${n === 1 ? "entry" : "entries"} (${bytes} unpacked)${dry ? " (dry run: nothing changed)" : ""}`);
  else out(`${what}: ${dry ? `would free ${bytes} (dry run: nothing changed)` : `freed ${bytes}`}`);
}

const num = (v: unknown, flag: string): number | undefined => {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new SiloError("E_USAGE", `${flag} must be a number ≥ 0, got \`${v}\``);
  return n;
};

export const rebuild = defineCommand({
  meta: { name: "rebuild", description: "Re-run the stored build script of a tool's layer on a fresh image" },
  args: {
    tool: { type: "positional", required: false, description: "Tool (default: every layer of this project with --all)" },
    all: { type: "boolean", description: "Every tool with a layer" },
    global: { type: "boolean", description: "The global layers" },
    setup: { type: "string", description: "Replace the stored script", valueHint: "script" },
    driver: { type: "string", description: "Sandbox driver", valueHint: "name" },
    ...globalArgs,
  },
  async run({ args }) {
    const { rebuildTool, toolsWithLayers } = await import("../app/build.ts");
    const cwd = process.cwd();
    if (args.all && args.tool) throw new SiloError("E_USAGE", "silo rebuild: name a tool or use --all, not both");
    if (args.all && args.setup !== undefined) throw new SiloError("E_USAGE", "silo rebuild: --setup replaces one tool's script; name the tool");
    const tools = args.all ? await toolsWithLayers({ cwd, global: args.global }) : args.tool ? [args.tool] : [];
    if (!args.all && !args.tool) throw new SiloError("E_USAGE", "silo rebuild: name a tool, or --all", "silo rebuild python; silo rebuild --all --global");
    if (tools.length === 0) return out(`no ${args.global ? "global" : "project"} build layers to rebuild`);
    for (const tool of tools) {
      const code = await rebuildTool({ tool, cwd, global: args.global, setup: args.setup, driver: args.driver });
      if (code !== 0) {
        process.exitCode = code;
        return;
      }
    }
  },
});

const gc = defineCommand({
  meta: { name: "gc", description: "Evict rootfs entries by LRU above [cache.rootfs] maxSizeMB (8192) and age above maxAgeDays (60)" },
  args: {
    images: { type: "boolean", description: "Also remove unreferenced image blobs" },
    "tool-caches": { type: "boolean", description: "Also trim per-tool caches to [cache.tools] caps" },
    "max-size": { type: "string", description: "Override maxSizeMB", valueHint: "MB" },
    "max-age": { type: "string", description: "Override maxAgeDays", valueHint: "days" },
    auto: { type: "boolean", description: "The daily run started by `silo run` (quiet; skipped while another gc runs)" },
    ...dryRunArg,
    ...jsonArg,
    ...globalArgs,
  },
  async run({ args }) {
    const cache = await import("../app/cache.ts");
    if (args.auto) return cache.autoGc(await home());
    const since = Date.now();
    const plan = await cache.planGc(
      { images: args.images, toolCaches: args["tool-caches"], maxSizeMB: num(args["max-size"], "--max-size"), maxAgeDays: num(args["max-age"], "--max-age") },
      await home(),
    );
    await showOrRun(plan, args, "cache gc", since);
  },
});

const report = defineCommand({
  meta: { name: "report", description: "On-disk and apparent size per bucket" },
  args: { ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { cacheReport } = await import("../app/cache-report.ts");
    const { formatSize } = await import("../cache/usage.ts");
    const r = await cacheReport(await home());
    if (args.json) return out(JSON.stringify(r, null, 2));
    out(`${r.home}: ${formatSize(r.total.disk)} on disk (${formatSize(r.total.apparent)} apparent)`);
    out(`  ${"bucket".padEnd(20)} ${"on disk".padStart(10)} ${"apparent".padStart(10)}  notes`);
    for (const b of r.buckets) {
      const notes = [b.note, b.orphans?.blobs ? `${b.orphans.blobs} orphan blobs (${formatSize(b.orphans.disk)}; silo cache gc --images)` : ""].filter(Boolean).join("; ");
      out(`  ${b.name.padEnd(20)} ${formatSize(b.disk).padStart(10)} ${formatSize(b.apparent).padStart(10)}  ${notes}`);
    }
  },
});

const list = defineCommand({
  meta: { name: "list", description: "Rootfs entries: raw/zstd, size, last used" },
  args: { ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { cacheList } = await import("../app/cache-report.ts");
    const { formatAge, formatSize } = await import("../cache/usage.ts");
    const rows = await cacheList(await home());
    if (args.json) return out(JSON.stringify(rows, null, 2));
    if (rows.length === 0) return out("no rootfs entries");
    for (const r of rows)
      out(`${r.digest.slice(7, 19)}  ${r.format.padEnd(5)} ${formatSize(r.size).padStart(9)}  ${formatAge(Date.now() - Date.parse(r.lastUsed)).padEnd(15)} ${r.refs.join(", ")}${r.inUse.length ? `  [${r.inUse.join("; ")}]` : ""}`);
  },
});

const compress = defineCommand({
  meta: { name: "compress", description: "zstd-compress rootfs entries unused for 14 days (decompressed on the next use)" },
  args: { all: { type: "boolean", description: "Every entry" }, ...dryRunArg, ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { planCompressCmd } = await import("../app/cache.ts");
    const since = Date.now();
    await showOrRun(await planCompressCmd({ all: args.all }, await home()), args, "cache compress", since);
  },
});

const cacheClean = defineCommand({
  meta: { name: "clean", description: "Remove cached data: --safe (orphans only), --rootfs, --containers" },
  args: { safe: { type: "boolean", description: "Orphans only" }, rootfs: { type: "boolean", description: "All rootfs entries" }, containers: { type: "boolean", description: "Leftovers of sandboxes" }, ...dryRunArg, ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { planClean } = await import("../app/cache.ts");
    const since = Date.now();
    await showOrRun(await planClean({ safe: args.safe, rootfs: args.rootfs, containers: args.containers }, await home()), args, "cache clean", since);
  },
});

const shareLogin = defineCommand({
  meta: { name: "share-login", description: "Share this project's login of a tool (claude-code) with every project, read-only" },
  args: { tool: { type: "positional", required: true, description: "Tool whose login to share" }, ...globalArgs },
  async run({ args }) {
    const { shareToolLogin } = await import("../app/cache.ts");
    out(`shared the login of ${args.tool}: ${await shareToolLogin(await home(), args.tool, process.cwd())}`);
  },
});

export const cache = defineCommand({
  meta: { name: "cache", description: "Inspect and trim SILO_HOME: rootfs cache, image store, tool caches, builds" },
  subCommands: { report, list, gc, compress, clean: cacheClean, "share-login": shareLogin },
});

export const clean = defineCommand({
  meta: { name: "clean", description: "Remove this project's silo data (build layers, caches)" },
  args: { "rootfs-only": { type: "boolean", description: "Only rootfs data" }, "caches-only": { type: "boolean", description: "Only caches" }, force: { type: "boolean", description: "Do not ask" }, ...dryRunArg, ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { planProjectClean, projectOf } = await import("../app/reclaim.ts");
    if (args["rootfs-only"] && args["caches-only"]) throw new SiloError("E_USAGE", "silo clean: --rootfs-only and --caches-only exclude each other");
    const since = Date.now();
    const plan = await planProjectClean({ cwd: process.cwd(), rootfsOnly: args["rootfs-only"], cachesOnly: args["caches-only"] }, await home());
    if (plan.length && !args.force && !args["dry-run"]) {
      const { root } = await projectOf(process.cwd());
      if (!process.stdin.isTTY) throw new SiloError("E_USAGE", `silo clean deletes this project's build layers and caches (${root})`, "re-run with --force to confirm, or --dry-run to see what would go");
      const { consola } = await import("consola");
      const yes = await consola.prompt(`Delete silo's data for ${root} (${plan.length} items)?`, { type: "confirm", initial: false, cancel: "reject" });
      if (!yes) return out("nothing deleted");
    }
    await showOrRun(plan, args, "clean", since);
  },
});
