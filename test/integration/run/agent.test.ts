// An AI agent's life in silo, end to end through dist/silo, with nothing from the internet: a real npm CLI
// package (made and `npm pack`ed here) installed by `silo install` from a static npm registry on loopback,
// through the egress proxy's install-time allowlist; run through its shim; `git init && git commit` in the
// sandbox with the user's identity from the host's git config (and nothing else of it); a push over HTTPS
// with a token the user passes on purpose (passEnv); and the agent's state dir kept per project.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { makeHome, makeProject, repoRoot, runSilo, tmp, type SiloResult } from "../../helpers/silo.ts";
import { SERVER_ADDR, gitHttpsServer, makeIpCert, npmRegistry, packAgent } from "./_agent.ts";

function ok(r: SiloResult): SiloResult {
  if (r.exitCode !== 0) expect(`exit ${r.exitCode}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe("exit 0");
  return r;
}

const claudeCode = parse(readFileSync(join(repoRoot, "registry/claude-code.toml"), "utf8")) as { postInstall: string[] };
const TOKEN = "tok-3b1f0c9e-only-for-this-test";
// The credential helper the README suggests: the token comes from the environment, never from a file.
const HELPER = `!f() { test "$1" = get && printf "username=x-access-token\\npassword=%s\\n" "$GIT_TOKEN"; }; f`;

describe("an agent CLI from an npm registry, end to end", () => {
  let home: string;
  let user: string;
  let registry: ReturnType<typeof npmRegistry>;
  let forge: ReturnType<typeof gitHttpsServer>;
  let forgeRoot: string;
  let cert: { cert: string; key: string };
  /** The host user's environment: their HOME (with a .gitconfig), silo's shims first on PATH. */
  let userEnv: Record<string, string>;
  const shim = () => join(home, "bin", "silo-agent");
  const agent = (cwd: string, args: string[], env: Record<string, string> = {}) => runSilo(args, { home, cwd, bin: shim(), env: { ...userEnv, ...env } });

  beforeAll(async () => {
    registry = npmRegistry(packAgent());
    forgeRoot = tmp("silo-forge-");
    spawnSync("git", ["init", "-q", "--bare", join(forgeRoot, "repo.git")]);
    cert = makeIpCert(tmp("silo-forge-cert-"), SERVER_ADDR);
    forge = gitHttpsServer(forgeRoot, TOKEN, cert);

    user = tmp("silo-agent-user-");
    // What the sandbox must get (name, email) and what it must not (a credential helper, a url rewrite
    // carrying a password, an include's other keys).
    writeFileSync(
      join(user, ".gitconfig"),
      `[user]\n\tname = Ada Lovelace\n[include]\n\tpath = ~/.gitconfig-email\n[credential]\n\thelper = store --file ~/.git-credentials\n[url "https://ada:hunter2@example.com/"]\n\tinsteadOf = https://example.com/\n`,
    );
    writeFileSync(join(user, ".gitconfig-email"), "[user]\n\temail = ada@example.com\n[alias]\n\tsecret = !echo leaked\n");
    home = makeHome();
    userEnv = { HOME: user, GIT_CONFIG_NOSYSTEM: "1", PATH: `${join(home, "bin")}:/usr/local/bin:/usr/bin:/bin` };
    // A registry entry as `silo registry update` would cache it: claude-code's shape (an npm package
    // installed by postInstall into node's image, a per-project state dir), npm pointed at the local registry.
    mkdirSync(join(home, "registry/current"), { recursive: true });
    writeFileSync(
      join(home, "registry/current/agent-fixture.toml"),
      [
        'name = "agent-fixture"',
        'description = "an npm CLI standing in for an AI agent"',
        'image = "docker.io/library/node"',
        'shims = ["silo-agent"]',
        // claude-code's own first step (git when the image has none: a no-op on the fixture image, which has it).
        `postInstall = [${JSON.stringify(claudeCode.postInstall[0])}, "npm install -g silo-test-agent"]`,
        "[versions]",
        'default = "22-slim"',
        'available = ["22-slim"]',
        "[env]",
        `npm_config_registry = "${registry.url}"`,
        'NPM_CONFIG_UPDATE_NOTIFIER = "false"',
        "[[cache]]",
        'name = "state"',
        'path = "/root/.silo-agent"',
        "[network.proxy]",
        `installAllow = ["${SERVER_ADDR}"]`,
      ].join("\n"),
    );
  });
  afterAll(() => {
    registry.stop();
    forge.stop();
  });

  test("silo install fetches the package through the install-time allowlist; the shim runs it", async () => {
    const inst = ok(await runSilo(["install", "agent-fixture"], { home, env: userEnv }));
    expect(inst.stderr).toContain("running its install steps");
    // npm asked the local registry for the packument and the tarball, through the proxy.
    expect(registry.requests).toContain("GET /silo-test-agent");
    expect(registry.requests).toContain("GET /silo-test-agent/-/silo-test-agent-1.0.0.tgz");
    expect(readdirSync(join(home, "bin"))).toContain("silo-agent");
    const project = makeProject();
    const v = ok(await agent(project, ["--version"]));
    expect(v.stdout.trim()).toBe("silo-agent 1.0.0");
    // At run time the registry is not on the allowlist: installAllow applies only while installing.
    const seen = registry.requests.length;
    const view = await agent(project, ["npm-view", "silo-test-agent"]);
    expect(view.exitCode).not.toBe(0);
    expect(view.stderr).toContain(SERVER_ADDR);
    expect(registry.requests.length).toBe(seen);
  });

  test("git init && git commit in the sandbox carry the host's user.name and user.email, and nothing else of its config", async () => {
    const project = makeProject();
    const env = ok(await agent(project, ["env"]));
    const [vars, config] = [env.stdout.split("\n")[0], env.stdout.split("\n").slice(1).join("\n")];
    expect(vars).toBe("GIT_AUTHOR_EMAIL GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL GIT_COMMITTER_NAME");
    expect(config.trim()).toBe("(no git config)");
    expect(env.stdout).not.toContain("hunter2");
    expect(env.stdout).not.toContain("leaked");

    // The project's own .git/config names someone else: the identity still comes from the host user's config.
    spawnSync("git", ["init", "-q", "-b", "main", project]);
    spawnSync("git", ["config", "user.name", "Mallory"], { cwd: project });
    spawnSync("git", ["config", "user.email", "mallory@example.com"], { cwd: project });
    const c = ok(await agent(project, ["commit", "first commit"]));
    expect(c.stdout.trim()).toBe("Ada Lovelace <ada@example.com>|Ada Lovelace <ada@example.com>|first commit");
    // silo applied the commit to the real repository at exit.
    const log = spawnSync("git", ["log", "-1", "--format=%an <%ae> %s"], { cwd: project, encoding: "utf8", env: { ...process.env, ...userEnv } });
    expect(log.stdout.trim()).toBe("Ada Lovelace <ada@example.com> first commit");
  });

  test("a repository the agent creates with git init: the commit works inside, and the new .git is quarantined at exit", async () => {
    const project = makeProject();
    const c = ok(await agent(project, ["commit", "in a new repository"]));
    expect(c.stdout.trim()).toBe("Ada Lovelace <ada@example.com>|Ada Lovelace <ada@example.com>|in a new repository");
    // A .git the sandbox created is code host git would run (THREATS.md invariant 2): it is not left in the project.
    expect(existsSync(join(project, ".git"))).toBe(false);
    const q = ok(await runSilo(["quarantine", "list"], { home, cwd: project, env: userEnv }));
    expect(q.stdout).toContain(".git");
  });

  test("[env] in the project's silo.toml wins over the host identity", async () => {
    const project = makeProject(`[env]\nGIT_AUTHOR_NAME = "Agent"\nGIT_AUTHOR_EMAIL = "agent@example.com"\n`);
    spawnSync("git", ["init", "-q", "-b", "main", project]);
    const c = ok(await agent(project, ["commit", "by the agent"]));
    expect(c.stdout.trim()).toBe("Agent <agent@example.com>|Ada Lovelace <ada@example.com>|by the agent");
  });

  test("git push over HTTPS with a token passed on purpose (passEnv) through the proxy; without it, refused", async () => {
    const toml = [
      'passEnv = ["GIT_TOKEN"]',
      "[env]",
      'GIT_SSL_CAINFO = "/workspace/ci/forge.pem"',
      'GIT_TERMINAL_PROMPT = "0"',
      'GIT_CONFIG_COUNT = "1"',
      'GIT_CONFIG_KEY_0 = "credential.helper"',
      `GIT_CONFIG_VALUE_0 = '${HELPER}'`,
      "[overrides.agent-fixture.network.proxy]",
      `allow = ["${SERVER_ADDR}"]`,
    ].join("\n");
    const project = makeProject(toml + "\n", { "ci/forge.pem": readFileSync(cert.cert, "utf8"), ".gitignore": "ci/\nsilo.toml\n" });
    ok(await runSilo(["trust"], { home, cwd: project, env: userEnv }));
    spawnSync("git", ["init", "-q", "-b", "main", project]);
    ok(await agent(project, ["commit", "to be pushed"]));
    const url = `${forge.url}/repo.git`;

    // No token in the host's environment: passEnv passes nothing, the forge answers 401, git gives up.
    const denied = await agent(project, ["push", url]);
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/Authentication failed|could not read Username|401/);
    expect(forge.seen.some((s) => s.auth === "ok")).toBe(false);
    expect(forge.seen.some((s) => s.auth === "none")).toBe(true); // it did reach the forge, through the proxy

    const pushed = ok(await agent(project, ["push", url], { GIT_TOKEN: TOKEN }));
    expect(pushed.stdout.trim()).toBe("pushed");
    expect(forge.seen.filter((s) => s.path.endsWith("git-receive-pack")).map((s) => s.auth)).toEqual(["ok"]);
    const remote = spawnSync("git", ["--git-dir", join(forgeRoot, "repo.git"), "log", "-1", "--format=%an <%ae> %s", "main"], { encoding: "utf8" });
    expect(remote.stdout.trim()).toBe("Ada Lovelace <ada@example.com> to be pushed");
    // The token stayed in the environment: nothing of it in the project or its repository.
    const grep = spawnSync("grep", ["-r", "-l", TOKEN, project], { encoding: "utf8" });
    expect(grep.stdout).toBe("");
  });

  test("the agent's state dir survives between runs of a project and is not visible from another", async () => {
    const a = makeProject();
    const b = makeProject();
    expect(ok(await agent(a, ["remember", "one"])).stdout).toBe("one\n");
    expect(ok(await agent(a, ["remember", "two"])).stdout).toBe("one\ntwo\n");
    expect(ok(await agent(b, ["recall"])).stdout).toBe("(nothing)\n");
    expect(ok(await agent(b, ["remember", "bee"])).stdout).toBe("bee\n");
    expect(ok(await agent(a, ["recall"])).stdout).toBe("one\ntwo\n");
  });
});
