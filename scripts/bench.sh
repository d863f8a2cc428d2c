#!/usr/bin/env bash
# The standard benchmark suite (DESIGN.md §9): builds the release binaries
# (unless --no-build), then runs `loadgen suite` with every argument given
# here. The suite itself — planning the runs from bench/scenarios/, starting
# and stopping the servers by pid, the machine floor, the shard-scaling
# and targets tables, the report in bench/reports/ — is in
# loadgen/src/suite/; `scripts/bench.sh --help` lists its options.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release

build=1
for arg in "$@"; do
    case $arg in
    --no-build | -h | --help) build=0 ;;
    esac
done

if [[ $build -eq 1 ]]; then
    command -v cargo >/dev/null || {
        echo "bench.sh: cargo is not on PATH (install Rust with rustup) — or pass --no-build" >&2
        exit 1
    }
    echo "bench.sh: building release binaries (mudshard, loadgen, baseline, floor)"
    (cd "$ROOT" && cargo build --release --locked -p mudshard -p loadgen -p baseline -p floor --bins) || {
        echo "bench.sh: the release build failed" >&2
        exit 1
    }
fi
[[ -x $BIN/loadgen ]] || {
    echo "bench.sh: missing binary $BIN/loadgen: run 'cargo build --release -p mudshard -p loadgen -p baseline -p floor' (or drop --no-build)" >&2
    exit 1
}
exec "$BIN/loadgen" suite --root "$ROOT" "$@"
