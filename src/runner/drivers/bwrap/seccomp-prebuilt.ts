/**
 * The seccomp filters, assembled when silo is built: imported `with { type: "macro" }`, this runs in the
 * bundler and only its result (the BPF program's bytes per architecture) lands in the binary, so no run
 * pays for assembling them. seccomp.ts stays the definition (and what the unit tests check).
 */
import { buildSeccompFilter, type SeccompArch } from "./seccomp.ts";

/** Per architecture: the filter for runs, and the `keepSetuid` one for builds (seccomp.ts). */
export function prebuiltSeccompFilters(): Record<SeccompArch, { run: number[]; keepSetuid: number[] }> {
  const both = (arch: SeccompArch) => ({ run: [...buildSeccompFilter(arch)], keepSetuid: [...buildSeccompFilter(arch, { keepSetuid: true })] });
  return { x86_64: both("x86_64"), aarch64: both("aarch64") };
}
