// The git identity passed into sandboxes (app/git-identity.ts): user.name and user.email from the host's
// global and system config (includes followed), never the project's .git/config, nothing else of the
// config; cached, and asked again when a file it came from changes.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gitIdentityEnv, readGitIdentity } from "../../../src/app/git-identity.ts";
import { homePaths } from "../../../src/core/paths.ts";
import { tmp } from "../../helpers/silo.ts";

const VARS = ["HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "PATH"];
let saved: Record<string, string | undefined>;
let user: string;
let home: ReturnType<typeof homePaths>;

beforeEach(() => {
  saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
  user = tmp("silo-gitid-user-");
  home = homePaths(tmp("silo-gitid-home-"));
  process.env.HOME = user;
  delete process.env.XDG_CONFIG_HOME;
  delete process.env.GIT_CONFIG_GLOBAL;
  delete process.env.GIT_CONFIG_SYSTEM;
  process.env.GIT_CONFIG_NOSYSTEM = "1"; // the machine's /etc/gitconfig is not the test's
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("git identity", () => {
  test("name and email from ~/.gitconfig and the file it includes; nothing else of the config", () => {
    writeFileSync(join(user, ".gitconfig"), `[user]\n\tname = Ada Host\n[include]\n\tpath = ~/.gitconfig.local\n[credential]\n\thelper = store\n[url "https://x:secret@example.com/"]\n\tinsteadOf = https://example.com/\n`);
    writeFileSync(join(user, ".gitconfig.local"), "[user]\n\temail = ada@example.com\n");
    expect(gitIdentityEnv(home)).toEqual({
      GIT_AUTHOR_NAME: "Ada Host",
      GIT_COMMITTER_NAME: "Ada Host",
      GIT_AUTHOR_EMAIL: "ada@example.com",
      GIT_COMMITTER_EMAIL: "ada@example.com",
    });
  });

  test("the XDG file counts; the last value wins; GIT_CONFIG_COUNT of the calling shell adds nothing", () => {
    mkdirSync(join(user, ".config/git"), { recursive: true });
    writeFileSync(join(user, ".config/git/config"), "[user]\n\tname = From XDG\n\temail = xdg@example.com\n");
    writeFileSync(join(user, ".gitconfig"), "[user]\n\tname = From Home\n");
    Object.assign(process.env, { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "user.email", GIT_CONFIG_VALUE_0: "env@example.com" });
    expect(readGitIdentity(home)).toEqual({ name: "From Home", email: "xdg@example.com" });
  });

  test("the project's .git/config is never read, whatever the working directory", () => {
    const project = tmp("silo-gitid-proj-");
    Bun.spawnSync(["git", "init", "-q", project]);
    writeFileSync(join(project, ".git/config"), "[user]\n\tname = Hostile\n\temail = evil@example.com\n");
    writeFileSync(join(user, ".gitconfig"), "[user]\n\tname = Ada Host\n");
    // What a plain `git config` in the project would have said.
    expect(Bun.spawnSync(["git", "config", "--get", "user.name"], { cwd: project }).stdout.toString().trim()).toBe("Hostile");
    const cwd = process.cwd();
    process.chdir(project);
    try {
      expect(readGitIdentity(home)).toEqual({ name: "Ada Host" });
    } finally {
      process.chdir(cwd);
    }
  });

  test("cached: answered without git until a file it came from (an included one too) changes", () => {
    writeFileSync(join(user, ".gitconfig"), "[include]\n\tpath = ~/inc\n");
    writeFileSync(join(user, "inc"), "[user]\n\tname = First\n");
    expect(readGitIdentity(home)).toEqual({ name: "First" });
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent"; // no git to ask: only the cache can answer
    expect(readGitIdentity(home)).toEqual({ name: "First" });
    process.env.PATH = path;
    writeFileSync(join(user, "inc"), "[user]\n\tname = Second\n");
    expect(readGitIdentity(home)).toEqual({ name: "Second" });
    // A file that did not exist when the answer was cached appears.
    mkdirSync(join(user, ".config/git"), { recursive: true });
    writeFileSync(join(user, ".config/git/config"), "[user]\n\temail = new@example.com\n");
    expect(readGitIdentity(home)).toEqual({ name: "Second", email: "new@example.com" });
    // Another HOME is another answer.
    process.env.HOME = tmp("silo-gitid-other-");
    expect(readGitIdentity(home)).toEqual({});
  });

  test("no git config at all, or no git on PATH: no identity", () => {
    expect(gitIdentityEnv(home)).toEqual({});
    process.env.PATH = "/nonexistent";
    writeFileSync(join(user, ".gitconfig"), "[user]\n\tname = Unseen\n");
    expect(gitIdentityEnv(home)).toEqual({});
  });
});
