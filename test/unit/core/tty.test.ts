import { describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import * as nodeTty from "node:tty";
import { isatty } from "../../../src/core/tty.ts";
import { tmp } from "../../helpers/silo.ts";

const ttyModule = resolve(import.meta.dir, "../../../src/core/tty.ts");

describe("isatty without node:tty", () => {
  test("a file, /dev/null, /dev/zero, a pipe and a closed descriptor are not terminals (as node:tty says)", () => {
    const file = openSync(join(tmp(), "f"), "w");
    const devnull = openSync("/dev/null", "r");
    const zero = openSync("/dev/zero", "r");
    try {
      for (const fd of [file, devnull, zero]) {
        expect(isatty(fd)).toBe(false);
        expect(nodeTty.isatty(fd)).toBe(false);
      }
    } finally {
      for (const fd of [file, devnull, zero]) closeSync(fd);
    }
    const p = Bun.spawnSync([process.execPath, "-e", `const { isatty } = await import(${JSON.stringify(ttyModule)}); console.log(isatty(0), isatty(1), isatty(9))`], {
      stdin: "pipe",
      stdout: "pipe",
    });
    expect(p.stdout.toString().trim()).toBe("false false false");
  });

  test("a pseudo-terminal is one (under script(1)), agreeing with node:tty", () => {
    const code = `const { isatty } = await import(${JSON.stringify(ttyModule)}); const t = await import("node:tty"); console.log(JSON.stringify(["ours", isatty(0), isatty(1), "node", t.isatty(0), t.isatty(1)]))`;
    const p = Bun.spawnSync(["script", "-q", "-e", "-c", `${process.execPath} -e '${code}'`, "/dev/null"], { stdin: "pipe", stdout: "pipe" });
    expect(p.stdout.toString()).toContain(JSON.stringify(["ours", true, true, "node", true, true]));
  });
});
