import { SiloError } from "../core/errors.ts";
import { driverLoaders, driverNames, type Driver, type DriverName } from "../runner/driver.ts";

/** `--driver`, else SILO_DRIVER, else `driver` in the global silo.toml, else the platform default. */
export async function selectDriver(flag?: string, configured?: string): Promise<Driver> {
  const name = flag || process.env.SILO_DRIVER || (configured && configured !== "auto" ? configured : undefined) || autoDriver();
  if (!driverNames.includes(name as DriverName))
    throw new SiloError("E_DRIVER", `unknown driver \`${name}\``, `choose one of: ${driverNames.join(", ")}`);
  return driverLoaders[name as DriverName]();
}

export function autoDriver(): DriverName {
  return process.platform === "darwin" ? "apple" : "bwrap";
}
