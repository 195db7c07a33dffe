// What the sandbox can see and change of the host's filesystem. Every probe first shows the thing is there
// on the host, then that it is not in the sandbox. Runs through the built binary: `silo run python ...`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, makeFakeHome, ok, pyJson, SECRET_PATHS } from "./_helpers.ts";

const T = 60_000;

describe("isolation: filesystem", () => {
  let home: string;
  let fakeHome: string;
  beforeAll(async () => {
    home = await installedHome("python@3.11-slim");
    fakeHome = makeFakeHome();
  }, 300_000);
  afterAll(cleanUp);

  const probeSecrets = (h: string) =>
    `print(json.dumps({p: os.path.exists(p) for p in ${JSON.stringify(SECRET_PATHS.flatMap((p) => [join(h, p), join(h, p.split("/")[0]!)]))}} | {"~/" + p: os.path.exists(os.path.expanduser("~/" + p)) for p in ${JSON.stringify(SECRET_PATHS)}}))`;

  for (const where of ["a project outside home", "a project in a subdirectory of home"]) {
    test(`~/.ssh, ~/.aws, ~/.gnupg, ~/.config, ~/.kube and a home canary are absent (${where})`, async () => {
      for (const p of SECRET_PATHS) expect(readFileSync(join(fakeHome, p), "utf8")).toContain("secret");
      const project = where.includes("subdirectory") ? join(fakeHome, "src", "proj") : makeProject("");
      mkdirSync(project, { recursive: true });
      writeFileSync(join(project, "silo.toml"), "");
      const seen = await pyJson<Record<string, boolean>>(home, project, probeSecrets(fakeHome), { HOME: fakeHome });
      expect(Object.keys(seen).length).toBeGreaterThan(SECRET_PATHS.length);
      expect(Object.entries(seen).filter(([, v]) => v)).toEqual([]);
    }, T);
  }

  test("a file outside the project is invisible, the project is at /workspace, cwd follows", async () => {
    const outside = join(tmp(), "canary.txt");
    writeFileSync(outside, "host only");
    const project = makeProject("", { "sub/dir/keep.txt": "k" });
    const r = await pyJson<{ outside: boolean; cwd: string; keep: string }>(
      home,
      join(project, "sub/dir"),
      `print(json.dumps({"outside": os.path.exists(${JSON.stringify(outside)}), "cwd": os.getcwd(), "keep": open("keep.txt").read()}))`,
    );
    expect(r).toEqual({ outside: false, cwd: "/workspace/sub/dir", keep: "k" });
  }, T);

  test("writes outside /workspace are gone after exit and never reach the host", async () => {
    const project = makeProject("");
    const mark = `silo-canary-${process.pid}-${Date.now()}`;
    const paths = [`/etc/${mark}`, `/root/${mark}`, `/tmp/${mark}`, `/usr/local/lib/${mark}`, `/var/tmp/${mark}`];
    const wrote = await pyJson<string[]>(
      home,
      project,
      `out = []\nfor p in ${JSON.stringify(paths)}:\n    open(p, "w").write("x"); out.append(p)\nprint(json.dumps(out))`,
    );
    expect(wrote).toEqual(paths); // the writes themselves succeed inside
    const again = await pyJson<boolean[]>(home, project, `print(json.dumps([os.path.exists(p) for p in ${JSON.stringify(paths)}]))`);
    expect(again).toEqual(paths.map(() => false));
    for (const p of paths) expect(existsSync(p)).toBe(false);
    const found = Bun.spawnSync(["find", home, "-name", `${mark}*`], { stdout: "pipe" }).stdout.toString();
    expect(found).toBe("");
  }, T);

  test("a symlink in the project pointing at a host secret leads nowhere", async () => {
    const project = makeProject("");
    const secret = join(fakeHome, ".ssh/id_ed25519");
    symlinkSync(secret, join(project, "key"));
    expect(readFileSync(join(project, "key"), "utf8")).toContain("secret"); // on the host it leads there
    const r = await runSilo(["run", "python", "-c", "open('/workspace/key').read()"], { home, cwd: project, env: { HOME: fakeHome } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("FileNotFoundError");
  }, T);

  test("files created in /workspace belong to the user who ran silo", async () => {
    const project = makeProject("");
    ok(await runSilo(["run", "python", "-c", "import os; os.makedirs('out/deep'); open('out/deep/f', 'w').write('x')"], { home, cwd: project }));
    for (const p of ["out", "out/deep", "out/deep/f"]) {
      const st = statSync(join(project, p));
      expect({ p, uid: st.uid, gid: st.gid }).toEqual({ p, uid: process.getuid!(), gid: process.getgid!() });
    }
    // ...while inside the sandbox they are root's, as images expect.
    expect(await pyJson(home, project, `print(json.dumps([os.getuid(), os.stat("out/deep/f").st_uid]))`)).toEqual([0, 0]);
  }, T);

  test("hostile passFiles are refused: ../ escapes, absolute paths, symlinks", async () => {
    const proj = join(fakeHome, "work", `p${Date.now()}`);
    mkdirSync(proj, { recursive: true });
    symlinkSync(join(fakeHome, ".ssh/id_ed25519"), join(proj, ".npmrc"));
    for (const entry of ["../../.ssh/id_ed25519", join(fakeHome, ".ssh/id_ed25519"), ".npmrc"]) {
      writeFileSync(join(proj, "silo.toml"), `passFiles = [${JSON.stringify(entry)}]\n`);
      ok(await runSilo(["trust"], { home, cwd: proj, env: { HOME: fakeHome } }));
      const r = await runSilo(["run", "python", "-c", "print('ran')"], { home, cwd: proj, env: { HOME: fakeHome } });
      expect({ entry, code: r.exitCode, ran: r.stdout.includes("ran") }).toEqual({ entry, code: 125, ran: false });
      expect(r.stderr).toContain("passFiles");
    }
    // A legitimate one works, so the refusals above are about the paths.
    writeFileSync(join(proj, "token.txt"), "fine");
    writeFileSync(join(proj, "silo.toml"), `passFiles = ["token.txt"]\n`);
    ok(await runSilo(["trust"], { home, cwd: proj, env: { HOME: fakeHome } }));
    ok(await runSilo(["run", "python", "-c", "print(open('token.txt').read())"], { home, cwd: proj, env: { HOME: fakeHome } }));
  }, T);

  test("[mount] exclude hides a path behind an empty, writable, discarded directory", async () => {
    const project = makeProject(`[mount]\nexclude = ["secrets"]\n`, { "secrets/api.key": "k" });
    const r = await pyJson(home, project, `open("secrets/new", "w").write("x")\nprint(json.dumps(sorted(os.listdir("secrets"))))`);
    expect(r).toEqual(["new"]);
    expect(readFileSync(join(project, "secrets/api.key"), "utf8")).toBe("k");
    expect(existsSync(join(project, "secrets/new"))).toBe(false);
  }, T);
});
