import { defineCommand } from "citty";
import { globalArgs } from "./_args.ts";

export const doctor = defineCommand({
  meta: { name: "doctor", description: "Check this machine: each sandbox driver's probe, SILO_HOME, shims on PATH" },
  args: { ...globalArgs },
  async run() {
    const { runDoctor } = await import("../app/doctor.ts");
    const ok = await runDoctor();
    if (!ok) process.exitCode = 1;
  },
});
