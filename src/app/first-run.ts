import { SiloError } from "../core/errors.ts";
import { driverLoaders, type DriverName } from "../runner/driver.ts";
import { autoDriver } from "./driver-select.ts";

/**
 * Before `silo install` pulls anything: can this machine start a sandbox at all? A first run on a machine
 * without bubblewrap or user namespaces should stop here with the fix for this distribution, not after a
 * few hundred megabytes of image at the first `silo run`. The probe starts one miniature sandbox (tens of
 * milliseconds), which is nothing next to a pull; the run path does not pay it.
 */
export async function requireWorkingSandbox(flag?: string): Promise<void> {
  const name = (flag || process.env.SILO_DRIVER || autoDriver()) as DriverName;
  const load = driverLoaders[name];
  if (!load) return; // an unknown driver name is reported, with the choices, where it is selected
  const p = await (await load()).probe();
  if (p.ok) return;
  throw new SiloError("E_SANDBOX", `this machine cannot start a silo sandbox (${name} driver): ${p.reason}; nothing was installed`, `fix: ${p.fix}, then check with \`silo doctor\``);
}
