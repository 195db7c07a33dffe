/**
 * The seccomp filters, assembled when silo is built: imported `with { type: "macro" }`, this runs in the
 * bundler and only its result (the BPF program's bytes per architecture) lands in the binary, so no run
 * pays for assembling them. seccomp.ts stays the definition (and what the unit tests check).
 */
import { buildSeccompFilter, type SeccompArch } from "./seccomp.ts";

export function prebuiltSeccompFilters(): Record<SeccompArch, number[]> {
  return { x86_64: [...buildSeccompFilter("x86_64")], aarch64: [...buildSeccompFilter("aarch64")] };
}
