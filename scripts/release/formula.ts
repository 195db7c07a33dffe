// The Homebrew formula for the tap (Formula/silo.rb in <owner>/homebrew-tap), rendered from SHA256SUMS.
// homebrew-cask has an unrelated `silo`, so users name the tap: `brew install silo-sandbox/tap/silo`.

export const REPO = "silo-sandbox/silo";
export const DESCRIPTION = "Run developer tools in an ephemeral sandbox that sees only the current project";

/** The platforms released, as `<os>-<arch>` in tarball names. No Intel Mac: the macOS driver needs arm64. */
export const PLATFORMS = ["linux-x64", "linux-arm64", "darwin-arm64"] as const;
export type Platform = (typeof PLATFORMS)[number];

export const tarballName = (version: string, p: Platform) => `silo-${version}-${p}.tar.gz`;
export const defaultBaseUrl = (version: string) => `https://github.com/${REPO}/releases/download/v${version}`;

/** `sha256sum` output (`<hex>  <file>` a line) → file → hex. A malformed line is an error, not skipped. */
export function parseSums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^([0-9a-f]{64}) [ *](\S+)$/.exec(line);
    if (!m) throw new Error(`SHA256SUMS:${i + 1}: not "<sha256>  <file>": ${line}`);
    out.set(m[2]!, m[1]!);
  });
  return out;
}

/** Formula/silo.rb for `version`, downloading from `baseUrl`; every platform's tarball must be in `sums`. */
export function renderFormula(version: string, sums: string, baseUrl = defaultBaseUrl(version)): string {
  const bySum = parseSums(sums);
  const asset = (p: Platform) => {
    const file = tarballName(version, p);
    const sha = bySum.get(file);
    if (!sha) throw new Error(`SHA256SUMS has no line for ${file}`);
    return `      url "${baseUrl}/${file}"\n      sha256 "${sha}"`;
  };
  return `# Rendered by silo's scripts/release.ts from the release's SHA256SUMS: do not edit by hand.
class Silo < Formula
  desc "${DESCRIPTION}"
  homepage "https://github.com/${REPO}"
  version "${version}"
  license "Apache-2.0"

  on_macos do
    # The macOS sandbox driver needs Apple silicon: there is no Intel build.
    depends_on arch: :arm64

    on_arm do
${asset("darwin-arm64")}
    end
  end

  on_linux do
    on_arm do
${asset("linux-arm64")}
    end
    on_intel do
${asset("linux-x64")}
    end
  end

  def install
    bin.install "silo"
    generate_completions_from_executable(bin/"silo", "completion")
  end

  def caveats
    <<~EOS
      silo's tools run through shims in ~/.silo/bin. Put them on PATH in your shell's rc file:
        eval "$(silo shellenv)"
      Then check the sandbox works on this machine:
        silo doctor
    EOS
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/silo --version")
    system bin/"silo", "doctor"
  end
end
`;
}
