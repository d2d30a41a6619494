#!/usr/bin/env bash
# bench-conns.sh: measures what N idle WebSocket connections cost a server.
#
# It starts a fresh server on a free loopback port (yjtd from a build
# directory, or with --node the Node "ws" baseline in tools/ws-node-baseline),
# records the server's resident memory once it is up, opens N connections to
# it with yjt-load (enough worker processes and source addresses for N), holds
# them idle, prints yjt-load's JSON report (plus the server kind and whether
# the server survived) on stdout, then stops the server with SIGTERM and
# removes its temporary data directory.
#
# With yjtd, all connections belong to one account ("load", made with
# yjtctl).  By default yjt-load logs in once with its password and every
# connection then resumes with that token (auth.token) under its own
# device_id, so the run measures connections rather than password hashing;
# --auth login makes every connection do a full password login.
#
# Examples:
#   tools/bench-conns.sh --build build 19000
#   tools/bench-conns.sh --build build --auth login --rate 50 500
#   tools/bench-conns.sh --build build --node 19000

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
bench_name=bench-conns
# shellcheck source=tools/lib.sh
. "$script_dir/lib.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [options] N

  --build DIR     build directory holding yjtd, yjtctl and yjt-load
                  (default: $repo_dir/build)
  --node          benchmark the Node baseline server instead of yjtd
  --yjtd PATH     explicit yjtd binary      (default: found under --build)
  --yjtctl PATH   explicit yjtctl binary    (default: found under --build)
  --load PATH     explicit yjt-load binary  (default: found under --build)
  --auth MODE     token  (default) log in once with the password, then every
                         connection uses auth.token with that token
                  login  every connection sends auth.login (password hashing
                         on the server for each one; use a modest N or --rate)
                  none   connect only (always used for --node)
  --tls           yjtd only: serve wss with a throw-away self-signed certificate
  --hold S        seconds to hold the connections idle (default 10)
  --rate R        connection attempts per second per yjt-load process
                  (default 0 = as fast as the in-flight limit allows)
  --procs P       yjt-load worker processes (default: ceil(N/9500))
  --sources S     loopback source addresses (default: ceil(N/5000))
  --timeout S     hard limit for yjt-load (default: hold + 60 + N/100 seconds,
                  N/20 instead of N/100 with --auth login)
  --port PORT     listen port (default: a free port in 20000-32767)
  --set K=V       yjtd only: pass --set K=V to the server (repeatable)
  --keep          keep the temporary data directory and server log
  -h, --help      this text
EOF
}

build_dir="$repo_dir/build"
use_node=0
yjtd=""
yjtctl=""
load=""
auth="token"
tls=0
hold=10
rate=0
procs=""
sources=""
timeout_s=""
port=""
keep=0
conns=""
server_sets=()

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build_dir=${2:?--build needs a directory}; shift 2 ;;
    --node) use_node=1; shift ;;
    --yjtd) yjtd=${2:?}; shift 2 ;;
    --yjtctl) yjtctl=${2:?}; shift 2 ;;
    --load) load=${2:?}; shift 2 ;;
    --auth) auth=${2:?}; shift 2 ;;
    --tls) tls=1; shift ;;
    --hold) hold=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --procs) procs=${2:?}; shift 2 ;;
    --sources) sources=${2:?}; shift 2 ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    --set) server_sets+=(--set "${2:?}"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        [ -z "$conns" ] || die "more than one N given"
        conns=$1
        shift
        ;;
    esac
done

[ -n "$conns" ] || { usage >&2; exit 2; }
[[ "$conns" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
[[ "$hold" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--hold must be a number of seconds"
case "$auth" in token | login | none) ;; *) die "--auth must be token, login or none" ;; esac

load=$(find_binary yjt-load "$load")
if [ "$use_node" = 1 ]; then
    [ "$tls" = 0 ] || die "--tls is not supported with --node"
    auth=none
    node_dir="$script_dir/ws-node-baseline"
    command -v node >/dev/null || die "node is not installed"
    [ -d "$node_dir/node_modules/ws" ] ||
        die "the Node baseline needs its dependencies: (cd $node_dir && npm install)"
else
    yjtd=$(find_binary yjtd "$yjtd")
    yjtctl=$(find_binary yjtctl "$yjtctl")
fi

# enough workers and source addresses for N (a process may hold 20,000 files)
[ -n "$procs" ] || procs=$(((conns + 9499) / 9500))
[ -n "$sources" ] || sources=$(((conns + 4999) / 5000))
if [ -z "$timeout_s" ]; then
    if [ "$auth" = login ]; then
        timeout_s=$(awk -v h="$hold" -v n="$conns" 'BEGIN { printf "%d", h + 60 + n / 20 }')
    else
        timeout_s=$(awk -v h="$hold" -v n="$conns" 'BEGIN { printf "%d", h + 60 + n / 100 }')
    fi
fi

pick_port

bench_work_dir yjt-bench

# ---- start the server -------------------------------------------------------

if [ "$use_node" = 1 ]; then
    kind=node
    node "$node_dir/server.js" --port "$port" >"$server_log" 2>&1 &
    server_pid=$!
else
    kind=yjtd
    data_dir="$work_dir/data"
    mkdir -p "$data_dir"
    "$yjtctl" --data-dir "$data_dir" user add --username load --password loadpass1 \
        --role gov --org 44 >"$work_dir/yjtctl.log" 2>&1 ||
        { cat "$work_dir/yjtctl.log" >&2; die "yjtctl user add failed"; }
    server_args=(--listen "127.0.0.1:$port" --data-dir "$data_dir" "${server_sets[@]}")
    if [ "$tls" = 1 ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$work_dir/key.pem" -out "$work_dir/cert.pem" -days 1 \
            -subj /CN=localhost >/dev/null 2>&1 || die "openssl could not make a certificate"
        server_args+=(--tls-cert "$work_dir/cert.pem" --tls-key "$work_dir/key.pem")
    fi
    start_server "$yjtd" "${server_args[@]}"
fi

wait_listening "$kind"
baseline=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")

echo "bench-conns: $kind pid $server_pid on 127.0.0.1:$port, baseline RSS $baseline KiB;" \
    "$conns connections, $procs procs, $sources sources, auth $auth, hold ${hold}s" >&2

# ---- load --------------------------------------------------------------------

load_args=(--port "$port" --conns "$conns" --procs "$procs" --sources "$sources"
    --hold "$hold" --rate "$rate" --timeout "$timeout_s"
    --server-pid "$server_pid" --baseline-rss "$baseline")
[ "$tls" = 1 ] && load_args+=(--tls)
case "$auth" in
token) load_args+=(--user load --password loadpass1 --token-from-login) ;;
login) load_args+=(--user load --password loadpass1) ;;
none) load_args+=(--no-auth) ;;
esac

set +e
report=$("$load" "${load_args[@]}")
load_rc=$?
set -e

alive=false
kill -0 "$server_pid" 2>/dev/null && alive=true
if [ "$alive" = false ]; then
    echo "bench-conns: $kind died during the run; last log lines:" >&2
    tail -n 20 "$server_log" >&2
fi

if [ -n "$report" ]; then
    if command -v jq >/dev/null; then
        jq -c --arg server "$kind" --argjson alive "$alive" \
            '{server: $server, server_alive_after: $alive} + .' <<<"$report"
    else
        # shellcheck disable=SC2001
        sed "s/^{/{\"server\":\"$kind\",\"server_alive_after\":$alive,/" <<<"$report"
    fi
fi

stop_server
[ "$alive" = true ] || exit 1
exit "$load_rc"
