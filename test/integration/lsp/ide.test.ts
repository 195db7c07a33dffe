/**
 * `silo ide` through the built binary, and the reason its files are protected: editor config names a
 * command the editor runs on the host, so a sandboxed tool must not be able to rewrite it.
 */
import { describe, expect, test } from "bun:test";
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseJsonc } from "../../../src/lsp/jsonc.ts";
import { makeHome, makeProject, runSilo } from "../../helpers/silo.ts";

describe("silo ide", () => {
  test("writes .zed/settings.json for the detected tool, keeping the user's settings", async () => {
    const home = makeHome();
    const dir = makeProject("", { "package.json": "{}", ".zed/settings.json": `{\n  // mine\n  "vim_mode": true\n}\n` });
    const r = await runSilo(["ide", "zed"], { home, cwd: dir });
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(".zed/settings.json") });
    const text = readFileSync(join(dir, ".zed/settings.json"), "utf8");
    expect(text).toContain("// mine");
    const s = parseJsonc(text) as any;
    expect(s.vim_mode).toBe(true);
    expect(s.lsp["typescript-language-server"].binary.arguments).toEqual(["lsp", "node"]);
  });

  test("a sandboxed tool cannot rewrite the editor config that silo ide wrote", async () => {
    const home = makeHome();
    const dir = makeProject("", { "package.json": "{}" });
    for (const editor of ["zed", "neovim"]) expect((await runSilo(["ide", editor, "--tool", "node"], { home, cwd: dir })).exitCode).toBe(0);
    const before = [readFileSync(join(dir, ".zed/settings.json"), "utf8"), readFileSync(join(dir, ".nvim.lua"), "utf8")];
    // On the host the files are plainly writable; in the sandbox only the control file (same project) is.
    for (const f of [".zed/settings.json", ".nvim.lua"]) accessSync(join(dir, f), constants.W_OK);
    const js = `const fs = require("fs"); const ok = [];
      for (const f of [".zed/settings.json", ".nvim.lua", "control.txt"]) { try { fs.appendFileSync(f, "// evil"); ok.push(f); } catch {} }
      console.log("written: " + ok.join(" "));`;
    const r = await runSilo(["run", "node", "-e", js], { home, cwd: dir });
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    expect(r.stdout.trim()).toBe("written: control.txt");
    expect([readFileSync(join(dir, ".zed/settings.json"), "utf8"), readFileSync(join(dir, ".nvim.lua"), "utf8")]).toEqual(before);
  }, 300_000);
});
