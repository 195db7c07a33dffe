import { defineCommand } from "citty";
import { notImplemented } from "../core/errors.ts";
import { dryRunArg, globalArgs, jsonArg } from "./_args.ts";

// The engine of these commands (persistent build layers, cache accounting and GC) is its own issue;
// until it lands they say so and exit 125 rather than pretend to succeed.
const pending = (what: string) => () => notImplemented(what);

export const rebuild = defineCommand({
  meta: { name: "rebuild", description: "Re-run the stored build script of a tool's layer on a fresh image" },
  args: {
    tool: { type: "positional", required: false, description: "Tool (default: every layer of this project with --all)" },
    all: { type: "boolean", description: "Every tool with a layer" },
    global: { type: "boolean", description: "The global layers" },
    setup: { type: "string", description: "Replace the stored script", valueHint: "script" },
    ...globalArgs,
  },
  run: pending("silo rebuild (persistent build layers)"),
});

const gc = defineCommand({
  meta: { name: "gc", description: "Evict rootfs entries by LRU above [cache.rootfs] maxSizeMB (8192) and age above maxAgeDays (60)" },
  args: {
    images: { type: "boolean", description: "Also remove unreferenced image blobs" },
    "tool-caches": { type: "boolean", description: "Also trim per-tool caches to [cache.tools] caps" },
    "max-size": { type: "string", description: "Override maxSizeMB", valueHint: "MB" },
    "max-age": { type: "string", description: "Override maxAgeDays", valueHint: "days" },
    ...dryRunArg,
    ...globalArgs,
  },
  run: pending("silo cache gc"),
});

export const cache = defineCommand({
  meta: { name: "cache", description: "Inspect and trim SILO_HOME: rootfs cache, image store, tool caches, builds" },
  subCommands: {
    report: defineCommand({ meta: { name: "report", description: "On-disk and apparent size per bucket" }, args: { ...jsonArg, ...globalArgs }, run: pending("silo cache report") }),
    list: defineCommand({ meta: { name: "list", description: "Rootfs entries: raw/zstd, size, last used" }, args: { ...jsonArg, ...globalArgs }, run: pending("silo cache list") }),
    gc,
    compress: defineCommand({
      meta: { name: "compress", description: "zstd-compress rootfs entries unused for 14 days (decompressed on the next use)" },
      args: { all: { type: "boolean", description: "Every entry" }, ...dryRunArg, ...globalArgs },
      run: pending("silo cache compress"),
    }),
    clean: defineCommand({
      meta: { name: "clean", description: "Remove cached data: --safe (orphans only), --rootfs, --containers" },
      args: { safe: { type: "boolean", description: "Orphans only" }, rootfs: { type: "boolean", description: "All rootfs entries" }, containers: { type: "boolean", description: "Leftovers of sandboxes" }, ...dryRunArg, ...globalArgs },
      run: pending("silo cache clean"),
    }),
  },
});

export const clean = defineCommand({
  meta: { name: "clean", description: "Remove this project's silo data (build layers, caches)" },
  args: { "rootfs-only": { type: "boolean", description: "Only rootfs data" }, "caches-only": { type: "boolean", description: "Only caches" }, force: { type: "boolean", description: "Do not ask" }, ...dryRunArg, ...globalArgs },
  run: pending("silo clean"),
});
