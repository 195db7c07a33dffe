import { describe, expect, test } from "bun:test";
import { totalmem } from "node:os";
import { DEFAULT_LIMITS, resolveResources } from "../../../src/config/resolve.ts";
import { checkSchema } from "../../../src/config/_schema-dsl.ts";
import { siloConfigSchema, WIDENING_KEYS, type SiloConfig } from "../../../src/config/schema.ts";

const def = { name: "python", resources: { cpus: 2, memory: "4g" } };
const hostMB = totalmem() / (1024 * 1024);
const defaultTmp = Math.floor(hostMB * DEFAULT_LIMITS.tmpFraction);
const defaultRootfs = Math.max(1024, Math.floor(hostMB * DEFAULT_LIMITS.rootfsFraction));
const defaultMemory = Math.floor(hostMB * DEFAULT_LIMITS.memoryFraction);
const of = (project: SiloConfig, trust: "trusted" | "untrusted" | "changed" | "none", global: SiloConfig = {}) => resolveResources({ project, global, trust }, def);

describe("resolveResources", () => {
  test("defaults: 8192 processes, a quarter of the host's memory for /tmp and for the writable layer, three quarters as memory, all cpus", () => {
    expect(of({}, "none")).toEqual({ cpus: 2, memoryMB: 4096, tmpMB: defaultTmp, rootfsMB: defaultRootfs, pids: 8192 });
    expect(resolveResources({ project: {}, global: {}, trust: "none" }, { name: "x" })).toEqual({
      cpus: undefined, memoryMB: defaultMemory, tmpMB: defaultTmp, rootfsMB: defaultRootfs, pids: 8192,
    });
  });
  test("a trusted project file raises and lowers; its tool override wins over its [resources]", () => {
    const p: SiloConfig = { resources: { cpus: 8, memory: "16g", tmp: "64g", rootfs: "32g", pids: 100000 }, overrides: { python: { resources: { pids: 50 } } } };
    expect(of(p, "trusted")).toEqual({ cpus: 8, memoryMB: 16384, tmpMB: 65536, rootfsMB: 32768, pids: 50 });
  });
  for (const trust of ["untrusted", "changed"] as const)
    test(`a project file that is ${trust} may only lower a limit: raising one is widening`, () => {
      const raise: SiloConfig = { resources: { cpus: 64, memory: "64g", tmp: "1t", rootfs: "1t", pids: 1 << 20 }, overrides: { python: { resources: { pids: 9000 } } } };
      expect(of(raise, trust)).toEqual({ cpus: 2, memoryMB: 4096, tmpMB: defaultTmp, rootfsMB: defaultRootfs, pids: 8192 });
      const lower: SiloConfig = { resources: { cpus: 1, memory: "512m", tmp: "8m", rootfs: "16m" }, overrides: { python: { resources: { pids: 64 } } } };
      expect(of(lower, trust)).toEqual({ cpus: 1, memoryMB: 512, tmpMB: 8, rootfsMB: 16, pids: 64 });
      // Against the global file's value, not only the registry's and the defaults.
      const global: SiloConfig = { resources: { pids: 100, rootfs: "2g" }, overrides: { python: { resources: { cpus: 0.5 } } } };
      expect(of({ resources: { pids: 200, cpus: 1, rootfs: "3g" } }, trust, global)).toMatchObject({ pids: 100, cpus: 0.5, rootfsMB: 2048 });
      // Where nothing else sets one (cpus of a tool without a registry value), any value lowers "all".
      expect(resolveResources({ project: { resources: { cpus: 1 } }, global: {}, trust }, { name: "x" }).cpus).toBe(1);
      // A size that rounds to 0 MiB would read as "no cap": never below 1 (and the schema refuses it).
      expect(of({ resources: { tmp: "0", rootfs: "100k", memory: "0m" } }, trust)).toMatchObject({ tmpMB: 1, rootfsMB: 1, memoryMB: 1 });
    });
  test("an untrusted raise is listed with the file's ignored settings (warned once each); a lowering is not", () => {
    const ignored: string[] = ["passEnv"];
    resolveResources({ project: { resources: { tmp: "1t", pids: 64 }, overrides: { python: { resources: { tmp: "2t" } } } }, global: {}, trust: "untrusted", ignored }, def);
    expect(ignored).toEqual(["passEnv", "resources.tmp (only a lower value applies untrusted)"]);
    const trusted: string[] = [];
    resolveResources({ project: { resources: { tmp: "1t" } }, global: {}, trust: "trusted", ignored: trusted }, def);
    expect(trusted).toEqual([]);
  });
  test("the global file may raise what the registry says", () => {
    expect(of({}, "none", { resources: { memory: "32g", pids: 20000 } })).toMatchObject({ memoryMB: 32768, pids: 20000 });
  });
  test("the schema takes tmp and rootfs as sizes of at least 1m and pids as a positive integer", () => {
    expect(checkSchema({ resources: { tmp: "512m", rootfs: "4g", pids: 64 } }, siloConfigSchema)).toEqual([]);
    expect(checkSchema({ resources: { tmp: "lots", rootfs: "big", pids: 0.5 } }, siloConfigSchema).length).toBe(3);
    const tiny = checkSchema({ resources: { tmp: "0", rootfs: "256k", memory: "0g" } }, siloConfigSchema);
    expect(tiny.length).toBe(3);
    expect(JSON.stringify(tiny)).toContain("below the smallest limit, 1m");
    // Not stripped from an untrusted file (lowering must stay): resolveResources takes the minimum instead.
    expect(WIDENING_KEYS.some((k) => k.includes("resources"))).toBe(false);
  });
});
