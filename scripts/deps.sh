#!/usr/bin/env bash
# Install what silo and its tests need on a fresh Debian/Ubuntu machine (idempotent; needs root or sudo):
# Debian packages, Bun (from the npm registry), and the project's node_modules.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo

# bubblewrap: the sandbox. skopeo, umoci, docker-registry, debootstrap: test fixtures and the pull benchmark.
# e2fsprogs: ext4 images for VM drivers. zstd: benchmarks. uidmap, iproute2, socat, openssl, openssh-client:
# isolation and network tests. hyperfine: benchmarks. gcc, libc6-dev: the native sandbox stage (static C).
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross: the linux-arm64 release's stage; qemu-user-static runs that
# release in CI. ruby: `ruby -c` on the Homebrew formula. zsh, fish, tmux: completion tests in real shells.
APT_PACKAGES="bubblewrap gcc libc6-dev skopeo umoci docker-registry debootstrap e2fsprogs zstd uidmap iproute2 socat openssl openssh-client git curl ca-certificates hyperfine time util-linux gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static ruby zsh fish tmux"

missing=()
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Node.js may come from elsewhere (nodesource, nvm): Debian's packages only when there is no npm at all.
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v bun >/dev/null; then
  echo "deps: installing bun from the npm registry" >&2
  $SUDO npm install -g --silent bun
fi
bun install --frozen-lockfile --silent
