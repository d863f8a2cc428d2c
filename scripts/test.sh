#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against the real
# server binary, the load generator's and the baseline's tests.
# On a fresh Debian machine with the Rust toolchain it installs what is
# missing first (a C compiler for the bundled SQLite and mimalloc;
# redis-server for the cluster tests, tests/cluster.rs; headless Chromium,
# node and npm for the browser client's test, tests/browser.rs, and for the
# independent client that loadgen is checked against, tests/crosscheck.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# The cluster tests start their own redis-server on a free port.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ] || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
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
