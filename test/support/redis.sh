#!/usr/bin/env bash
# Start or stop a private Redis for tests, in its own folder, on a loopback port given by the
# caller: nothing is shared with a system Redis.
#   redis.sh start DIR PORT   start (loading DIR/dump.rdb when a stop left one)
#   redis.sh stop DIR         SHUTDOWN SAVE: the data is back at the next start, as with persistence
#   redis.sh kill DIR         SHUTDOWN NOSAVE and forget the data: the next start is empty
#   redis.sh crash DIR        SHUTDOWN NOSAVE: the next start loads the last snapshot (SAVE), losing
#                             every write since, as a restart from an old snapshot or a failover
#                             to a replica that was behind
set -euo pipefail

port_of() { cat "$1/port"; }

start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    echo "$port" > "$dir/port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb --save '' \
        --appendonly no --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 600); do
        if [ "$(redis-cli -p "$port" ping 2> /dev/null)" = PONG ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "Redis did not start on port $port; see $dir/redis.log" >&2
    tail -20 "$dir/redis.log" >&2 || true
    exit 1
}

# Shut down and wait until the process is gone, so the port and the data file are free.
shutdown() {
    local dir=$1 how=$2
    [ -f "$dir/port" ] || return 0
    local pid=""
    [ -f "$dir/redis.pid" ] && pid=$(cat "$dir/redis.pid")
    redis-cli -p "$(port_of "$dir")" shutdown "$how" > /dev/null 2>&1 || true
    if [ -n "$pid" ]; then
        for _ in $(seq 300); do
            kill -0 "$pid" 2> /dev/null || return 0
            sleep 0.1
        done
        kill -9 "$pid" 2> /dev/null || true
    fi
}

case "${1:-}" in
start) start "$2" "$3" ;;
stop) shutdown "$2" save ;;
kill)
    shutdown "$2" nosave
    rm -f "$2/dump.rdb"
    ;;
crash) shutdown "$2" nosave ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR | kill DIR | crash DIR" >&2
    exit 2
    ;;
esac
