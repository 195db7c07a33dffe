import { SiloError } from "../core/errors.ts";

/** Flags of the commands that run a tool (run, shell, lsp, build): everything after the tool is the tool's. */
export const RUN_FLAGS = {
  value: new Map<string, string>([
    ["--driver", "driver"],
    ["-p", "port"],
    ["--port", "port"],
    ["--publish", "port"],
    ["-e", "env"],
    ["--env", "env"],
    ["--shim", "shim"],
  ]),
  bool: new Map<string, string>([
    ["--debug", "debug"],
    ["-q", "quiet"],
    ["--quiet", "quiet"],
    ["--timing", "timing"],
    ["-t", "tty"],
    ["--tty", "tty"],
    ["--no-tty", "noTty"],
    ["-h", "help"],
    ["--help", "help"],
    ["--global", "global"],
    ["--remove", "remove"],
    ["--ssh-agent", "sshAgent"],
  ]),
};

export interface RunArgs {
  flags: Record<string, string | boolean | string[]>;
  tool?: string;
  /** Passed to the tool untouched. */
  rest: string[];
}

/**
 * Split `[silo flags] TOOL [tool args]` (P3 in STYLE.md). citty parses non-strictly, so `silo run python -c x`
 * would be read as silo flags; the cut happens here, before citty. `--` before the tool is the legacy separator.
 */
export function splitRunArgs(argv: string[], command = "run"): RunArgs {
  const flags: RunArgs["flags"] = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      const [tool, ...rest] = argv.slice(i + 1);
      return { flags, tool, rest };
    }
    if (!a.startsWith("-") || a === "-") return { flags, tool: a, rest: argv.slice(i + 1) };
    const eq = a.indexOf("=");
    const name = eq > 0 && a.startsWith("--") ? a.slice(0, eq) : a;
    const valueKey = RUN_FLAGS.value.get(name);
    if (valueKey) {
      const v = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new SiloError("E_USAGE", `silo ${command}: ${name} needs a value`);
      if (valueKey === "port" || valueKey === "env") (flags[valueKey] = (flags[valueKey] as string[] | undefined) ?? []).push(v);
      else flags[valueKey] = v;
      continue;
    }
    const boolKey = RUN_FLAGS.bool.get(a);
    if (boolKey) {
      flags[boolKey] = true;
      continue;
    }
    throw unknownFlag(command, a, [...RUN_FLAGS.value.keys(), ...RUN_FLAGS.bool.keys()]);
  }
  return { flags, rest: [] };
}

export function unknownFlag(command: string, flag: string, known: string[]): SiloError {
  const { closest } = require("../config/_schema-dsl.ts") as typeof import("../config/_schema-dsl.ts");
  const near = closest(flag.replace(/=.*$/, ""), known.filter((k) => k.startsWith("--")));
  return new SiloError(
    "E_USAGE",
    `unknown flag \`${flag}\` for silo ${command}${near ? ` (did you mean \`${near}\`?)` : ""}`,
    ["run", "shell", "lsp", "build"].includes(command)
      ? `flags for the tool go after the tool name; \`silo ${command} --help\` lists silo's`
      : `\`silo ${command} --help\` lists its flags`.replace("silo  --help", "silo --help"),
  );
}

/** `-p 3000` or `-p 8080:3000` (host:guest). */
export function parsePort(s: string): { host: number; guest: number } {
  const m = /^(?:127\.0\.0\.1:)?(\d+)(?::(\d+))?$/.exec(s);
  const host = Number(m?.[1]);
  const guest = Number(m?.[2] ?? m?.[1]);
  if (!m || !(host > 0 && host < 65536 && guest > 0 && guest < 65536))
    throw new SiloError("E_USAGE", `invalid port \`${s}\``, "use -p PORT or -p HOSTPORT:GUESTPORT");
  return { host, guest };
}

export function parseEnvFlag(s: string): [string, string] {
  const i = s.indexOf("=");
  if (i <= 0) throw new SiloError("E_USAGE", `invalid -e \`${s}\``, "use -e NAME=VALUE");
  return [s.slice(0, i), s.slice(i + 1)];
}
