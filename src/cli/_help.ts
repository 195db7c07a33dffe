// `silo --help` lists the commands in groups, the way a user looks for them, instead of citty's one list.
import { commands } from "./index.ts";

/** Every command in exactly one group (test/unit/cli/help.test.ts checks). */
export const GROUPS: [string, (keyof typeof commands)[]][] = [
  ["RUN", ["run", "shell", "build", "rebuild", "status"]],
  ["TOOLS", ["install", "uninstall", "list", "pull", "sync", "use", "unuse", "shim", "registry"]],
  ["PROJECT", ["init", "trust", "untrust", "quarantine", "config"]],
  ["CACHE", ["cache", "clean"]],
  ["EDITOR", ["lsp", "ide"]],
  ["SET-UP", ["doctor", "shellenv", "completion", "reset"]],
];

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/**
 * citty's root usage with its COMMANDS section split into GROUPS (each command's line kept as citty drew
 * it), and the usage line naming `<command>` rather than all of them.
 */
export function groupRootUsage(usage: string): string {
  const lines = usage.split("\n");
  const start = lines.findIndex((l) => plain(l).trim() === "COMMANDS");
  const end = lines.findIndex((l, i) => i > start && plain(l).startsWith("Use "));
  if (start < 0 || end < 0) return usage;
  const byName = new Map<string, string>();
  for (const l of lines.slice(start + 1, end)) {
    const m = /^\s*(\S+)\s{2,}/.exec(plain(l));
    if (m) byName.set(m[1]!, l.trimEnd());
  }
  const header = lines[start]!;
  // A command added without a group still shows, under OTHER.
  const grouped = [...GROUPS.map(([, names]) => names as string[])].flat();
  const other: [string, string[]] = ["OTHER", [...byName.keys()].filter((n) => !grouped.includes(n))];
  const sections = [...GROUPS, ...(other[1].length ? [other] : [])].flatMap(([title, names]) => [
    header.replace("COMMANDS", title),
    "",
    ...(names as string[]).flatMap((n) => byName.get(n) ?? []),
    "",
  ]);
  const head = lines.slice(0, start).map((l) => (plain(l).startsWith("USAGE ") ? l.replace(/(silo \[OPTIONS\] )[\w|-]+/, "$1<command>") : l));
  return [...head, ...sections, ...lines.slice(end)].join("\n");
}
