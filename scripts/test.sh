#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against the real
# server binary, the load generator's and the baseline's tests.
# On a fresh Debian machine with the Rust toolchain it installs what is
# missing first (a C compiler for the bundled SQLite and mimalloc, and
# redis-server for the cross-host tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${need_apt[*]}; install with: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "test.sh: installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# Integration tests open a few hundred sockets at most; raise the soft limit
# to the hard one anyway so a small default does not fail them.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec cargo test --workspace --locked "$@"
