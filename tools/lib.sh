# shellcheck shell=bash disable=SC2154  # bench_name, build_dir and keep come from the sourcing script
# lib.sh: what the benchmark scripts share, sourced by tools/bench-*.sh:
# finding the binaries in a build directory, picking a free loopback port,
# starting a server with every file descriptor the hard limit allows,
# waiting until it listens, and stopping it (SIGTERM, then SIGKILL after
# 10 s) and removing the work directory when the script exits.
#
# For the nodes of a cluster it also starts a redis-server of its own (the
# shared store, synced as operations.md asks) and stops every node and that
# Redis at exit.
#
# The sourcing script sets bench_name (the prefix of its messages) and
# build_dir before calling these; the functions read and set the globals
# port, work_dir, keep, server_pid, server_log, node_pids, redis_pid,
# redis_port and redis_url.

# Prints "<bench_name>: message" on stderr and exits 2.
die() {
    echo "$bench_name: $*" >&2
    exit 2
}

# Prints the path of an executable: the given path if there is one, or the
# first file called name under build_dir.
find_binary() { # name [explicit path]
    local name=$1 given=${2:-} found
    if [ -n "$given" ]; then
        [ -x "$given" ] || die "$given is not an executable"
        echo "$given"
        return
    fi
    [ -d "$build_dir" ] || die "build directory $build_dir does not exist (use --build)"
    found=$(find "$build_dir" -maxdepth 4 -type f -name "$name" -perm -u+x 2>/dev/null | head -n 1)
    [ -n "$found" ] || die "no $name under $build_dir"
    echo "$found"
}

port_in_use() {
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# Prints a free port in 20000-32767, or nothing.
free_port() {
    local candidate
    for _ in $(seq 1 50); do
        candidate=$((20000 + RANDOM % 12768))
        if ! port_in_use "$candidate"; then
            echo "$candidate"
            return
        fi
    done
}

# Sets port to a free port in 20000-32767 unless one was given, in which
# case it must be free.
pick_port() {
    if [ -z "$port" ]; then
        port=$(free_port)
        [ -n "$port" ] || die "no free port found"
    elif port_in_use "$port"; then
        die "port $port is already in use"
    fi
}

# Starts "$@" in the background with its output in server_log, allowed
# every file the hard limit allows; sets server_pid.
start_server() { # command args...
    (
        ulimit -n "$(ulimit -Hn)"
        exec "$@"
    ) >"$server_log" 2>&1 &
    server_pid=$!
}

# Waits up to 15 s for the server (kind names it in messages) to listen on
# port (or the port given), then a second for its start-up allocations to
# settle; dies with the log's last lines if it exits or does not listen.
wait_listening() { # kind [port]
    local p=${2:-$port}
    for _ in $(seq 1 150); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 20 "$server_log" >&2
            die "$1 exited during start-up"
        fi
        port_in_use "$p" && break
        sleep 0.1
    done
    port_in_use "$p" || { tail -n 20 "$server_log" >&2; die "$1 is not listening on $p"; }
    sleep 1
}

# Stops a process of ours with SIGTERM, and SIGKILL if it is still there
# after 10 s.
stop_pid() { # pid
    [ -n "$1" ] || return 0
    if kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$1" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$1" 2>/dev/null; then
            echo "$bench_name: process $1 did not stop on SIGTERM within 10s, killing it" >&2
            kill -KILL "$1" 2>/dev/null || true
        fi
    fi
    wait "$1" 2>/dev/null || true
}

stop_server() {
    stop_pid "$server_pid"
    server_pid=""
}

# The other nodes of a cluster: started with start_server, their pids
# added here; stop_nodes stops them all.
node_pids=()
stop_nodes() {
    local p
    for p in "${node_pids[@]}"; do
        stop_pid "$p"
    done
    node_pids=()
}

redis_pid=""
redis_port=""
redis_url=""
redis_args=() # more redis-server arguments, after the ones below

redis_cli() { # args...
    redis-cli -p "$redis_port" "$@"
}

# Starts a redis-server of our own on a free loopback port with its files in
# dir, every write on disk before it replies (appendfsync always) and no
# snapshots; sets redis_pid, redis_port and redis_url. With an RDB file,
# starts from its data: Redis reads an RDB only while the append-only file
# is off, so that is switched on once the data is in, and this waits until
# the AOF holds it.
start_redis() { # dir [rdb]
    local dir=$1 rdb=${2:-} aof=yes
    command -v redis-server >/dev/null || die "redis-server is not installed"
    mkdir -p "$dir"
    if [ -n "$rdb" ]; then
        cp "$rdb" "$dir/dump.rdb"
        aof=no
    fi
    redis_port=$(free_port)
    [ -n "$redis_port" ] || die "no free port for Redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --appendonly "$aof" \
        --appendfsync always --save "" --maxmemory-policy noeviction \
        --logfile redis.log "${redis_args[@]}" >/dev/null 2>&1 &
    redis_pid=$!
    # shellcheck disable=SC2034  # read by the sourcing script
    redis_url="redis://127.0.0.1:$redis_port"
    for _ in $(seq 1 100); do
        [ "$(redis_cli PING 2>/dev/null)" = PONG ] && break
        kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited during start-up"
        sleep 0.1
    done
    [ "$(redis_cli PING 2>/dev/null)" = PONG ] || die "redis-server did not start"
    if [ -n "$rdb" ]; then
        redis_cli CONFIG SET appendonly yes >/dev/null
        for _ in $(seq 1 600); do
            redis_cli INFO persistence | tr -d '\r' |
                grep -q '^aof_rewrite_in_progress:0' &&
                redis_cli INFO persistence | tr -d '\r' | grep -q '^aof_rewrite_scheduled:0' &&
                redis_cli INFO persistence | tr -d '\r' | grep -q '^aof_enabled:1' && return 0
            sleep 0.1
        done
        die "Redis did not write its append-only file"
    fi
}

stop_redis() {
    stop_pid "$redis_pid"
    redis_pid=""
}

# shellcheck disable=SC2317  # called from the EXIT trap
bench_cleanup() {
    stop_server
    stop_nodes
    stop_redis
    if [ "$keep" = 1 ]; then
        echo "$bench_name: kept $work_dir" >&2
    else
        rm -rf "$work_dir"
    fi
}

# Makes work_dir (a fresh temporary directory named after prefix) and
# arranges for the server to stop and work_dir to go when the script exits.
bench_work_dir() { # prefix
    work_dir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    server_log="$work_dir/server.log"
    server_pid=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}
