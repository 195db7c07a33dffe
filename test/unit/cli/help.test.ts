// `silo --help` groups its commands (src/cli/_help.ts).
import { describe, expect, test } from "bun:test";
import { renderUsage } from "citty";
import { GROUPS, groupRootUsage } from "../../../src/cli/_help.ts";
import { commands, root } from "../../../src/cli/index.ts";

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

describe("silo --help groups", () => {
  test("every command is in exactly one group", () => {
    const listed: string[] = GROUPS.flatMap(([, names]) => names);
    expect([...listed].sort()).toEqual(Object.keys(commands).sort());
  });

  test("each group lists its commands, in order, with citty's description lines", async () => {
    const out = plain(groupRootUsage(await renderUsage(root as never)));
    expect(out).toContain("USAGE silo [OPTIONS] <command>\n");
    expect(out).not.toContain("COMMANDS");
    for (const [title, names] of GROUPS) {
      const section = out.split(`\n${title}\n\n`)[1]!.split("\n\n")[0]!;
      expect(section.split("\n").map((l) => l.trim().split(/\s{2,}/)[0])).toEqual(names);
    }
    expect(out.indexOf("\nRUN\n")).toBeLessThan(out.indexOf("\nTOOLS\n"));
    expect(out).toContain("Use silo <command> --help for more information about a command.");
  });
});
