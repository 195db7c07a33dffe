#!/usr/bin/env bash
# Install silo on a fresh Debian/Ubuntu machine and run its main job: a tool in a sandbox that sees only
# the project. Installs dependencies, builds dist/silo, links it into /usr/local/bin, installs python and
# runs it in a demo project.
# Machines that cannot reach Docker Hub (air-gapped, CI) get the local fixture registry as a docker.io
# mirror (scripts/fixtures/build.sh), configured in SILO_HOME's global silo.toml like any other mirror.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo

bash scripts/deps.sh
bun run build
$SUDO ln -sf "$PWD/dist/silo" /usr/local/bin/silo
SILO_HOME=${SILO_HOME:-$HOME/.silo}
mkdir -p "$SILO_HOME"

if ! curl -fsS -o /dev/null --max-time 5 https://registry-1.docker.io/v2/ 2>/dev/null &&
  ! curl -sS -o /dev/null --max-time 5 -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null | grep -q 401; then
  echo "setup: Docker Hub is not reachable; using the local fixture registry as its mirror" >&2
  $SUDO bash scripts/fixtures/build.sh
  if ! grep -qs '^\[images.mirrors\]' "$SILO_HOME/silo.toml"; then
    printf '[images.mirrors]\n"docker.io" = "http://127.0.0.1:5000"\n' >>"$SILO_HOME/silo.toml"
  fi
  VERSION=3.11-slim
else
  VERSION=3.12-slim
fi

silo install "python@$VERSION"
DEMO=$(mktemp -d /tmp/silo-demo.XXXXXX)
printf 'import os, sys\nprint("hello from", sys.version.split()[0], "in", os.getcwd())\nprint("home:", sorted(os.listdir(os.path.expanduser("~"))))\n' >"$DEMO/hello.py"
(cd "$DEMO" && silo run python hello.py)
echo "setup: done. Put the shims on PATH with: eval \"\$(silo shellenv)\"" >&2
