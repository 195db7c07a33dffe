/**
 * THREATS.md invariant 3 (widening needs trust, or the user's own command line) for ssh-agent forwarding
 * (issue 13 item 4): `silo run --ssh-agent` forwards the host's agent, a real `ssh-agent` started here,
 * spoken to in the sandbox with the agent protocol (REQUEST_IDENTITIES, 11 → IDENTITIES_ANSWER, 12; the
 * python image has no ssh-add). An untrusted project's `passSshAgent = true` forwards nothing; the trusted
 * same bytes do (the positive control: the setting works where the barrier is absent). SSH_AUTH_SOCK naming
 * something that is not a socket (a directory of the user's) is refused before anything is bound: bwrap
 * would bind whatever the path names, writable (shown first with a plain bwrap on the host).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo, tmp } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "../isolation/_helpers.ts";

let home: string;
let sock: string;
let agentPid = 0;
beforeAll(async () => {
  home = await installedHome("python@3.11-slim");
  const dir = tmp("silo-ssh-");
  sock = join(dir, "agent.sock");
  const key = join(dir, "id_test");
  const agent = spawnSync("ssh-agent", ["-a", sock], { encoding: "utf8" });
  if (agent.status !== 0) throw new Error(`ssh-agent failed: ${agent.stderr}`);
  agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
  if (spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "silo-agent-key", "-f", key]).status !== 0) throw new Error("ssh-keygen failed");
  if (spawnSync("ssh-add", ["-q", key], { env: { ...process.env, SSH_AUTH_SOCK: sock } }).status !== 0) throw new Error("ssh-add failed");
}, 600_000);
afterAll(() => {
  if (agentPid > 0) process.kill(agentPid);
  cleanUp();
});

/** REQUEST_IDENTITIES over $SSH_AUTH_SOCK; prints the socket path, the reply type, and the keys' comments. */
const LIST_KEYS = `
import os, socket, struct
path = os.environ.get("SSH_AUTH_SOCK")
if not path:
    print("no-agent"); raise SystemExit(0)
s = socket.socket(socket.AF_UNIX); s.connect(path)
s.sendall(struct.pack(">IB", 1, 11))
n = struct.unpack(">I", s.recv(4))[0]
body = b""
while len(body) < n: body += s.recv(n - len(body))
count = struct.unpack(">I", body[1:5])[0]; off = 5; comments = []
for _ in range(count):
    kl = struct.unpack(">I", body[off:off + 4])[0]; off += 4 + kl
    cl = struct.unpack(">I", body[off:off + 4])[0]; comments.append(body[off + 4:off + 4 + cl].decode()); off += 4 + cl
print(path, body[0], ",".join(comments))
`;

describe("silo run --ssh-agent", () => {
  test("positive control: the agent holds the key on the host", () => {
    const r = spawnSync("ssh-add", ["-l"], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: "utf8" });
    expect(r.stdout).toContain("silo-agent-key");
  });

  test("forwards the agent at a fixed path; without the flag the sandbox has none", async () => {
    const proj = makeProject("");
    const r = ok(await runSilo(["run", "--ssh-agent", "python", "-c", LIST_KEYS], { home, cwd: proj, env: { SSH_AUTH_SOCK: sock } }));
    expect(r.stdout).toBe("/run/silo/ssh-agent.sock 12 silo-agent-key\n");
    const without = ok(await runSilo(["run", "python", "-c", LIST_KEYS], { home, cwd: proj, env: { SSH_AUTH_SOCK: sock } }));
    expect(without.stdout).toBe("no-agent\n");
  });

  test("no agent, or SSH_AUTH_SOCK naming something other than a socket: 125 before the command starts", async () => {
    const proj = makeProject("");
    const none = await runSilo(["run", "--ssh-agent", "python", "-c", "print('ran')"], { home, cwd: proj });
    expect(none.exitCode).toBe(125);
    expect(none.stdout).toBe("");
    expect(none.stderr).toContain("--ssh-agent: no ssh-agent (SSH_AUTH_SOCK is not set)");
    const gone = await runSilo(["run", "--ssh-agent", "python", "-c", "print('ran')"], { home, cwd: proj, env: { SSH_AUTH_SOCK: join(tmp(), "nope.sock") } });
    expect(gone.exitCode).toBe(125);
    expect(gone.stderr).toContain("does not exist");

    // A directory of the user's: a plain bwrap binds it writable at the agent's path (the attack without the check).
    const secrets = tmp("silo-ssh-secrets-");
    writeFileSync(join(secrets, "id_rsa"), "PRIVATE\n");
    const bw = spawnSync("bwrap", ["--unshare-user", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/run", "--bind", secrets, "/run/agent.sock", "sh", "-c", "cat /run/agent.sock/id_rsa; touch /run/agent.sock/planted"], { encoding: "utf8" });
    expect(bw.stdout).toBe("PRIVATE\n");
    expect(existsSync(join(secrets, "planted"))).toBe(true);
    const dir = await runSilo(["run", "--ssh-agent", "python", "-c", "print(open('/run/silo/ssh-agent.sock/id_rsa').read())"], { home, cwd: proj, env: { SSH_AUTH_SOCK: secrets } });
    expect(dir.exitCode).toBe(125);
    expect(dir.stdout).toBe("");
    expect(dir.stderr).toContain(`--ssh-agent: SSH_AUTH_SOCK=${secrets} is not a socket`);
  });

  test("an untrusted project's passSshAgent forwards nothing; the same bytes trusted do", async () => {
    const proj = makeProject("passSshAgent = true\n");
    const untrusted = ok(await runSilo(["run", "python", "-c", LIST_KEYS], { home, cwd: proj, env: { SSH_AUTH_SOCK: sock } }));
    expect(untrusted.stdout).toBe("no-agent\n");
    expect(untrusted.stderr).toContain("ignoring passSshAgent");
    ok(await runSilo(["trust"], { home, cwd: proj }));
    const trusted = ok(await runSilo(["run", "python", "-c", LIST_KEYS], { home, cwd: proj, env: { SSH_AUTH_SOCK: sock } }));
    expect(trusted.stdout).toBe("/run/silo/ssh-agent.sock 12 silo-agent-key\n");
    // Trusted but with no agent in this shell: the run goes on without it, and says so.
    const noAgent = ok(await runSilo(["run", "python", "-c", LIST_KEYS], { home, cwd: proj }));
    expect(noAgent.stdout).toBe("no-agent\n");
    expect(noAgent.stderr).toContain("passSshAgent is set but SSH_AUTH_SOCK is not");
    // Per tool: `[overrides.python] passSshAgent = true`, the same rule.
    const perTool = makeProject("[overrides.python]\npassSshAgent = true\n");
    const ignored = ok(await runSilo(["run", "python", "-c", LIST_KEYS], { home, cwd: perTool, env: { SSH_AUTH_SOCK: sock } }));
    expect(ignored.stdout).toBe("no-agent\n");
    expect(ignored.stderr).toContain("ignoring overrides.python.passSshAgent");
    ok(await runSilo(["trust"], { home, cwd: perTool }));
    const forwarded = ok(await runSilo(["run", "python", "-c", LIST_KEYS], { home, cwd: perTool, env: { SSH_AUTH_SOCK: sock } }));
    expect(forwarded.stdout).toBe("/run/silo/ssh-agent.sock 12 silo-agent-key\n");
  });

  test("a language server gets no agent: `silo lsp --ssh-agent` is refused", async () => {
    const r = await runSilo(["lsp", "--ssh-agent", "python"], { home, cwd: makeProject(""), env: { SSH_AUTH_SOCK: sock } });
    expect(r.exitCode).toBe(125);
    expect(r.stderr).toContain("--ssh-agent is for run, shell and build");
  });
});
