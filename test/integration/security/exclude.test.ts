// `[mount] exclude` with gitignore-style globs. THREATS.md invariant 9 (fail closed): a pattern silo
// cannot honour is a config error naming the file and the pattern, never silently ignored — before this,
// `exclude = ["*.pem", "**/.env"]` left `k.pem` readable with no word said. And the project-content promise
// at the top of THREATS.md: what the user hides stays out of the sandbox; a matched symlink never leads the
// expansion out of the project (invariant 6's "one project cannot reach another" applies to it too).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, pyJson } from "../isolation/_helpers.ts";

const T = 120_000;
let home: string;

beforeAll(async () => {
  home = await installedHome("python@3.11-slim");
}, T);
afterAll(cleanUp);

const FILES = {
  "k.pem": "ROOT KEY",
  "deep/er/k.pem": "DEEP KEY",
  ".env": "TOKEN=root",
  "app/.env": "TOKEN=app",
  "secrets/api.key": "API KEY",
  "notes.txt": "just notes",
  "keys/private.txt": "PRIVATE",
};

/** What the sandbox reads at each path: the content, or the names in a directory. */
const READ = `
out = {}
for p in ["k.pem", "deep/er/k.pem", ".env", "app/.env", "notes.txt", "keys/private.txt", "alias.pem", "far.pem"]:
    try: out[p] = open(p).read()
    except Exception as e: out[p] = type(e).__name__
# A directory the host user cannot list is no barrier to the sandbox: it owns it, and may open it up.
try:
    os.chmod("locked", 0o700)
    out["locked/k.pem"] = open("locked/k.pem").read()
except Exception as e: out["locked/k.pem"] = type(e).__name__
out["secrets"] = sorted(os.listdir("secrets"))
print(json.dumps(out))`;

function project(toml: string): string {
  const dir = makeProject(toml, FILES);
  // A link to a file inside the project, and one to a secret of another directory on the host.
  symlinkSync("keys/private.txt", join(dir, "alias.pem"));
  const elsewhere = tmp("silo-elsewhere-");
  writeFileSync(join(elsewhere, "other.pem"), "ANOTHER PROJECT'S KEY");
  symlinkSync(join(elsewhere, "other.pem"), join(dir, "far.pem"));
  mkdirSync(join(dir, "locked"));
  writeFileSync(join(dir, "locked/k.pem"), "LOCKED KEY");
  chmodSync(join(dir, "locked"), 0);
  return dir;
}

describe("[mount] exclude globs", () => {
  test("control: without an exclude, the sandbox reads every one of them", async () => {
    const r = await pyJson<Record<string, unknown>>(home, project(""), READ);
    expect(r).toEqual({
      "k.pem": "ROOT KEY",
      "deep/er/k.pem": "DEEP KEY",
      ".env": "TOKEN=root",
      "app/.env": "TOKEN=app",
      "notes.txt": "just notes",
      "keys/private.txt": "PRIVATE",
      "alias.pem": "PRIVATE",
      "far.pem": "FileNotFoundError", // the host path behind it is not in the sandbox at all
      "locked/k.pem": "LOCKED KEY",
      secrets: ["api.key"],
    });
  }, T);

  test("`*.pem`, `**/.env` and `secrets/` hide what they match at any depth (untrusted config), and nothing else", async () => {
    const r = await pyJson<Record<string, unknown>>(home, project(`[mount]\nexclude = ["*.pem", "**/.env", "secrets/"]\n`), READ);
    // Root lists the locked directory and hides the key in it; an unprivileged walk cannot, and hides it whole.
    expect(["", "FileNotFoundError"]).toContain(r["locked/k.pem"] as string);
    delete r["locked/k.pem"];
    expect(r).toEqual({
      "k.pem": "",
      "deep/er/k.pem": "",
      ".env": "",
      "app/.env": "",
      "notes.txt": "just notes",
      // A matched link inside the project hides its target; one that leads out is left alone (nothing there).
      "keys/private.txt": "",
      "alias.pem": "",
      "far.pem": "FileNotFoundError",
      secrets: [],
    });
  }, T);

  test("an anchored glob hides only under its directory", async () => {
    const r = await pyJson<Record<string, unknown>>(home, project(`[mount]\nexclude = ["/deep/**/*.pem", "app/.e?v"]\n`), READ);
    expect(r).toMatchObject({ "k.pem": "ROOT KEY", "deep/er/k.pem": "", ".env": "TOKEN=root", "app/.env": "" });
  }, T);

  test("an unsupported pattern is a config error naming the file, its line and the pattern: exit 125, nothing runs", async () => {
    const dir = project(`tools = ["python"]\n[mount]\nexclude = ["*.pem", "!public.pem"]\n`);
    const r = await runSilo(["run", "python", "-c", "open('ran', 'w').write('1')"], { home, cwd: dir });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain(`${dir}/silo.toml:3:1: mount.exclude[1]: \`!public.pem\` is not a supported exclude pattern`);
    expect(r.stderr).not.toMatch(/\.ts:\d+/);
    expect(existsSync(join(dir, "ran"))).toBe(false);
  }, T);
});
