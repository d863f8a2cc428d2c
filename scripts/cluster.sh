#!/usr/bin/env bash
# A two-host mudshard cluster on this machine, for trying the Redis bridge:
# a local redis-server and hosts a and b from shards/cluster/a.toml and
# b.toml (one world of five zones, split between them).
#
#   scripts/cluster.sh start    build if needed, start redis, a and b
#   scripts/cluster.sh status   each host's /healthz (bridge state, hosts)
#   scripts/cluster.sh stop     stop a and b (SIGTERM), then redis, by pid
#
# Ports: redis 6390 (the maps' redis URL), host a 4001, host b 4002; open
# http://127.0.0.1:4001/ and http://127.0.0.1:4002/ in a browser. Each host's
# SQLite file is in data/cluster/<host>/, logs and pid files in data/cluster/.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=data/cluster
REDIS_PORT=6390
BIN=target/release/mudshard
HOSTS=(a b)

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid" || true; }

alive() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

wait_port() { # host port seconds
    local deadline=$((SECONDS + $3))
    until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "cluster.sh: nothing answers on $1:$2 after $3 s" >&2
            return 1
        fi
        sleep 0.1
    done
}

start() {
    command -v redis-server >/dev/null || {
        echo "cluster.sh: redis-server is missing; install it with: apt-get install -y redis-server" >&2
        exit 1
    }
    mkdir -p "$RUN"
    if [ ! -x "$BIN" ]; then
        cargo build --release --locked --bin mudshard
    fi
    if alive redis; then
        echo "redis already running (pid $(pid_of redis))"
    else
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no >"$RUN/redis.log" 2>&1 &
        echo $! >"$RUN/redis.pid"
        wait_port 127.0.0.1 "$REDIS_PORT" 10
        echo "redis   pid $(pid_of redis)  127.0.0.1:$REDIS_PORT"
    fi
    for h in "${HOSTS[@]}"; do
        if alive "$h"; then
            echo "host $h already running (pid $(pid_of "$h"))"
            continue
        fi
        "$BIN" --config "shards/cluster/$h.toml" --data-dir "$RUN/$h" >"$RUN/$h.log" 2>&1 &
        echo $! >"$RUN/$h.pid"
    done
    for h in "${HOSTS[@]}"; do
        local port
        port=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)".*/\1/p' "shards/cluster/$h.toml")
        wait_port 127.0.0.1 "$port" 10
        echo "host $h  pid $(pid_of "$h")  http://127.0.0.1:$port/  (log $RUN/$h.log)"
    done
}

status() {
    for h in "${HOSTS[@]}"; do
        local port
        port=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)".*/\1/p' "shards/cluster/$h.toml")
        if alive "$h"; then
            printf 'host %s: ' "$h"
            curl -s --max-time 2 "http://127.0.0.1:$port/healthz" || echo "no answer"
            echo
        else
            echo "host $h: not running"
        fi
    done
    alive redis && echo "redis: pid $(pid_of redis)" || echo "redis: not running"
}

stop_one() { # name
    local pid
    pid=$(pid_of "$1")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "cluster.sh: $1 (pid $pid) did not stop within 10 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped $1 (pid $pid)"
    fi
    rm -f "$RUN/$1.pid"
}

stop() {
    for h in "${HOSTS[@]}"; do
        stop_one "$h"
    done
    stop_one redis
}

case "${1:-}" in
start) start ;;
status) status ;;
stop) stop ;;
*) usage ;;
esac
