#!/usr/bin/env bash
# Runs a command with YJT_TEST_REDIS set to the address of a redis-server
# of its own: started here on a free loopback port, with its append-only
# log synced at every write (as docs/operations.md asks of production),
# in a temporary directory, and stopped when the command ends.
set -euo pipefail
dir=$(mktemp -d "${TMPDIR:-/tmp}/yjt-redis-XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
for attempt in 1 2 3 4 5; do
  port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
    --appendfsync always --save '' --daemonize no --logfile "$dir/redis.log" &
  pid=$!
  for _ in $(seq 50); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      break 2
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
if [ -z "$pid" ]; then
  echo "with_redis: redis-server did not start" >&2
  cat "$dir/redis.log" >&2 || true
  exit 1
fi
YJT_TEST_REDIS="redis://127.0.0.1:$port" "$@"
