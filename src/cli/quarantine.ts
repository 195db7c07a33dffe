import { defineCommand } from "citty";
import { SiloError } from "../core/errors.ts";
import { globalArgs, jsonArg } from "./_args.ts";

const out = (s: string) => process.stdout.write(s + "\n");
const home = async () => (await import("../core/paths.ts")).homePaths();

const list = defineCommand({
  meta: { name: "list", description: "What silo moved out of projects after a run (oldest first)" },
  args: { ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { listRecords } = await import("../app/quarantine-store.ts");
    const records = listRecords(await home());
    if (args.json) return out(JSON.stringify(records, null, 2));
    if (!records.length) return out("the quarantine is empty");
    for (const r of records) {
      const paths = r.entries.map((e) => (e.restored ? `${e.path} (restored)` : e.path)).join(", ");
      out(`${r.id}  ${r.time.slice(0, 19).replace("T", " ")}  ${r.tool}  ${r.root}  ${paths}`);
    }
  },
});

const show = defineCommand({
  meta: { name: "show", description: "What a run tried to plant: each path, why it was moved, a diff for text files" },
  args: { id: { type: "positional", required: true, description: "Record id (or a unique prefix), from `silo quarantine list`" }, ...jsonArg, ...globalArgs },
  async run({ args }) {
    const { describeRecord, findRecord } = await import("../app/quarantine-store.ts");
    const h = await home();
    const r = findRecord(h, args.id);
    if (args.json) return out(JSON.stringify(r, null, 2));
    // What a sandbox planted is shown as text: on a terminal its escape sequences (retitling, moving the
    // cursor, rewriting what was shown) are printed as \x1b, not run by the terminal.
    const { isatty } = await import("../core/tty.ts");
    const tty = isatty(1);
    for (const line of describeRecord(h, r)) out(tty ? escapeControls(line) : line);
  },
});

const restore = defineCommand({
  meta: { name: "restore", description: "Put quarantined paths back into their project (all of a record, or those named)" },
  args: {
    id: { type: "positional", required: true, description: "Record id (or a unique prefix); project paths after it restore only those" },
    force: { type: "boolean", description: "Replace a path that exists in the project (what is there is quarantined in turn)" },
    ...globalArgs,
  },
  async run({ args }) {
    const { findRecord, restoreRecord } = await import("../app/quarantine-store.ts");
    const { log } = await import("../core/log.ts");
    const h = await home();
    const r = findRecord(h, args.id);
    const paths = (args._ ?? []).slice(1).map(String);
    const { restored, refused, replaced } = restoreRecord(h, r, paths, !!args.force);
    for (const p of replaced) log.warn(`${p} was in ${r.root}: silo moved it to quarantine (\`silo quarantine list\`)`);
    for (const p of restored) log.success(`restored ${p} to ${r.root}`);
    if (refused.length)
      throw new SiloError("E_USAGE", `not restored: ${refused.join(", ")} already exist${refused.length === 1 ? "s" : ""} in ${r.root}`, "re-run with --force to replace (what is there goes to quarantine)");
    if (!restored.length) out(`nothing to restore in ${r.id}`);
  },
});

export const quarantine = defineCommand({
  meta: { name: "quarantine", description: "See and restore what a sandbox left at protected project paths" },
  subCommands: { list, show, restore },
});

/** C0 controls (tab aside), DEL and C1 controls as \xNN. */
// eslint-disable-next-line no-control-regex
export const escapeControls = (s: string) => s.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
