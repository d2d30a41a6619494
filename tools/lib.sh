# shellcheck shell=bash disable=SC2154  # bench_name, build_dir and keep come from the sourcing script
# lib.sh: what the benchmark scripts share, sourced by tools/bench-*.sh:
# finding the binaries in a build directory, picking a free loopback port,
# starting a server with every file descriptor the hard limit allows,
# waiting until it listens, and stopping it (SIGTERM, then SIGKILL after
# 10 s) and removing the work directory when the script exits.
#
# The sourcing script sets bench_name (the prefix of its messages) and
# build_dir before calling these; the functions read and set the globals
# port, work_dir, keep, server_pid and server_log.

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

# Sets port to a free port in 20000-32767 unless one was given, in which
# case it must be free.
pick_port() {
    local candidate
    if [ -z "$port" ]; then
        for _ in $(seq 1 50); do
            candidate=$((20000 + RANDOM % 12768))
            if ! port_in_use "$candidate"; then
                port=$candidate
                break
            fi
        done
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
# port, then a second for its start-up allocations to settle; dies with the
# log's last lines if it exits or does not listen.
wait_listening() { # kind
    for _ in $(seq 1 150); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 20 "$server_log" >&2
            die "$1 exited during start-up"
        fi
        port_in_use "$port" && break
        sleep 0.1
    done
    port_in_use "$port" || { tail -n 20 "$server_log" >&2; die "$1 is not listening on $port"; }
    sleep 1
}

# Stops the server with SIGTERM, and SIGKILL if it is still there after 10 s.
stop_server() {
    [ -n "$server_pid" ] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "$bench_name: server did not stop on SIGTERM within 10s, killing it" >&2
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# shellcheck disable=SC2317  # called from the EXIT trap
bench_cleanup() {
    stop_server
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
