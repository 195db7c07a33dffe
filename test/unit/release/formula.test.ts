// The Homebrew formula rendered from a fixture SHA256SUMS (scripts/release/formula.ts), parsed by Ruby.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseSums, renderFormula } from "../../../scripts/release/formula.ts";
import { tmp } from "../../helpers/silo.ts";

const SUMS = [
  `${"a".repeat(64)}  silo-1.2.3-linux-x64.tar.gz`,
  `${"b".repeat(64)}  silo-1.2.3-linux-arm64.tar.gz`,
  `${"c".repeat(64)}  silo-1.2.3-darwin-arm64.tar.gz`,
].join("\n");

describe("renderFormula", () => {
  const rb = renderFormula("1.2.3", `${SUMS}\n`, "https://example.test/v1.2.3");

  test("is Ruby that parses", () => {
    const file = join(tmp(), "silo.rb");
    writeFileSync(file, rb);
    const r = Bun.spawnSync(["ruby", "-c", file], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("Syntax OK\n");
  });

  test("one url and sha256 per platform, in on_macos/on_linux and on_arm/on_intel blocks", () => {
    const asset = (file: string, sum: string) => `      url "https://example.test/v1.2.3/${file}"\n      sha256 "${sum}"\n    end`;
    expect(rb).toContain(`  on_macos do\n    # The macOS sandbox driver needs Apple silicon: there is no Intel build.\n    depends_on arch: :arm64\n\n    on_arm do\n${asset("silo-1.2.3-darwin-arm64.tar.gz", "c".repeat(64))}\n  end`);
    expect(rb).toContain(`  on_linux do\n    on_arm do\n${asset("silo-1.2.3-linux-arm64.tar.gz", "b".repeat(64))}\n    on_intel do\n${asset("silo-1.2.3-linux-x64.tar.gz", "a".repeat(64))}\n  end`);
  });

  test("installs the binary and completions, says how to set up the shell, tests --version and doctor", () => {
    expect(rb).toContain('bin.install "silo"');
    expect(rb).toContain('generate_completions_from_executable(bin/"silo", "completion")');
    expect(rb).toMatch(/def caveats[\s\S]*eval "\$\(silo shellenv\)"/);
    expect(rb).toMatch(/test do\n    assert_match version\.to_s, shell_output\("#\{bin\}\/silo --version"\)\n    system bin\/"silo", "doctor"\n  end/);
    expect(rb).toContain('version "1.2.3"');
    expect(rb).toContain('license "Apache-2.0"');
  });

  test("a platform missing from SHA256SUMS or a malformed line is an error", () => {
    expect(() => renderFormula("1.2.3", SUMS.split("\n").slice(0, 2).join("\n"))).toThrow("SHA256SUMS has no line for silo-1.2.3-darwin-arm64.tar.gz");
    expect(() => parseSums(`${SUMS}\nnot a sum line`)).toThrow('SHA256SUMS:4: not "<sha256>  <file>": not a sum line');
  });
});
