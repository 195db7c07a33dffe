/**
 * Layers across image changes and installs: a layer built on an older image is detected (warning with the
 * rebuild hint, until `silo rebuild`), registry `postInstall` steps are baked into the global layer at
 * install (once per image), and `silo rebuild --all`.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeHome, runSilo } from "../../helpers/silo.ts";
import { generations, ok, removeScratch, scratch, scratchProject } from "./_helpers.ts";

afterAll(removeScratch);

const ZSTD_IMAGE = "docker.io/library/python:3.11-slim-zstd"; // same files, another manifest digest

describe("build layers and image changes", () => {
  test("a layer built on an older image digest warns until it is rebuilt", async () => {
    const home = scratch(makeHome());
    const project = scratchProject("");
    ok(await runSilo(["install", "python@3.11-slim"], { home }));
    ok(await runSilo(["build", "python", "sh", "-c", "echo p > /opt/p"], { home, cwd: project }));
    ok(await runSilo(["build", "--global", "python", "sh", "-c", "echo g > /opt/g"], { home, cwd: project }));
    const quiet = ok(await runSilo(["run", "python", "-c", "print(open('/opt/p').read().strip())"], { home, cwd: project }));
    expect(quiet.stderr).not.toContain("older image");
    // The tool now uses another image (as after `silo pull` brought a new digest).
    ok(await runSilo(["install", "python", "--image", ZSTD_IMAGE], { home }));
    const warned = ok(await runSilo(["run", "python", "-c", "print(open('/opt/p').read().strip(), open('/opt/g').read().strip())"], { home, cwd: project }));
    expect(warned.stdout.trim()).toBe("p g"); // still used
    expect(warned.stderr).toContain("project build layer was built on an older image");
    expect(warned.stderr).toContain("silo rebuild python");
    expect(warned.stderr).toContain("silo rebuild python --global");
    // Adding a step keeps the layer marked as built on the old image.
    ok(await runSilo(["build", "python", "sh", "-c", "echo q > /opt/q"], { home, cwd: project }));
    expect((await runSilo(["run", "python", "-c", "1"], { home, cwd: project })).stderr).toContain("project build layer was built on an older image");
    ok(await runSilo(["rebuild", "--all"], { home, cwd: project }));
    ok(await runSilo(["rebuild", "--all", "--global"], { home, cwd: project }));
    const after = ok(await runSilo(["run", "python", "-c", "print(*[open('/opt/' + f).read().strip() for f in 'gpq'])"], { home, cwd: project }));
    expect(after.stdout.trim()).toBe("g p q");
    expect(after.stderr).not.toContain("older image");
  });
});

describe("registry postInstall", () => {
  test("is baked into the global layer at install, once per image, and kept with the user's global steps", async () => {
    const home = scratch(makeHome());
    const project = scratchProject("");
    // A registry entry as `silo registry update` would cache it.
    mkdirSync(join(home, "registry/current"), { recursive: true });
    writeFileSync(
      join(home, "registry/current/baked.toml"),
      [
        'name = "baked"',
        'description = "a tool with install steps"',
        'image = "docker.io/library/python"',
        'shims = ["baked:python3"]',
        'postInstall = ["mkdir -p /opt/baked && echo one > /opt/baked/step1", "echo two > /opt/baked/step2 && rm /etc/debian_version"]',
        "[versions]",
        'default = "3.11-slim"',
        'available = ["3.11-slim"]',
      ].join("\n"),
    );
    const inst = ok(await runSilo(["install", "baked"], { home }));
    expect(inst.stderr).toContain("running its install steps");
    const base = join(home, "builds/baked");
    const meta = JSON.parse(readFileSync(join(base, "current/build.json"), "utf8"));
    expect(meta.scope).toBe("global");
    expect(meta.steps.map((s: { origin: string }) => s.origin)).toEqual(["postInstall", "postInstall"]);
    const r = ok(await runSilo(["run", "baked", "-c", "import os; print(open('/opt/baked/step1').read().strip(), open('/opt/baked/step2').read().strip(), os.path.exists('/etc/debian_version'))"], { home, cwd: project }));
    expect(r.stdout.trim()).toBe("one two False");
    // Installing again on the same image does not re-run the steps.
    const gen = generations(base);
    const again = ok(await runSilo(["install", "baked"], { home }));
    expect(again.stderr).not.toContain("running its install steps");
    expect(generations(base)).toEqual(gen);
    // A user's global step survives a re-bake (here: forced by a rebuild of the global layer).
    ok(await runSilo(["build", "--global", "baked", "sh", "-c", "echo mine > /opt/mine"], { home, cwd: project }));
    ok(await runSilo(["rebuild", "baked", "--global"], { home, cwd: project }));
    const all = ok(await runSilo(["run", "baked", "-c", "print(*sorted(__import__('os').listdir('/opt')))"], { home, cwd: project }));
    expect(all.stdout.trim()).toBe("baked mine");
    expect(readdirSync(base).filter((n) => n.startsWith("tmp-"))).toEqual([]);
  });
});
