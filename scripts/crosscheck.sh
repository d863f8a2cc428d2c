#!/usr/bin/env bash
# Checks loadgen's figures against an independent client: the same
# workloads from bench/crosscheck/ (Node.js and the `ws` package, no code
# shared with loadgen), against one mudshard, the two clients alternated
# for a number of rounds:
#   rtt:  N guest sessions, `look` at an aggregate open-loop rate (rtt.mjs);
#   chat: N players over R rooms, says at an aggregate rate, every other
#         player in the room timing each delivery (chat.mjs);
#   idle: N guest sessions placed over the grid and held; the server's
#         memory per session (idle.mjs), each run on a fresh server started
#         with MIMALLOC_PURGE_DELAY=0, as the suite's purged idle run.
# Prints each round's latency percentiles, and memory per session, from both.
#
#   scripts/crosscheck.sh [--players N] [--rate R] [--chat-players N]
#       [--chat-rooms R] [--chat-rate R] [--idle-players N] [--rounds K]
#       [--shards S] [--no-build]
#
# Read it this way: both time from the intended send time; loadgen sends
# ahead of its timer, while Node's timers fire at best every millisecond,
# so the Node figures carry up to a millisecond of the client's own lag,
# and a say's deliveries are read one after another by one Node thread.
# rtt's "from actual send" row times from the moment the frame was handed
# to the socket: the server's answer plus both kernels, which is what
# loadgen's figure should be close to at the median.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLAYERS=1000
RATE=2000
CHAT_PLAYERS=1000
CHAT_ROOMS=10
CHAT_RATE=100
IDLE_PLAYERS=15000
ROUNDS=3
SHARDS=1
BUILD=1
while [[ $# -gt 0 ]]; do
    case $1 in
    --players) PLAYERS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --chat-players) CHAT_PLAYERS=$2; shift ;;
    --chat-rooms) CHAT_ROOMS=$2; shift ;;
    --chat-rate) CHAT_RATE=$2; shift ;;
    --idle-players) IDLE_PLAYERS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --shards) SHARDS=$2; shift ;;
    --no-build) BUILD=0 ;;
    *)
        sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
    esac
    shift
done
command -v node >/dev/null || {
    echo "crosscheck.sh: node is missing; install it with: apt-get install -y nodejs npm" >&2
    exit 1
}
if [[ $BUILD -eq 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p mudshard -p loadgen --bins)
fi
(cd "$ROOT/bench/crosscheck" && [[ -d node_modules/ws ]] || npm ci --no-audit --no-fund >/dev/null)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
BIN=$ROOT/target/release
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
"$BIN/mudshard" --listen 127.0.0.1:$PORT --shards "$SHARDS" --world grid:100x100 \
    --data-dir "$WORK/data" --connections-per-ip-max 65536 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do
    curl -s --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.1
done
# One row of loadgen's figures: its JSON report, the round, the latency to
# show (reply, delivery), and "missing" to add the deliveries it missed.
loadgen_row() {
    python3 - "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_us"][sys.argv[3]]
cols = [l[k] / 1e3 for k in ("p50_us", "p90_us", "p99_us", "p999_us")]
line = "%-6s %-32s %10.3f %10.3f %10.3f %10.3f" % (sys.argv[2], "loadgen (intended send)", *cols)
if sys.argv[4:] == ["missing"]:
    line += " %10d" % d["deliveries"]["missing"]
print(line)
PY
}
COMMON=(--players "$PLAYERS" --rate "$RATE" --warmup 3 --duration 10 --source-ips 4)
echo "mudshard --shards $SHARDS"
echo "rtt: $PLAYERS players, look at $RATE/s, 3 s warm-up, 10 s measured, each round both clients"
printf '%-6s %-32s %10s %10s %10s %10s\n' round client p50_ms p90_ms p99_ms p99.9_ms
for r in $(seq "$ROUNDS"); do
    "$BIN/loadgen" rtt --target 127.0.0.1:$PORT "${COMMON[@]}" --grid-width 100 --grid-height 100 \
        --server-pid $SERVER --json "$WORK/lg.json" --quiet >/dev/null
    loadgen_row "$WORK/lg.json" "$r" reply
    node "$ROOT/bench/crosscheck/rtt.mjs" --target 127.0.0.1:$PORT "${COMMON[@]}" >"$WORK/node.json"
    python3 - "$WORK/node.json" "$r" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d["missing"] or d["errors"]:
    print("node client: %d replies missing, %d errors" % (d["missing"], d["errors"]))
for key, label in (("latency_ms", "node+ws (intended send)"), ("from_actual_send_ms", "node+ws (from actual send)")):
    l = d[key]
    print("%-6s %-32s %10.3f %10.3f %10.3f %10.3f" % (sys.argv[2], label, l["p50"], l["p90"], l["p99"], l["p999"]))
PY
done
CHAT=(--players "$CHAT_PLAYERS" --rooms "$CHAT_ROOMS" --rate "$CHAT_RATE" --warmup 3 --duration 10 --source-ips 4)
echo
echo "chat: $CHAT_PLAYERS players in $CHAT_ROOMS rooms, says at $CHAT_RATE/s, 3 s warm-up, 10 s measured, each round both clients"
printf '%-6s %-32s %10s %10s %10s %10s %10s\n' round client p50_ms p90_ms p99_ms p99.9_ms missing
for r in $(seq "$ROUNDS"); do
    "$BIN/loadgen" chat --target 127.0.0.1:$PORT "${CHAT[@]}" --grid-width 100 --grid-height 100 \
        --server-pid $SERVER --json "$WORK/lg.json" --quiet >/dev/null
    loadgen_row "$WORK/lg.json" "$r" delivery missing
    node "$ROOT/bench/crosscheck/chat.mjs" --target 127.0.0.1:$PORT "${CHAT[@]}" >"$WORK/node.json"
    python3 - "$WORK/node.json" "$r" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["delivery_ms"]
print("%-6s %-32s %10.3f %10.3f %10.3f %10.3f %10d" % (sys.argv[2], "node+ws (intended send)",
      l["p50"], l["p90"], l["p99"], l["p999"], d["missing"]))
if d["errors"]:
    print("node client: %d errors" % d["errors"])
PY
done

# idle: a fresh server for each run, so that each reads its own growth.
kill $SERVER 2>/dev/null
wait $SERVER 2>/dev/null || true
echo
echo "idle: $IDLE_PLAYERS guest sessions over the 100x100 grid, held 15 s; MIMALLOC_PURGE_DELAY=0 mudshard --shards $SHARDS, fresh for each run"
printf '%-6s %-32s %12s %12s %16s\n' round client rss_before_kib rss_after_kib bytes_per_session
for r in $(seq "$ROUNDS"); do
    for client in loadgen node; do
        rm -rf "$WORK/data"
        MIMALLOC_PURGE_DELAY=0 "$BIN/mudshard" --listen 127.0.0.1:$PORT --shards "$SHARDS" --world grid:100x100 \
            --data-dir "$WORK/data" --connections-per-ip-max 65536 >"$WORK/server.log" 2>&1 &
        SERVER=$!
        for _ in $(seq 50); do
            curl -s --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null && break
            sleep 0.1
        done
        if [[ $client == loadgen ]]; then
            "$BIN/loadgen" idle --target 127.0.0.1:$PORT --players "$IDLE_PLAYERS" --ramp-rate 5000 --concurrency 256 \
                --warmup 2 --duration 15 --source-ips 20 --grid-width 100 --grid-height 100 \
                --server-pid $SERVER --json "$WORK/lg.json" --quiet >/dev/null
            python3 - "$WORK/lg.json" "$r" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["server"]
print("%-6s %-32s %12d %12d %16.0f" % (sys.argv[2], "loadgen", s["rss_before_kib"], s["rss_after_kib"], s["rss_per_session_bytes"]))
PY
        else
            node "$ROOT/bench/crosscheck/idle.mjs" --target 127.0.0.1:$PORT --server-pid $SERVER \
                --players "$IDLE_PLAYERS" --hold 17 --source-ips 20 >"$WORK/node.json"
            python3 - "$WORK/node.json" "$r" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("%-6s %-32s %12d %12d %16d" % (sys.argv[2], "node+ws", d["rss_before_kib"], d["rss_after_kib"], d["rss_per_session_bytes"]))
if d["dropped"]:
    print("node client: %d sessions dropped" % d["dropped"])
PY
        fi
        kill $SERVER
        wait $SERVER 2>/dev/null || true
    done
done
