#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: dependencies, fixtures (real OCI images from
# Debian packages on a local docker-registry), the build, typecheck, every test as root, then the
# isolation and network suites again as an unprivileged user. In CI (CI=true) a skipped test fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

bash scripts/deps.sh
bash scripts/fixtures/build.sh
bun run build
bun run typecheck
bun run release   # dist/release: the platform tarballs, SHA256SUMS, install.sh, Formula/silo.rb (test/integration/release checks them)

LOGS=$(mktemp -d)
# Every temporary directory of the run (test homes, fixture templates) lives under one TMPDIR, removed at
# the end whatever happens: the disk is shared, and a test process killed half-way cannot clean up.
TMPDIR=$(mktemp -d /tmp/silo-ci-XXXXXX)
chmod 1777 "$TMPDIR"
export TMPDIR
trap 'chmod -R u+rwx "$TMPDIR" 2>/dev/null; rm -rf "$TMPDIR"' EXIT
check_skips() { # bun prints " N skip" in its summary; an honest skip is one that cannot run anywhere here
  if [[ ${CI:-} == true ]] && grep -Eq '^ *[1-9][0-9]* skip' "$1"; then
    echo "test.sh: tests were skipped in CI (see above); a skipped test here is a failure" >&2
    return 1
  fi
}

echo "== unit and integration tests (as $(id -un))" >&2
bun test --timeout 300000 2>&1 | tee "$LOGS/root.log"
check_skips "$LOGS/root.log"

if [[ $(id -u) -eq 0 ]]; then
  # silo's users are not root: run the isolation and network suites as a fresh unprivileged user, from a
  # copy of the tree it can read (CI's clone may sit under /root, which it cannot enter).
  USER_NAME=silotest
  id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME"
  COPY=/tmp/silo-unprivileged
  rm -rf "$COPY"
  mkdir -p "$COPY"
  tar -C "$ROOT" --exclude=./.git -cf - . | tar -C "$COPY" -xf -
  chown -R "$USER_NAME:" "$COPY"
  echo "== isolation, security, network and build-layer tests (as $USER_NAME)" >&2
  su "$USER_NAME" -s /bin/bash -c "cd $COPY && CI=${CI:-} TMPDIR=$TMPDIR HOME=/home/$USER_NAME bun test --timeout 300000 test/integration/isolation test/integration/security test/integration/network test/integration/build test/integration/run/stage.test.ts test/integration/cli/first-run.test.ts" 2>&1 | tee "$LOGS/user.log"
  check_skips "$LOGS/user.log"
  rm -rf "$COPY"
fi
# One closing line in the plain form CI reads: N passed, N failed.
passed=$(cat "$LOGS"/*.log | awk '/^ *[0-9]+ pass$/ { n += $1 } END { print n + 0 }')
failed=$(cat "$LOGS"/*.log | awk '/^ *[0-9]+ fail$/ { n += $1 } END { print n + 0 }')
echo "test.sh: all suites passed" >&2
echo "$passed passed, $failed failed"
