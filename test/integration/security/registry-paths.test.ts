/**
 * THREATS.md invariants 3 and 6: a community registry entry (third-party data from `silo registry
 * update`) names no host path. Every field that becomes part of one (tool name, cache name, versions,
 * `requires`, `plugin`) is one safe path component: rejected when the registry is fetched, and refused
 * again where silo joins the path under SILO_HOME (an entry that got into config.toml some other way).
 *
 * Positive control first: the join silo used to make, `SILO_HOME/cache/<tool>/<cache name>` with the
 * name `../../..`, really is the victim's directory, and a sandbox with it bound at /root/.cache/x
 * lists it and writes into it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parse, stringify } from "smol-toml";
import { runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

afterAll(cleanUp);

const VALID = (name: string, extra = "", versions = '[versions]\ndefault = "latest"\navailable = ["latest"]\n') =>
  `name = "${name}"\ndescription = "d"\nimage = "docker.io/library/busybox"\nshims = ["${name}"]\n${extra}\n${versions}`;

function gitRepo(files: Record<string, string>): string {
  const dir = tmp("silo-registry-");
  mkdirSync(join(dir, "registry"));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, "registry", n), t);
  const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t", GIT_CONFIG_NOSYSTEM: "1" };
  for (const a of [["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "registry"]]) {
    const r = Bun.spawnSync(["git", "-C", dir, ...a], { env });
    expect(r.exitCode).toBe(0);
  }
  return dir;
}

function victimDir(): string {
  const v = tmp("silo-victim-");
  writeFileSync(join(v, "secret.txt"), "host secret\n");
  return v;
}

describe("registry-paths: a cache name with `..`", () => {
  test("positive control: the naive join is the victim's directory, and a sandbox bound there reads and writes it", () => {
    const home = tmp("silo-home-");
    const victim = victimDir();
    const name = relative(join(home, "cache", "evil"), victim);
    expect(name.startsWith("../")).toBe(true);
    const naive = join(home, "cache", "evil", name); // what run.ts joined before the fix
    expect(naive).toBe(victim);
    const r = Bun.spawnSync(
      ["bwrap", "--unshare-user", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/root", "--dir", "/root/.cache/x", "--bind", naive, "/root/.cache/x",
        "sh", "-c", "cat /root/.cache/x/secret.txt && echo planted > /root/.cache/x/planted"],
      { stderr: "pipe" },
    );
    expect({ code: r.exitCode, err: r.stderr.toString() }).toEqual({ code: 0, err: "" });
    expect(r.stdout.toString()).toBe("host secret\n");
    expect(readFileSync(join(victim, "planted"), "utf8")).toBe("planted\n");
  });

  test("silo registry update rejects every entry whose path fields hold `..`, `/` or NUL; the good one loads", async () => {
    const home = tmp("silo-home-");
    const victim = victimDir();
    const up = relative(join(home, "cache", "evil"), victim);
    const files: Record<string, string> = { "good.toml": VALID("good", '[[cache]]\nname = "c"\npath = "/root/.cache/c"\n') };
    const bad: Record<string, string[]> = {
      cache: [up, "..", "a/b", "a\\u0000b"].map((n) => `[[cache]]\nname = "${n}"\npath = "/root/.cache/x"\n`),
      requires: ["..", "a/b", "a\\u0000b"].map((n) => `requires = ["${n}"]\n`),
      plugin: ["..", "a/b", "a\\u0000b"].map((n) => `plugin = "${n}"\n`),
    };
    let i = 0;
    for (const [field, extras] of Object.entries(bad)) for (const x of extras) files[`evil${field}${i}.toml`] = VALID(`evil${field}${i++}`, x);
    for (const v of ["..", "../../x", "a/b", "a\\u0000b"]) files[`evilversion${i}.toml`] = VALID(`evilversion${i++}`, "", `[versions]\ndefault = "${v}"\navailable = ["${v}"]\n`);
    // A tool name with `..` or `/` cannot match a file name; with NUL it cannot either, but try the name check itself.
    files["evilname.toml"] = VALID("evil\\u0000name");
    const repo = gitRepo(files);
    const r = await runSilo(["registry", "update", `git:${repo}`], { home });
    ok(r);
    expect(r.stderr).toContain("good");
    const rejected = r.stderr.split("\n").filter((l) => l.includes("rejected "));
    expect(rejected.length).toBe(Object.keys(files).length - 1);
    expect(r.stderr).toContain("is not a valid cache name");
    expect(r.stderr).toContain("is not a valid version");
    expect(r.stderr).toContain("is not a valid tool name");
    expect(readdirSync(join(home, "registry/current"))).toEqual(["good.toml"]);
    const inst = await runSilo(["install", "evilcache0"], { home });
    expect(inst.exitCode).toBe(125);
    expect(inst.stderr).toContain("unknown tool `evilcache0`");
    expect(readdirSync(victim)).toEqual(["secret.txt"]);
  });
});

describe("registry-paths: refused again where the path is joined", () => {
  test("an installed definition with a `..`, `/` or NUL cache name (config.toml written around the checks) does not run", async () => {
    const home = await installedHome();
    ok(await runSilo(["install", "evil", "--image", "docker.io/library/busybox:latest"], { home }));
    const victim = victimDir();
    const proj = tmp("silo-proj-");
    for (const name of [relative(join(home, "cache", "evil"), victim), "..", "a/b", "a\0b"]) {
      const cfg = parse(readFileSync(join(home, "config.toml"), "utf8")) as { tools: Record<string, { definition: Record<string, unknown> }> };
      cfg.tools.evil!.definition.cache = [{ name, path: "/root/.cache/x" }];
      writeFileSync(join(home, "config.toml"), stringify(cfg));
      const r = await runSilo(["run", "evil", "sh", "-c", "ls /root/.cache/x; echo planted > /root/.cache/x/planted"], { home, cwd: proj });
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toContain("refusing a path under");
      expect(r.stdout).toBe("");
    }
    expect(readdirSync(victim)).toEqual(["secret.txt"]);
    expect(existsSync(join(home, "cache", "a"))).toBe(false);
  });

  test("a custom tool name from the command line is checked too", async () => {
    const home = tmp("silo-home-");
    for (const name of ["..", "../x", "a/b"]) {
      const r = await runSilo(["install", name, "--image", "docker.io/library/busybox:latest"], { home });
      expect(r.exitCode).toBe(125);
      expect(r.stderr).toContain("is not a valid tool name");
    }
  });
});
