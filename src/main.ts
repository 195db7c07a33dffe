// Entry point. Hot path first: a shim call or `silo run` must not load what it does not use, so
// commands, consola and c12 are imported lazily (see scripts/bench/startup.ts for the figures).
import { basename } from "node:path";
import { EXIT, SiloError } from "./core/errors.ts";
import { ensureHome } from "./core/home.ts";
import { isDebug, log, setDebug, setQuiet, writeFd } from "./core/log.ts";
import { mark } from "./core/trace.ts";

const RUN_LIKE = new Set(["run", "shell", "lsp", "build"]);

async function main(argv: string[]): Promise<number> {
  mark("main");
  const invoked = basename(process.argv0 || "silo");
  if (argv[0] === "__stage") return (await import("./runner/drivers/bwrap/stage.ts")).main(argv.slice(1));
  if (argv[0] === "__after" || argv[0] === "__proxy" || argv[0] === "__register" || argv[0] === "__quarantine")
    return (await import("./app/handoff.ts")).main(argv[0], argv.slice(1));
  // Past silo's own helpers (they run inside a command that checked already): SILO_HOME is the user's alone.
  ensureHome();
  if (argv[0] === "__resolve") return (await import("./app/context.ts")).resolveOnly(argv[1] ?? "python");
  if (argv[0] === "__complete") return (await import("./cli/_complete.ts")).main(argv.slice(1));
  if (argv[0] === "__shim") return (await import("./app/shim-dispatch.ts")).dispatchShim(argv[1] ?? "", argv.slice(2));
  // A shim is a symlink to this binary under another name (argv[0] dispatch); a renamed copy is still silo.
  if (invoked !== basename(process.execPath) && invoked !== "silo" && invoked !== "bun")
    return (await import("./app/shim-dispatch.ts")).dispatchShim(invoked, argv);

  let i = 0;
  for (; i < argv.length; i++) {
    if (argv[i] === "--debug") setDebug(true);
    else if (argv[i] === "--quiet" || argv[i] === "-q") setQuiet(true);
    else break;
  }
  const cmd = argv[i];
  const rest = argv.slice(i + 1);
  if (cmd === "--version" || cmd === "-v" || cmd === "-V") {
    const { VERSION, COMMIT } = await import("./version.ts");
    writeFd(1, `silo ${VERSION} (${COMMIT})\n`);
    return 0;
  }
  if (cmd && RUN_LIKE.has(cmd)) return (await import("./cli/_run-like.ts")).runLike(cmd, rest);
  const { runCli } = await import("./cli/_dispatch.ts");
  return runCli(argv.slice(i));
}

function report(err: unknown): number {
  if (err instanceof SiloError) {
    log.error(err.message);
    if (err.hint) log.hint(err.hint);
    if (isDebug() && err.stack) writeFd(2, `${err.stack}\n`);
    return err.exitCode;
  }
  if (isDebug()) writeFd(2, `${(err as Error)?.stack ?? String(err)}\n`);
  else log.error(`internal error: ${(err as Error)?.message ?? String(err)} (re-run with --debug for details)`);
  return EXIT.FAILURE;
}

if (process.argv.includes("--debug")) setDebug(true);
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // Exit now: a failure after the driver started its helpers (a prewarmed stage, a relay) must not wait
    // for their handles. They end with silo's process (parent-death signal, EOF on their control socket).
    process.exit(report(err));
  },
);
