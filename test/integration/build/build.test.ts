/**
 * `silo build` end to end through dist/silo and the fixture registry: what a build installs is in the next
 * `silo run` with its full content; deletions of image files stick; global and project layers stack; a
 * killed build leaves the old layer; rebuild reproduces a layer from its stored script. Package installs
 * use local packages only (the sandbox has no network here).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { siloBin, tmp } from "../../helpers/silo.ts";
import { describeTree } from "../../unit/cache/_tree.ts";
import { filesUnder, generations, layerRoot, ok, removeScratch, scratch, scratchHome, scratchProject, sha, shaFile, siloIn } from "./_helpers.ts";

afterAll(removeScratch);

const SITE = "/usr/local/lib/python3.11/dist-packages";

/** A pip-installable project: pkg/ with a module of ~200 kB and a binary data file. */
function pipProject(): string {
  const big = "DATA = " + JSON.stringify("x".repeat(200_000)) + "\ndef hello():\n    return 'hello from mypkg'\n";
  const bin = new Uint8Array(150_000).map((_, i) => (i * 31) & 0xff);
  const root = scratchProject("", {
    "pkg/setup.py": `from setuptools import setup\nsetup(name="mypkg", version="1.0", packages=["mypkg"], package_data={"mypkg": ["blob.bin"]})\n`,
    "pkg/mypkg/__init__.py": big,
  });
  writeFileSync(join(root, "pkg/mypkg/blob.bin"), bin);
  return root;
}

describe("silo build", () => {
  let home: string;
  let silo: ReturnType<typeof siloIn>;

  beforeAll(async () => {
    expect(existsSync(siloBin)).toBe(true);
    home = await scratchHome("python", "node");
    silo = siloIn(home);
  });

  test("a pip install made by silo build is in the next run, every file with its full content", async () => {
    const root = pipProject();
    ok(await silo(root, "build", "python", "pip", "install", "--no-compile", "./pkg"));
    const layer = layerRoot(join(root, ".silo/python"));
    // On the host: the package files are in the layer with the size of their sources.
    const files = filesUnder(join(layer, SITE.slice(1), "mypkg"));
    expect(files["__init__.py"]).toBe(lstatSync(join(root, "pkg/mypkg/__init__.py")).size);
    expect(files["blob.bin"]).toBe(150_000);
    // In the sandbox: importable, byte for byte what the project holds.
    const r = ok(await silo(root, "run", "python", "-c", "import mypkg, hashlib, os\nd = os.path.dirname(mypkg.__file__)\nfor f in ('__init__.py', 'blob.bin'): print(hashlib.sha256(open(os.path.join(d, f), 'rb').read()).hexdigest())\nprint(mypkg.hello())"));
    expect(r.stdout.trim().split("\n")).toEqual([shaFile(join(root, "pkg/mypkg/__init__.py")), shaFile(join(root, "pkg/mypkg/blob.bin")), "hello from mypkg"]);
    // Every file pip recorded is there with the size and hash it recorded (RECORD: path,sha256=<b64>,size).
    const check = ok(await silo(root, "run", "python", "-c", [
      "import base64, hashlib, os, csv",
      `site = ${JSON.stringify(SITE)}`,
      "rec = [d for d in os.listdir(site) if d.startswith('mypkg-')][0]",
      "bad = 0",
      "for path, h, size in csv.reader(open(os.path.join(site, rec, 'RECORD'))):",
      "    if not h: continue",
      "    data = open(os.path.normpath(os.path.join(site, path)), 'rb').read()",
      "    ok = len(data) == int(size) and 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode() == h",
      "    bad += not ok",
      "print('bad', bad)",
    ].join("\n")));
    expect(check.stdout.trim()).toBe("bad 0");
    // A run in a sandbox without the layer (another project) does not have it.
    const other = scratchProject("");
    const miss = await silo(other, "run", "python", "-c", "import mypkg");
    expect(miss.exitCode).toBe(1);
  });

  test("an npm install -g made by silo build is in the next run with its full content", async () => {
    const data = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const pkg = {
      "package/package.json": JSON.stringify({ name: "local-hello", version: "1.0.0", bin: { "local-hello": "cli.js" } }),
      "package/cli.js": "#!/usr/bin/env node\nconst fs = require('fs');\nconst d = fs.readFileSync(__dirname + '/data.bin');\nconsole.log('local-hello', d.length, require('crypto').createHash('sha256').update(d).digest('hex'));\n",
      "package/data.bin": data,
    };
    const root = scratchProject("");
    await Bun.write(join(root, "local-hello-1.0.0.tgz"), await new Bun.Archive(pkg, { compress: "gzip" }).bytes());
    ok(await silo(root, "build", "node", "npm", "install", "-g", "--offline", "./local-hello-1.0.0.tgz"));
    // The installed command, found on the sandbox's PATH (/usr/local/bin), runs from the layer.
    const r = ok(await silo(root, "run", "node", "-e", "require('child_process').execFileSync('local-hello', { stdio: 'inherit' })"));
    expect(r.stdout.trim()).toBe(`local-hello 300000 ${sha(data)}`);
  });

  test("a build that deletes image files: they stay deleted, later builds on top keep them deleted", async () => {
    const root = pipProject();
    const before = ok(await silo(root, "run", "python", "-c", "import os; print(os.path.exists('/etc/debian_version'), os.path.isdir('/usr/share/doc'))"));
    expect(before.stdout.trim()).toBe("True True");
    ok(await silo(root, "build", "python", "sh", "-c", "rm /etc/debian_version && rm -rf /usr/share/doc && mkdir /usr/share/doc && echo mine > /usr/share/doc/only"));
    const base = join(root, ".silo/python");
    // On the host: a whiteout (character device 0/0) and an opaque directory.
    const wh = lstatSync(join(layerRoot(base), "etc/debian_version"));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    ok(await silo(root, "build", "python", "pip", "install", "--no-compile", "./pkg"));
    const r = ok(await silo(root, "run", "python", "-c", "import os, mypkg; print(os.path.exists('/etc/debian_version'), sorted(os.listdir('/usr/share/doc')), mypkg.hello())"));
    expect(r.stdout.trim()).toBe("False ['only'] hello from mypkg");
    // One generation remains: the old one was dropped once the new one was current.
    expect(generations(base)).toHaveLength(1);
  });

  test("--global and project layers stack: image → global → project", async () => {
    const root = scratchProject("");
    const other = scratchProject("");
    ok(await silo(root, "build", "--global", "python", "sh", "-c", "mkdir -p /opt/s && echo global > /opt/s/g && echo global > /opt/s/both"));
    ok(await silo(root, "build", "python", "sh", "-c", "cat /opt/s/g > /opt/s/seen && echo project > /opt/s/both"));
    const r = ok(await silo(root, "run", "python", "-c", "import os; print(*[open('/opt/s/' + f).read().strip() for f in sorted(os.listdir('/opt/s'))])"));
    expect(r.stdout.trim()).toBe("project global global"); // both, g, seen
    const o = ok(await silo(other, "run", "python", "-c", "import os; print(sorted(os.listdir('/opt/s')), open('/opt/s/both').read().strip())"));
    expect(o.stdout.trim()).toBe("['both', 'g'] global");
    ok(await silo(root, "build", "--global", "python", "--remove"));
    expect((await silo(other, "run", "python", "-c", "import os; os.stat('/opt/s')")).exitCode).toBe(1);
  });

  test("a build killed half-way (SIGKILL) or interrupted (SIGINT) leaves the old layer working", async () => {
    const root = scratchProject("");
    const base = join(root, ".silo/python");
    ok(await silo(root, "build", "python", "sh", "-c", "echo old > /opt/a"));
    const gen = generations(base);
    for (const sig of ["SIGKILL", "SIGINT"] as const) {
      const proc = Bun.spawn([siloBin, "build", "python", "sh", "-c", "echo new > /opt/b && rm /opt/a && sleep 60"], {
        cwd: root,
        env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/root", SILO_HOME: home },
        stdout: "ignore",
        stderr: "pipe",
      });
      // Wait until the build has written into its capture dir: half-way.
      const deadline = Date.now() + 60_000;
      const started = () => readdirSync(base).some((n) => n.startsWith("tmp-") && existsSync(join(base, n, "upper/opt/b")));
      while (!started() && Date.now() < deadline) await Bun.sleep(50);
      expect(started()).toBe(true);
      proc.kill(sig);
      const code = await proc.exited;
      if (sig === "SIGINT") expect(code).toBe(130);
      else expect(proc.signalCode).toBe("SIGKILL");
      const r = ok(await silo(root, "run", "python", "-c", "import os; print(open('/opt/a').read().strip(), os.path.exists('/opt/b'))"));
      expect(r.stdout.trim()).toBe("old False");
      expect(generations(base)).toEqual(gen);
    }
    // The next build clears what the killed one left and works.
    ok(await silo(root, "build", "python", "sh", "-c", "echo c > /opt/c"));
    expect(readdirSync(base).filter((n) => n.startsWith("tmp-"))).toEqual([]);
    const r = ok(await silo(root, "run", "python", "-c", "print(open('/opt/a').read().strip(), open('/opt/c').read().strip())"));
    expect(r.stdout.trim()).toBe("old c");
  });

  test("rebuild re-runs the stored script on a fresh base and reproduces the layer", async () => {
    const root = pipProject();
    const base = join(root, ".silo/python");
    ok(await silo(root, "build", "python", "pip", "install", "--no-compile", "./pkg"));
    ok(await silo(root, "build", "python", "sh", "-c", "rm /etc/debian_version; echo two > /opt/two"));
    const meta = JSON.parse(readFileSync(join(base, "current/build.json"), "utf8"));
    expect(meta.steps.map((s: { argv: string[] }) => s.argv)).toEqual([
      ["pip", "install", "--no-compile", "./pkg"],
      ["sh", "-c", "rm /etc/debian_version; echo two > /opt/two"],
    ]);
    const before = describeTree(layerRoot(base), { mtime: false });
    const genBefore = generations(base);
    ok(await silo(root, "rebuild", "python"));
    expect(generations(base)).not.toEqual(genBefore);
    expect(describeTree(layerRoot(base), { mtime: false })).toEqual(before);
    // --setup replaces the script.
    ok(await silo(root, "rebuild", "python", "--setup", "echo setup > /opt/setup"));
    const r = ok(await silo(root, "run", "python", "-c", "import os; print(open('/opt/setup').read().strip(), os.path.exists('/opt/two'))"));
    expect(r.stdout.trim()).toBe("setup False");
    expect(JSON.parse(readFileSync(join(base, "current/build.json"), "utf8")).steps).toEqual([{ script: "echo setup > /opt/setup", origin: "user" }]);
  });

  test("a failing build keeps the previous layer and passes the exit code through", async () => {
    const root = scratchProject("");
    ok(await silo(root, "build", "python", "sh", "-c", "echo keep > /opt/keep"));
    const gen = generations(join(root, ".silo/python"));
    const r = await silo(root, "build", "python", "sh", "-c", "rm /opt/keep; exit 3");
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("unchanged");
    expect(generations(join(root, ".silo/python"))).toEqual(gen);
    expect(ok(await silo(root, "run", "python", "-c", "print(open('/opt/keep').read().strip())")).stdout.trim()).toBe("keep");
  });

  test("a project layer needs a silo.toml; --remove drops it", async () => {
    const bare = scratch(tmp("silo-bare-"));
    const r = await silo(bare, "build", "python", "true");
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("silo.toml");
    const root = scratchProject("");
    ok(await silo(root, "build", "python", "sh", "-c", "echo x > /opt/x"));
    expect(readFileSync(join(root, ".silo/.gitignore"), "utf8")).toContain("*");
    ok(await silo(root, "build", "python", "--remove"));
    expect(existsSync(join(root, ".silo/python/current"))).toBe(false);
    expect(generations(join(root, ".silo/python"))).toEqual([]);
    expect((await silo(root, "run", "python", "-c", "open('/opt/x')")).exitCode).toBe(1);
  });

  test("a hostile .silo link in a repository is not stacked", async () => {
    const root = scratchProject("");
    const outside = scratch(tmp("silo-outside-"));
    mkdirSync(join(outside, "g-abc-000000000000/root/opt"), { recursive: true });
    writeFileSync(join(outside, "g-abc-000000000000/root/opt/secret"), "host secret");
    mkdirSync(join(root, ".silo"), { recursive: true });
    Bun.spawnSync(["ln", "-s", outside, join(root, ".silo/python")]);
    chmodSync(outside, 0o755);
    Bun.spawnSync(["ln", "-s", "g-abc-000000000000", join(outside, "current")]);
    expect(existsSync(join(root, ".silo/python/current/root/opt/secret"))).toBe(true); // reachable on the host
    const r = await silo(root, "run", "python", "-c", "open('/opt/secret')");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("resolves outside");
  });
});
