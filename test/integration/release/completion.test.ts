// `silo completion bash|zsh|fish` in the real shells, driven through tmux: type, press TAB, read the screen.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { emptyHome, runSilo, siloBin, tmp } from "../../helpers/silo.ts";

// The server's socket in a directory of the test's own (removed with it), not in the shared /tmp/tmux-UID.
const socket = join(tmp("silo-complete-tmux-"), "s");
let home: string;
let env: string[];

function tmux(...args: string[]): string {
  const r = Bun.spawnSync(["tmux", "-S", socket, ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** The screen's lines, right-trimmed, once `want` matches one of them (or the last screen after 20 s). */
async function screenWhen(session: string, want: RegExp): Promise<string> {
  let screen = "";
  for (const end = Date.now() + 20_000; Date.now() < end; await Bun.sleep(100)) {
    screen = tmux("capture-pane", "-p", "-t", session).split("\n").map((l) => l.trimEnd()).join("\n");
    if (want.test(screen)) break;
  }
  return screen;
}

/**
 * Clear the line and the screen, type `line`, press TAB, then type `after` (keys are read in order, so
 * `after` on the screen means the TAB was handled); the prompt line as it then reads.
 */
async function complete(session: string, line: string, want: RegExp, after = ""): Promise<string> {
  tmux("send-keys", "-t", session, "C-c");
  tmux("send-keys", "-t", session, "clear", "Enter");
  await screenWhen(session, /^\$ ?$/m);
  tmux("send-keys", "-t", session, "-l", line);
  tmux("send-keys", "-t", session, "Tab");
  if (after) tmux("send-keys", "-t", session, "-l", after);
  const screen = await screenWhen(session, want);
  return screen.split("\n").filter((l) => l.startsWith("$ ")).at(-1) ?? screen;
}

const SHELLS: Record<string, { argv: string[]; setup: string[] }> = {
  bash: { argv: ["bash", "--norc", "--noprofile"], setup: ["PS1='$ '", 'eval "$(silo completion bash)"'] },
  zsh: { argv: ["zsh", "-f"], setup: ["PROMPT='$ '", "autoload -Uz compinit && compinit -u", 'eval "$(silo completion zsh)"'] },
  fish: {
    argv: ["fish", "--no-config"],
    setup: ["function fish_prompt; echo -n '$ '; end", "set -g fish_autosuggestion_enabled 0", "silo completion fish | source"],
  },
};

beforeAll(async () => {
  // One small installed tool (busybox, from the fixture registry); python stays a registry tool only.
  home = emptyHome();
  const r = await runSilo(["install", "busybox", "--image", "docker.io/library/busybox:latest"], { home });
  expect(r.exitCode, r.stderr).toBe(0);
  // The scripts call `silo` by name: a PATH with the binary under test as `silo`, and nothing of the host's
  // shell set-up (no rc files, a fresh HOME).
  const bin = join(tmp("silo-complete-bin-"), "bin");
  mkdirSync(bin);
  symlinkSync(siloBin, join(bin, "silo"));
  env = [`PATH=${bin}:/usr/bin:/bin`, `HOME=${tmp("silo-complete-home-")}`, `SILO_HOME=${home}`, "TERM=xterm-256color", "LANG=C.UTF-8"];
});

afterAll(() => {
  Bun.spawnSync(["tmux", "-S", socket, "kill-server"], { stderr: "ignore" });
});

describe.each(Object.keys(SHELLS))("completion in %s", (shell) => {
  const session = shell;
  beforeAll(async () => {
    const { argv, setup } = SHELLS[shell]!;
    // In an empty directory: with no candidate the shells offer file names, and there are none.
    tmux("new-session", "-d", "-s", session, "-c", tmp("silo-complete-cwd-"), "-x", "160", "-y", "40", "env", "-i", ...env, ...argv);
    for (const line of setup) tmux("send-keys", "-t", session, "-l", line), tmux("send-keys", "-t", session, "Enter");
    await screenWhen(session, /^\$ ?$/m);
  });

  test("a command: `silo ru<TAB>` → `silo run `", async () => {
    expect(await complete(session, "silo ru", /\$ silo run\b/)).toBe("$ silo run");
  });
  test("a flag: `silo run --dri<TAB>` → `silo run --driver`", async () => {
    expect(await complete(session, "silo run --dri", /\$ silo run --driver\b/)).toBe("$ silo run --driver");
  });
  test("an installed tool: `silo run bu<TAB>` → `silo run busybox`", async () => {
    expect(await complete(session, "silo run bu", /\$ silo run busybox\b/)).toBe("$ silo run busybox");
  });
  test("only installed tools after run: `silo run py<TAB>` offers nothing (python is not installed)", async () => {
    expect(await complete(session, "silo run py", /\$ silo run py.*#$/m, "#")).toBe("$ silo run py#");
  });
  test("registry tools after install: `silo install pyt<TAB>` → `silo install python`", async () => {
    expect(await complete(session, "silo install pyt", /\$ silo install python\b/)).toBe("$ silo install python");
  });
});
