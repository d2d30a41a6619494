#!/usr/bin/env bash
# bench-calls.sh: measures call set-up through yjtd (invite -> incoming ->
# accept -> accepted) at a paced rate with about a thousand calls up.
#
# It makes a fresh data directory with yjtctl: division 4401 with ten
# enterprises, and for each pair i a gov user cbg<i> of 4401 (the caller)
# and a corp user cbc<i> of one of those enterprises (the callee), with
# cheap password hashes (YJT_HASH_ITERATIONS) since logins are not what is
# measured.  Then it starts yjtd on a free loopback port with the per-user
# invite limit raised (a benchmark pair calls far more often than a person;
# calls_per_user keeps its default, as no user is in two calls at once), runs
# yjt-callbench against it, prints yjt-callbench's JSON report (plus the
# rate, the run number and whether the server survived) on stdout, and
# stops the server with SIGTERM.  With several rates (--rate 250,500,1000)
# and/or --runs N, every run gets a fresh server on a fresh copy of the
# data directory made once at the start, so no run inherits the call
# records of another.  With --yjtd given more than once, each run is made
# with each of those servers in turn (on the same accounts), so that a
# before/after comparison shares the machine's conditions; every report
# line then says which server it measured.  Everything is removed at the end.
#
# The default is the target of the call signalling work: 500 set-ups/s with
# 1,000 calls up (each held 2 s), 30 s measured after a 3 s warm-up.
#
# Examples:
#   tools/bench-calls.sh --build build --runs 3
#   tools/bench-calls.sh --build build --rate 250,500,1000 --concurrent 1000
#   tools/bench-calls.sh --build build --rate 250 --duration 60
#   tools/bench-calls.sh --build build --yjtd old/yjtd --yjtd build/yjtd --runs 3

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
bench_name=bench-calls
# shellcheck source=tools/lib.sh
. "$script_dir/lib.sh"

usage() {
    cat <<EOF
usage: $(basename "$0") [options]

  --build DIR        build directory holding yjtd, yjtctl and yjt-callbench
                     (default: $repo_dir/build)
  --rate R[,R...]    call set-ups per second (default 500); a list runs each
  --runs N           runs per rate, each on a fresh server (default 1)
  --concurrent C     calls to keep up: each is held C/R seconds (default 1000)
  --hold S           hold time in seconds instead of C/R
  --duration S       measured seconds (default 30)
  --warmup S         unmeasured seconds first (default: hold + 1)
  --pairs P          caller/callee pairs (default: as yjt-callbench computes)
  --procs N          yjt-callbench worker processes (default 1)
  --sources S        loopback source addresses for the clients (default 1)
  --yjtd PATH        the yjtd to measure (default: the one in --build);
                     repeat to compare: every run is made with each in turn
  --set K=V          pass --set K=V to yjtd (repeatable; after the defaults)
  --port PORT        listen port (default: a free port in 20000-32767)
  --callbench-arg A  pass A on to yjt-callbench (repeatable)
  --wait-idle        before each run, wait (up to 10 min) until the machine
                     has been idle for 10 s (under 20% of one core busy): on a
                     shared machine other work skews the latency; the report's
                     others_cpu_pct says how much of it ran during the run
  --keep             keep the temporary data directory and server log
  -h, --help         this text
EOF
}

build_dir="$repo_dir/build"
rates=500
runs=1
concurrent=1000
hold=""
duration=30
warmup=""
pairs=""
procs=1
sources=1
port=""
keep=0
wait_idle=0
server_sets=()
yjtd_list=()
extra_args=()

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build_dir=${2:?--build needs a directory}; shift 2 ;;
    --rate) rates=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --concurrent) concurrent=${2:?}; shift 2 ;;
    --hold) hold=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --pairs) pairs=${2:?}; shift 2 ;;
    --procs) procs=${2:?}; shift 2 ;;
    --sources) sources=${2:?}; shift 2 ;;
    --yjtd) yjtd_list+=("${2:?--yjtd needs a path}"); shift 2 ;;
    --set) server_sets+=(--set "${2:?}"); shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    --callbench-arg) extra_args+=("${2:?}"); shift 2 ;;
    --keep) keep=1; shift ;;
    --wait-idle) wait_idle=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

number_re='^[0-9]+(\.[0-9]+)?$'
IFS=, read -r -a rate_list <<<"$rates"
[ "${#rate_list[@]}" -gt 0 ] || die "--rate needs a number"
for v in "${rate_list[@]}" "$concurrent" "$duration" ${hold:+"$hold"} ${warmup:+"$warmup"}; do
    [[ "$v" =~ $number_re ]] || die "'$v' is not a number"
done
[ -z "$pairs" ] || [[ "$pairs" =~ ^[1-9][0-9]*$ ]] || die "--pairs must be a positive integer"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

if [ "${#yjtd_list[@]}" -eq 0 ]; then
    yjtd_list=("$(find_binary yjtd)")
fi
for y in "${yjtd_list[@]}"; do
    [ -x "$y" ] || die "$y is not an executable"
done
yjtctl=$(find_binary yjtctl)
callbench=$(find_binary yjt-callbench)

# yjt-callbench's defaults, per rate: hold, warm-up and pairs
hold_for() { # rate
    if [ -n "$hold" ]; then echo "$hold"; else awk -v c="$concurrent" -v r="$1" 'BEGIN { print c / r }'; fi
}
warmup_for() { # rate
    if [ -n "$warmup" ]; then echo "$warmup"; else awk -v h="$(hold_for "$1")" 'BEGIN { print h + 1 }'; fi
}
pairs_for() { # rate
    if [ -n "$pairs" ]; then echo "$pairs"; else
        awk -v r="$1" -v h="$(hold_for "$1")" \
            'BEGIN { x = r * (h + 0.25) * 1.1; n = int(x); if (n < x) n++; print n }'
    fi
}
users=0 # enough pairs for every rate
for r in "${rate_list[@]}"; do
    n=$(pairs_for "$r")
    [ "$n" -le "$users" ] || users=$n
done

pick_port

bench_work_dir yjt-bench-calls
template_dir="$work_dir/template" # accounts only, copied for every run
data_dir="$work_dir/data"

# ---- accounts -----------------------------------------------------------------

mkdir -p "$template_dir"
ctl() {
    "$yjtctl" --data-dir "$template_dir" "$@" >>"$work_dir/yjtctl.log" 2>&1 ||
        { tail -n 5 "$work_dir/yjtctl.log" >&2; die "yjtctl $* failed"; }
}
ctl division add --code 44 --name province
ctl division add --code 4401 --name city
for e in $(seq 0 9); do
    ctl enterprise add --id "EBENCH$e" --name "bench enterprise $e" --division 4401
done

echo "bench-calls: creating $((2 * users)) users ($users pairs)..." >&2
t_users=$SECONDS
# two yjtctl processes at a time (SQLite serialises the writes; the rest,
# process start and hashing, runs in parallel)
for i in $(seq 0 $((users - 1))); do
    echo "user add --username cbg$i --password benchpass1 --role gov --org 4401"
    echo "user add --username cbc$i --password benchpass1 --role corp --org EBENCH$((i % 10))" \
        "--position principal"
done | YJT_HASH_ITERATIONS=1000 xargs -P 2 -L 1 "$yjtctl" --data-dir "$template_dir" \
    >>"$work_dir/yjtctl.log" 2>&1 ||
    { tail -n 5 "$work_dir/yjtctl.log" >&2; die "creating users failed"; }
echo "bench-calls: users made in $((SECONDS - t_users))s" >&2

# Busy clock ticks of the whole machine so far (user nice system irq softirq steal).
busy_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

wait_for_idle() {
    local hz a b
    hz=$(getconf CLK_TCK)
    for _ in $(seq 1 60); do
        a=$(busy_ticks)
        sleep 10
        b=$(busy_ticks)
        # under 20% of one core over those 10 s
        [ $((b - a)) -ge $((2 * hz)) ] || return 0
        echo "bench-calls: machine busy ($(((b - a) * 10 / hz))% of one core), waiting" >&2
    done
    echo "bench-calls: the machine did not go idle in 10 min; running anyway" >&2
}

# ---- runs --------------------------------------------------------------------

# One run: a fresh copy of the accounts, a fresh yjtd, yjt-callbench, stop.
# Prints the report line; returns yjt-callbench's status (1 if yjtd died).
run_once() { # rate run yjtd
    local rate=$1 run=$2 yjtd=$3 rate_hold rate_warmup rate_pairs report load_rc alive warnings left
    rate_hold=$(hold_for "$rate")
    rate_warmup=$(warmup_for "$rate")
    rate_pairs=$(pairs_for "$rate")
    [ "$wait_idle" = 0 ] || wait_for_idle
    rm -rf "$data_dir"
    cp -a "$template_dir" "$data_dir"

    server_args=(--listen "127.0.0.1:$port" --data-dir "$data_dir"
        --set invites_per_min=100000
        --set stun_urls=stun:127.0.0.1:3478
        --set turn_urls=turn:127.0.0.1:3478?transport=udp
        --set turn_secret=bench-secret
        "${server_sets[@]}")
    start_server "$yjtd" "${server_args[@]}"
    wait_listening yjtd

    echo "bench-calls: run $run at $rate set-ups/s: $yjtd pid $server_pid on 127.0.0.1:$port," \
        "$concurrent calls up (hold ${rate_hold}s), ${rate_warmup}s warm-up + ${duration}s measured" >&2

    set +e
    report=$("$callbench" --port "$port" --rate "$rate" --hold "$rate_hold" \
        --warmup "$rate_warmup" --duration "$duration" --pairs "$rate_pairs" --procs "$procs" \
        --sources "$sources" --user-prefix cb --password benchpass1 --server-pid "$server_pid" \
        "${extra_args[@]}")
    load_rc=$?
    set -e

    alive=false
    kill -0 "$server_pid" 2>/dev/null && alive=true
    # every call of the run has ended by now: the server should hold none
    left=null
    if [ "$alive" = true ] && command -v curl >/dev/null; then
        left=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics" |
            awk '$1 == "yjt_calls_in_progress" { print $2 }')
        [ -n "$left" ] || left=null
    fi
    if [ "$alive" = false ]; then
        echo "bench-calls: yjtd died during the run; last log lines:" >&2
        tail -n 20 "$server_log" >&2
        load_rc=1
    fi
    warnings=$(grep -cE '^[^ ]+ (warn|error) ' "$server_log" || true)
    echo "bench-calls: server log: $(wc -l <"$server_log") lines, $warnings warning/error lines" >&2
    if [ "$warnings" -gt 0 ]; then
        grep -E '^[^ ]+ (warn|error) ' "$server_log" | tail -n 5 >&2
    fi

    if [ -n "$report" ]; then
        if command -v jq >/dev/null; then
            jq -c --argjson run "$run" --argjson alive "$alive" --argjson w "$warnings" \
                --argjson left "$left" --arg yjtd "$yjtd" \
                '{run: $run, yjtd: $yjtd, server_alive_after: $alive, server_log_warnings: $w,
                  server_calls_in_progress_after: $left} + .' <<<"$report"
        else
            # shellcheck disable=SC2001
            sed "s|^{|{\"run\":$run,\"yjtd\":\"$yjtd\",\"server_alive_after\":$alive,\"server_log_warnings\":$warnings,\"server_calls_in_progress_after\":$left,|" \
                <<<"$report"
        fi
    fi
    stop_server
    if [ "$keep" = 1 ]; then
        mv "$server_log" "$work_dir/server-$rate-$run-$(basename "$(dirname "$yjtd")").log"
    fi
    return "$load_rc"
}

status=0
for r in "${rate_list[@]}"; do
    for run in $(seq 1 "$runs"); do
        for y in "${yjtd_list[@]}"; do
            run_once "$r" "$run" "$y" || status=1
        done
    done
done
exit "$status"
