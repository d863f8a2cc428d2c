#!/usr/bin/env bash
# The cross-host benchmark (issue 10): loadgen's `cluster` scenario
# (bench/scenarios/cluster.toml) against two mudshard hosts bridged by Redis,
# then against two baseline processes bridged the ordinary way (a channel per
# room, one PUBLISH per event), climbing the scenario's ladder of rates until
# a step is not held, each step on a fresh redis-server and fresh hosts, with
# the machine's floor for the same path (bench/floor --cross-host) just
# before each server's step at the latency target's rate. It builds the
# release binaries (unless --no-build), then runs `loadgen suite --only
# cluster`, where all of it is: loadgen/src/suite/cluster.rs.
#
#   scripts/bench-cluster.sh [--quick | --throughput] [--no-build] [--out FILE]
#
# `scripts/bench.sh --only cluster` runs the same.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release

build=1
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick | --throughput) args+=("$1") ;;
    --no-build) build=0 ;;
    --out)
        [[ $# -ge 2 ]] || {
            echo "bench-cluster.sh: --out needs a file" >&2
            exit 2
        }
        args+=(--out "$2")
        shift
        ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
    esac
    shift
done

if [[ $build -eq 1 ]]; then
    command -v cargo >/dev/null || {
        echo "bench-cluster.sh: cargo is not on PATH (install Rust with rustup) — or pass --no-build" >&2
        exit 1
    }
    (cd "$ROOT" && cargo build --release --locked -p mudshard -p loadgen -p baseline -p floor --bins) || {
        echo "bench-cluster.sh: the release build failed" >&2
        exit 1
    }
fi
[[ -x $BIN/loadgen ]] || {
    echo "bench-cluster.sh: missing binary $BIN/loadgen: run 'cargo build --release -p mudshard -p loadgen -p baseline -p floor' (or drop --no-build)" >&2
    exit 1
}
exec "$BIN/loadgen" suite --root "$ROOT" --only cluster --no-build "${args[@]}"
