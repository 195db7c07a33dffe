import { describe, expect, test } from "bun:test";
import { parsePort, splitRunArgs } from "../../../src/cli/_argv.ts";
import { SiloError } from "../../../src/core/errors.ts";

describe("splitRunArgs", () => {
  test("everything after the tool goes to the tool untouched", () => {
    const r = splitRunArgs(["python", "-c", "x", "--version"]);
    expect(r).toEqual({ flags: {}, tool: "python", rest: ["-c", "x", "--version"] });
  });
  test("silo flags before the tool are silo's, with values", () => {
    const r = splitRunArgs(["--driver", "bwrap", "-p", "3000", "--env=A=1", "--timing", "node", "npm", "test", "--driver", "x"]);
    expect(r.tool).toBe("node");
    expect(r.flags).toEqual({ driver: "bwrap", port: ["3000"], env: ["A=1"], timing: true });
    expect(r.rest).toEqual(["npm", "test", "--driver", "x"]);
  });
  test("the legacy -- separator", () => {
    expect(splitRunArgs(["--debug", "--", "python", "--help"])).toEqual({ flags: { debug: true }, tool: "python", rest: ["--help"] });
  });
  test("arguments with spaces and quotes are kept as they are", () => {
    expect(splitRunArgs(["python", "a b", `"q"`, "it's"]).rest).toEqual(["a b", `"q"`, "it's"]);
  });
  test("an unknown silo flag is an error with a suggestion, not ignored", () => {
    expect(() => splitRunArgs(["--drvier", "bwrap", "python"])).toThrow(/unknown flag `--drvier`.*did you mean `--driver`/);
    try {
      splitRunArgs(["--nope", "python"]);
    } catch (e) {
      expect(e).toBeInstanceOf(SiloError);
      expect((e as SiloError).exitCode).toBe(125);
    }
  });
  test("a value flag without its value", () => {
    expect(() => splitRunArgs(["--driver"])).toThrow(/needs a value/);
  });
  test("no tool", () => {
    expect(splitRunArgs(["--timing"]).tool).toBeUndefined();
  });
});

describe("parsePort", () => {
  test("host and host:guest", () => {
    expect(parsePort("3000")).toEqual({ host: 3000, guest: 3000 });
    expect(parsePort("8080:3000")).toEqual({ host: 8080, guest: 3000 });
  });
  test("bad ports are refused", () => {
    for (const p of ["0", "70000", "a:b", "3000:", ""]) expect(() => parsePort(p)).toThrow(/invalid port/);
  });
});
