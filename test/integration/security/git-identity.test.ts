// Invariant 1 (THREATS.md): no host code from project bytes; and the promise that a project cannot read
// the host. silo passes the user's git identity into every sandbox (GIT_AUTHOR_*/GIT_COMMITTER_*), read
// with host git from the global and system config. The project's `.git/` is the attacker's: host git run
// in the project would run its `core.fsmonitor`, and its `include.path` pulls `[user]` out of any host
// file into the answer. Positive controls first (host git in the project does both), then through
// dist/silo: the identity is the global one, and the planted fsmonitor never ran.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, pyJson } from "../isolation/_helpers.ts";

const T = 180_000;

describe("the git identity in the sandbox is read from the user's config, never the project's", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python");
  }, T);
  afterAll(cleanUp);

  test("a planted .git/config (fsmonitor, an include of another host file) changes nothing", async () => {
    const user = tmp("silo-gitid-user-");
    writeFileSync(join(user, ".gitconfig"), "[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n");
    // A host file of the user's that the project should never read: another identity (a work repository's config).
    const other = join(tmp("silo-gitid-other-"), "config");
    writeFileSync(other, "[user]\n\temail = ada@secret-employer.example\n");
    const marker = join(tmp("silo-gitid-marker-"), "fsmonitor-ran");
    const project = makeProject();
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: user, GIT_CONFIG_NOSYSTEM: "1" };
    expect(Bun.spawnSync(["git", "init", "-q", project], { env }).exitCode).toBe(0);
    writeFileSync(
      join(project, ".git/config"),
      `[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch ${marker}; false\n[include]\n\tpath = ${other}\n`,
    );

    // Positive controls: host git in the project reads the other file, and runs the planted fsmonitor.
    const hostGit = (...args: string[]) => Bun.spawnSync(["git", ...args], { cwd: project, env, stdout: "pipe", stderr: "pipe" });
    expect(hostGit("config", "--get", "user.email").stdout.toString().trim()).toBe("ada@secret-employer.example");
    hostGit("status");
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);

    // Through silo (a fresh SILO_HOME state: the identity is asked of git now, not read from a cache).
    rmSync(join(home, "state/git-identity.json"), { force: true });
    const got = await pyJson<Record<string, string | null>>(
      home,
      project,
      `print(json.dumps({k: os.environ.get(k) for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")}))`,
      env,
    );
    expect(got).toEqual({
      GIT_AUTHOR_NAME: "Ada Lovelace",
      GIT_AUTHOR_EMAIL: "ada@example.com",
      GIT_COMMITTER_NAME: "Ada Lovelace",
      GIT_COMMITTER_EMAIL: "ada@example.com",
    });
    expect(existsSync(join(home, "state/git-identity.json"))).toBe(true);
    expect(existsSync(marker)).toBe(false);
  }, T);
});
