#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against the real
# server binary, the load generator's and the baseline's tests.
# On a fresh Debian machine with the Rust toolchain it installs what is
# missing first (a C compiler for the bundled SQLite and mimalloc;
# redis-server for the cluster tests, tests/cluster.rs; headless Chromium,
# node and npm for the browser client's test, tests/browser.rs, and for the
# independent client that loadgen is checked against, tests/crosscheck.rs;
# node and redis-server also for the cross-host benchmark's own test,
# loadgen/tests/suite_cluster.rs).
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

# A CI machine's disk can be small: one run ran out of space while linking.
# A clean build of the tests fills 3.7 GiB of target/ with the dev profile's
# full debug info and incremental state; under CI it keeps line tables only,
# enough for a backtrace to name file and line, and no incremental state,
# which a clean clone never reuses: 1.6 GiB (both measured 2026-12-04).
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
  export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
  need_mib=2048
else
  need_mib=4096
fi
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
free_mib=$(df -Pm "$target_dir" | awk 'NR == 2 { print $4 }')
if [ -n "$free_mib" ] && [ "$free_mib" -lt "$need_mib" ]; then
  echo "test.sh: only ${free_mib} MiB free where the build goes ($target_dir);" \
    "the test build needs about ${need_mib} MiB: free some space or set CARGO_TARGET_DIR" >&2
fi

exec cargo test --workspace --locked "$@"
