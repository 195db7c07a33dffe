/**
 * SILO_HOME holds what silo trusts (trust records, the global silo.toml, installed tools) and the
 * unpacked images, whose setuid binaries belong to the user (or to root, when root unpacked them). So it
 * is the user's alone: created 0700, tightened to 0700 when found wider, and refused when another user
 * owns it (THREATS.md invariants 2 and 3). One stat on every call; a line on stderr only when it changes
 * something.
 */
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { SiloError } from "./errors.ts";
import { log } from "./log.ts";
import { siloHome } from "./paths.ts";

export function ensureHome(home: string = siloHome()): void {
  let st = statSync(home, { throwIfNoEntry: false });
  if (!st) {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    // Checked again: where the parent is shared (/tmp), someone else may have made it first.
    st = statSync(home);
  }
  if (!st.isDirectory()) throw new SiloError("E_CONFIG", `SILO_HOME ${home} is not a directory`, "point SILO_HOME at a directory of your own");
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new SiloError(
      "E_CONFIG",
      `SILO_HOME ${home} belongs to uid ${st.uid}, not to you (uid ${uid}): its config, trust records and images could have been written by another user`,
      "run silo as the user who owns it, or set SILO_HOME to a directory of your own",
    );
  if (st.mode & 0o077) {
    chmodSync(home, 0o700);
    log.warn(`SILO_HOME ${home} was open to other users (mode ${(st.mode & 0o777).toString(8)}); made it 0700`);
  }
}
