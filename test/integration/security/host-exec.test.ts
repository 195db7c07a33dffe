// THREATS.md invariant 1 (no host code from project bytes: no runtime config autoload, a shim never runs a
// host binary because of untrusted config and never execs itself) and invariant 3 (widening needs trust of
// the exact bytes that are parsed, hashed and parsed from one read; a config another user could have
// written is ignored with a warning). Each attack is shown to work first where the barrier is absent (plain
// `bun`, a trusted file, a file the user owns), then to fail through dist/silo and through a real shim.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { emptyHome, makeProject, runSilo, siloBin, tmp, type SiloResult } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

let home: string;
beforeAll(async () => {
  home = await installedHome("python@3.11-slim");
}, 600_000);
afterAll(cleanUp);

const PATH = "/usr/bin:/bin";
const shim = (name: string) => join(home, "bin", name);
/** Run the `python` shim (a symlink to dist/silo in SILO_HOME/bin, that directory first on PATH). */
const viaShim = (args: string[], cwd: string, extraPath = "", env: Record<string, string> = {}) =>
  runSilo(args, { home, cwd, bin: shim("python"), env: { PATH: `${join(home, "bin")}:${extraPath ? `${extraPath}:` : ""}${PATH}`, ...env } });

describe("Bun's runtime autoload (bunfig.toml, .env, tsconfig.json, package.json) runs nothing of the project", () => {
  function hostileDir() {
    const markers = tmp("silo-markers-");
    const evilHome = join(tmp("silo-evil-"), "home");
    const write = (what: string) => `require("fs").writeFileSync(${JSON.stringify(join(markers, what))} + "-" + process.pid, "ran\\n");`;
    const proj = makeProject(undefined, {
      "evil.js": write("bunfig-preload"),
      "evil-pkg.js": write("package-json"),
      "bunfig.toml": 'preload = ["./evil.js"]\n[run]\npreload = ["./evil.js"]\n',
      ".env": `SILO_HOME=${evilHome}\nSILO_DEBUG=1\nSILO_DRIVER=qemu\n`,
      ".env.local": `SILO_HOME=${evilHome}\n`,
      "tsconfig.json": JSON.stringify({ compilerOptions: { jsx: "react-jsx", jsxImportSource: "./evil-pkg.js" } }),
      "package.json": JSON.stringify({ name: "evil", main: "evil-pkg.js", imports: { "#x": "./evil-pkg.js" } }),
    });
    return { proj, markers, evilHome };
  }

  test("positive control: a plain `bun` started there runs the preload and takes SILO_HOME from .env", () => {
    const { proj, markers, evilHome } = hostileDir();
    const r = Bun.spawnSync([process.execPath, "-e", "console.log(process.env.SILO_HOME)"], { cwd: proj, env: { PATH, HOME: proj } });
    expect(r.stdout.toString()).toBe(`${evilHome}\n`);
    expect(readdirSync(markers).some((m) => m.startsWith("bunfig-preload-"))).toBe(true);
  });

  test("`silo --version`, `silo run python` and the `python` shim run none of it and keep SILO_HOME", async () => {
    const { proj, markers, evilHome } = hostileDir();
    const version = await runSilo(["--version"], { home, cwd: proj });
    expect(version.stdout).toMatch(/^silo \d/);
    expect(version.stderr).toBe("");
    const code = "import os; print('sandboxed', os.getcwd())";
    // A changed SILO_HOME would find no python installed (127); SILO_DEBUG=1 would print [debug] lines.
    for (const r of [await runSilo(["run", "python", "-c", code], { home, cwd: proj }), await viaShim(["-c", code], proj)]) {
      expect(ok(r).stdout).toBe("sandboxed /workspace\n");
      expect(r.stderr).not.toContain("[debug]");
    }
    expect(readdirSync(markers)).toEqual([]);
    expect(existsSync(evilHome)).toBe(false);
  });
});

describe("a shim never execs itself", () => {
  let hardDir: string;
  afterAll(() => rmSync(hardDir, { recursive: true, force: true }));

  test("with only silo's own binary on PATH (symlinks, a chain, a hard link) the fall-through exits 127", async () => {
    const h = emptyHome(); // python is not installed here: the shim falls through
    const [a, b, c] = [join(h, "bin"), tmp(), tmp()];
    mkdirSync(a);
    symlinkSync(siloBin, join(a, "python"));
    symlinkSync(join(a, "python"), join(b, "python")); // a chain of links
    symlinkSync(siloBin, join(c, "silo-under-another-name"));
    symlinkSync(join(c, "silo-under-another-name"), join(c, "python"));
    // A hard link is the same inode under another path; it has to live on the binary's file system.
    hardDir = mkdtempSync(join(dirname(siloBin), ".hardlink-"));
    linkSync(siloBin, join(hardDir, "python"));
    const r = await runSilo(["-c", "pass"], { home: h, cwd: tmp(), bin: join(a, "python"), env: { PATH: [a, b, c, hardDir].join(":") } });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain("python: command not found");
    expect(r.stderr).toContain("PATH has no other `python` than silo's own shim");
  }, 60_000);
});

describe("an untrusted silo.toml's `tools` list never sends a shim to a host binary", () => {
  /** A fake host `python` earlier on PATH than /usr/bin: it leaves a marker when it runs. */
  function hostPython() {
    const dir = tmp("silo-hostbin-");
    const marker = join(dir, "host-python-ran");
    writeFileSync(join(dir, "python"), `#!/bin/sh\necho "host python $*" > ${marker}\necho "host python"\nexit 7\n`, { mode: 0o755 });
    return { dir, marker };
  }
  const code = ["-c", "import os; print('sandboxed', os.getcwd())"];

  test("positive control: a trusted `[tools] deno = \"2\"` (or `tools = [\"deno\"]`) does fall through to the host python", async () => {
    for (const toml of ['[tools]\ndeno = "2"\n', 'tools = ["deno"]\n']) {
      const host = hostPython();
      const proj = makeProject(toml);
      ok(await runSilo(["trust"], { home, cwd: proj }));
      const r = await viaShim(code, proj, host.dir);
      expect(r.stdout).toBe("host python\n");
      expect(r.exitCode).toBe(7);
      expect(existsSync(host.marker)).toBe(true);
    }
  });

  test("the same file untrusted: python runs in its sandbox, with a warning", async () => {
    const host = hostPython();
    const proj = makeProject('[tools]\ndeno = "2"\n');
    const r = ok(await viaShim(code, proj, host.dir));
    expect(r.stdout).toBe("sandboxed /workspace\n");
    expect(r.stderr).toContain(`${join(proj, "silo.toml")} is not trusted`);
    expect(existsSync(host.marker)).toBe(false);
  });

  test("planted in a subdirectory of a trusted project (test/silo.toml), it is untrusted and changes nothing", async () => {
    const host = hostPython();
    const proj = makeProject("# the project's own, trusted\n");
    ok(await runSilo(["trust"], { home, cwd: proj }));
    mkdirSync(join(proj, "test"));
    writeFileSync(join(proj, "test", "silo.toml"), 'tools = ["deno"]\n');
    const r = ok(await viaShim(code, join(proj, "test"), host.dir));
    expect(r.stdout).toBe("sandboxed /workspace\n");
    expect(existsSync(host.marker)).toBe(false);
  });
});

describe("a silo.toml another user could write is ignored (walk-up safety)", () => {
  const probe = ["-c", "import os; print(sorted(os.listdir('/workspace')), os.environ.get('FROM_PARENT'))"];
  function parentProject() {
    const parent = tmp("silo-parent-");
    writeFileSync(join(parent, "silo.toml"), '[env]\nFROM_PARENT = "yes"\n');
    chmodSync(join(parent, "silo.toml"), 0o644);
    writeFileSync(join(parent, "parent-only.txt"), "p\n");
    mkdirSync(join(parent, "child"));
    writeFileSync(join(parent, "child", "child.txt"), "c\n");
    return parent;
  }

  test("positive control: the user's own parent silo.toml is found, and /workspace is that parent", async () => {
    const parent = parentProject();
    const r = ok(await viaShim(probe, join(parent, "child")));
    expect(r.stdout).toBe("['child', 'parent-only.txt', 'silo.toml'] yes\n");
  });

  test("a world-writable parent silo.toml is ignored with a warning: /workspace stays the working directory", async () => {
    const parent = parentProject();
    chmodSync(join(parent, "silo.toml"), 0o666);
    const r = ok(await viaShim(probe, join(parent, "child")));
    expect(r.stdout).toBe("['child.txt'] None\n");
    expect(r.stderr).toContain(`ignoring ${join(parent, "silo.toml")}: other users can write it (mode 0666)`);
    expect(r.stderr).toContain(`safeDirectories = ["${parent}"]`);
    // The same through `silo run`, and for a group-writable file in the working directory itself.
    writeFileSync(join(parent, "child", "silo.toml"), '[env]\nFROM_PARENT = "child"\n');
    chmodSync(join(parent, "child", "silo.toml"), 0o664);
    const own = ok(await runSilo(["run", "python", ...probe], { home, cwd: join(parent, "child") }));
    expect(own.stdout).toBe("['child.txt', 'silo.toml'] None\n");
    expect(own.stderr).toContain(`ignoring ${join(parent, "child", "silo.toml")}: other users can write it (mode 0664)`);
  });

  test("safeDirectories in the global silo.toml lets a shared checkout's file count again", async () => {
    const parent = parentProject();
    chmodSync(join(parent, "silo.toml"), 0o666);
    const global = join(home, "silo.toml");
    const before = readFileSync(global, "utf8");
    writeFileSync(global, `safeDirectories = [${JSON.stringify(parent)}]\n${before}`);
    try {
      const r = ok(await viaShim(probe, join(parent, "child")));
      expect(r.stdout).toBe("['child', 'parent-only.txt', 'silo.toml'] yes\n");
      expect(r.stderr).not.toContain("ignoring");
    } finally {
      writeFileSync(global, before);
    }
  });
});

describe("trust is checked on the bytes that are applied (one read), and the cache is keyed on content", () => {
  const TRUSTED = 'passEnv = ["OK_TOKEN"]\n';
  const HOSTILE = 'passEnv = ["SECRET_TOKEN"]\n';
  const env = { OK_TOKEN: "fine", SECRET_TOKEN: "leaked" };
  const probe = ["run", "python", "-c", "import os; print(os.environ.get('OK_TOKEN'), os.environ.get('SECRET_TOKEN'))"];
  const run = (cwd: string): Promise<SiloResult> => runSilo(probe, { home, cwd, env });

  test("positive control: a trusted file's passEnv does pass the variable (the probe sees a leak)", async () => {
    const proj = makeProject(HOSTILE);
    ok(await runSilo(["trust"], { home, cwd: proj }));
    expect(ok(await run(proj)).stdout).toBe("None leaked\n");
  });

  test("swapping the file between trusted and hostile bytes while runs happen never applies the hostile passEnv", async () => {
    const proj = makeProject(TRUSTED);
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const side = tmp("silo-swap-");
    writeFileSync(join(side, "t"), TRUSTED);
    writeFileSync(join(side, "h"), HOSTILE);
    // The swapper renames complete files over silo.toml, alternating, about every millisecond.
    const swapper = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const fs = require("fs"); const [side, f] = process.argv.slice(1);
         for (let i = 0; ; i++) { const src = i % 2 ? "h" : "t"; fs.copyFileSync(side + "/" + src, side + "/n" + src); fs.renameSync(side + "/n" + src, f); Bun.sleepSync(1); }`,
        side,
        join(proj, "silo.toml"),
      ],
      { cwd: side, stdout: "ignore", stderr: "inherit" },
    );
    // Each run either resolves the bytes it read (trusted: OK_TOKEN passes; hostile: stripped) or fails
    // closed with 125 when the sandbox set-up finds silo.toml replaced under it. `config show` resolves the
    // project file without a sandbox, so it races the swap on every call.
    const runs: SiloResult[] = [];
    const shows: SiloResult[] = [];
    try {
      for (let i = 0; i < 25; i++) {
        runs.push(await run(proj));
        shows.push(await runSilo(["config", "show", "--json"], { home, cwd: proj, env }));
      }
    } finally {
      swapper.kill();
      await swapper.exited;
    }
    for (const r of runs) {
      expect(r.stdout).not.toContain("leaked");
      if (r.exitCode === 0) expect(["fine None\n", "None None\n"]).toContain(r.stdout);
      else expect({ exit: r.exitCode, mentionsFile: r.stderr.includes("silo.toml") }).toEqual({ exit: 125, mentionsFile: true });
    }
    for (const s of shows) {
      const passEnv = (JSON.parse(ok(s).stdout) as { values: { key: string; value: unknown }[] }).values.find((v) => v.key === "passEnv");
      expect([undefined, '["OK_TOKEN"]']).toContain(passEnv && JSON.stringify(passEnv.value));
    }
    // Afterwards the cache holds nothing from the swap: the trusted bytes apply, the hostile ones do not.
    renameSync(join(side, "t"), join(proj, "silo.toml"));
    expect(ok(await run(proj)).stdout).toBe("fine None\n");
    renameSync(join(side, "h"), join(proj, "silo.toml"));
    const h = ok(await run(proj));
    expect(h.stdout).toBe("None None\n");
    expect(h.stderr).toContain("changed since you trusted it; ignoring passEnv");
  }, 300_000);

  test("an in-place edit of the same size and mtime is seen (no stale cached context)", async () => {
    const proj = makeProject(TRUSTED);
    const f = join(proj, "silo.toml");
    const second = 1_700_000_000; // a whole second: utimes can set it back exactly
    utimesSync(f, second, second);
    ok(await runSilo(["trust"], { home, cwd: proj }));
    expect(ok(await run(proj)).stdout).toBe("fine None\n"); // fills the resolved-config cache
    const same = 'passEnv = ["OK_TOKEX"]\n'; // same length, same inode, same mtime
    expect(same.length).toBe(TRUSTED.length);
    const ino = statSync(f).ino;
    writeFileSync(f, same);
    utimesSync(f, second, second);
    expect(statSync(f)).toMatchObject({ ino, size: TRUSTED.length, mtimeMs: second * 1000 });
    const r = ok(await run(proj));
    expect(r.stdout).toBe("None None\n");
    expect(r.stderr).toContain("changed since you trusted it");
  });
});
