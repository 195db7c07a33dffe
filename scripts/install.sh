#!/bin/sh
# Install silo from a release: curl -fsSL https://github.com/silo-sandbox/silo/releases/latest/download/install.sh | sh
#
#   sh install.sh [--prefix DIR] [--version X.Y.Z] [--base-url URL]
#
# Picks the tarball for this OS and CPU, checks it against the release's SHA256SUMS (a mismatch installs
# nothing), and puts the binary in PREFIX/bin (default ~/.local/bin) and its completions under PREFIX/share.
# SILO_INSTALL_BASE_URL does what --base-url does (a mirror, or a release directory served for a test).
set -eu

REPO="silo-sandbox/silo"
prefix="${HOME:?HOME is not set}/.local"
version=""
base_url="${SILO_INSTALL_BASE_URL:-}"

die() {
  echo "install.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --version) [ $# -ge 2 ] || die "--version needs a version"; version="${2#v}"; shift 2 ;;
    --version=*) version="${1#*=}"; version="${version#v}"; shift ;;
    --base-url) [ $# -ge 2 ] || die "--base-url needs a URL"; base_url="$2"; shift 2 ;;
    --base-url=*) base_url="${1#*=}"; shift ;;
    -h | --help) sed -n '2,9p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (--prefix DIR, --version X.Y.Z, --base-url URL)" ;;
  esac
done
if [ -z "$base_url" ]; then
  if [ -n "$version" ]; then base_url="https://github.com/$REPO/releases/download/v$version"
  else base_url="https://github.com/$REPO/releases/latest/download"; fi
fi
base_url="${base_url%/}"

# The platform, as the release names it: linux-x64, linux-arm64, darwin-arm64.
os=$(uname -s)
arch=$(uname -m)
case "$os" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "silo has no release for $os (there are: Linux x86_64, Linux arm64, macOS on Apple silicon)" ;;
esac
case "$arch" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "silo has no release for $os on $arch (there are: Linux x86_64, Linux arm64, macOS on Apple silicon)" ;;
esac
if [ "$os" = darwin ] && [ "$arch" = x64 ]; then
  # A shell under Rosetta on Apple silicon reports x86_64; the machine itself is arm64.
  if [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then arch=arm64
  else die "silo needs Apple silicon on macOS (its sandbox is an arm64 virtual machine); this Mac is Intel"; fi
fi
platform="$os-$arch"

fetch() { # URL FILE
  if command -v curl >/dev/null 2>&1; then curl -fsSL --proto '=https,http' -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
  else die "needs curl or wget to download"; fi
}
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else die "needs sha256sum or shasum to check the download"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/silo-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

fetch "$base_url/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not download $base_url/SHA256SUMS"
# The tarball's line: the given version's, else the only one for this platform (the latest release).
if [ -n "$version" ]; then tarball="silo-$version-$platform.tar.gz"
else tarball=$(sed -n "s/^[0-9a-f]\{64\}  \(silo-[^ ]*-$platform\.tar\.gz\)\$/\1/p" "$tmp/SHA256SUMS" | head -n 1); fi
[ -n "$tarball" ] || die "the release at $base_url has no $platform build"
expected=$(awk -v f="$tarball" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
[ -n "$expected" ] || die "SHA256SUMS at $base_url has no line for $tarball"

echo "install.sh: downloading $tarball" >&2
fetch "$base_url/$tarball" "$tmp/$tarball" || die "could not download $base_url/$tarball"
actual=$(sha256 "$tmp/$tarball")
[ "$actual" = "$expected" ] || die "$tarball does not match SHA256SUMS (expected $expected, got $actual): nothing installed"

mkdir "$tmp/x"
tar -xzf "$tmp/$tarball" -C "$tmp/x" || die "could not unpack $tarball"
src="$tmp/x/${tarball%.tar.gz}"
[ -f "$src/silo" ] || die "$tarball has no silo binary"

# Copy next to the destination, then rename: a silo already there is replaced whole or not at all.
bindir="$prefix/bin"
mkdir -p "$bindir" || die "cannot create $bindir"
cp "$src/silo" "$bindir/.silo.new.$$" && chmod 755 "$bindir/.silo.new.$$" && mv -f "$bindir/.silo.new.$$" "$bindir/silo" ||
  { rm -f "$bindir/.silo.new.$$"; die "cannot write $bindir/silo"; }
for c in "silo.bash bash-completion/completions/silo" "_silo zsh/site-functions/_silo" "silo.fish fish/vendor_completions.d/silo.fish"; do
  from=${c%% *}
  to="$prefix/share/${c#* }"
  [ -f "$src/completions/$from" ] || continue
  mkdir -p "$(dirname "$to")" && cp "$src/completions/$from" "$to" || echo "install.sh: could not install $to (completions)" >&2
done

echo "install.sh: installed $("$bindir/silo" --version 2>/dev/null || echo silo) to $bindir/silo"
case ":${PATH:-}:" in
  *":$bindir:"*) ;;
  *) echo "  $bindir is not on PATH; add it in your shell's rc file:  export PATH=\"$bindir:\$PATH\"" ;;
esac
echo "  then put silo's shims on PATH (same file):  eval \"\$(silo shellenv)\""
echo "  and check the sandbox works here:  silo doctor"
