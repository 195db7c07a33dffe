import { SiloError } from "../../core/errors.ts";
import type { Driver, DriverName } from "../driver.ts";

/** A driver that exists in the interface but not yet in this build: probe says why, spawn refuses. */
export function unavailable(name: DriverName, reason: string): Driver {
  const refuse = async (): Promise<never> => {
    throw new SiloError("E_DRIVER", `driver ${name} is unavailable: ${reason}`, "use --driver bwrap on Linux");
  };
  return { name, probe: async () => ({ ok: false, reason, fix: "use --driver bwrap on Linux" }), spawn: refuse, run: refuse };
}
