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
# With --config redis (or --redis), the store is a redis-server of the
# script's own instead of SQLite: the accounts are made once in a template
# Redis and every run starts a fresh Redis from its snapshot, with every
# write synced as operations.md asks.  With --config redis:K (or --nodes K),
# K yjtd nodes share that Redis on ports PORT .. PORT+K-1; the callers
# connect to the first and the callees to the second, so every call is held
# by the first node and the callee's accept crosses the bus.  --config
# repeated runs each configuration in turn, like --yjtd.  For these runs the
# report adds the CPU of every node and of Redis, Redis's commands (and
# script calls) per set-up, how often each node's loop waited for Redis per
# set-up, counted from the moment every pair is logged in
# to the end of the run (so each set-up's hang-up is in it too).
#
# The default is the target of the call signalling work: 500 set-ups/s with
# 1,000 calls up (each held 2 s), 30 s measured after a 3 s warm-up.
#
# Examples:
#   tools/bench-calls.sh --build build --runs 3
#   tools/bench-calls.sh --build build --rate 250,500,1000 --concurrent 1000
#   tools/bench-calls.sh --build build --rate 250 --duration 60
#   tools/bench-calls.sh --build build --yjtd old/yjtd --yjtd build/yjtd --runs 3
#   tools/bench-calls.sh --build build --rate 250,500 --runs 3 \
#       --config sqlite --config redis --config redis:3

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
  --config C         sqlite (the default), redis (one node on a Redis of our
                     own) or redis:K (K nodes sharing it; callers on the first,
                     callees on the second); repeat to run each in turn
  --redis            the same as --config redis
  --redis-arg A      pass A on to redis-server (repeatable; after the script's
                     own settings, e.g. --redis-arg --appendfsync --redis-arg
                     everysec to see what the syncs cost)
  --nodes K          the same as --config redis:K
  --port PORT        listen port (default: a free port in 20000-32767); node k
                     of a cluster listens on PORT+k
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
configs=()
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
    --config) configs+=("${2:?--config needs sqlite, redis or redis:K}"); shift 2 ;;
    --redis) configs+=(redis); shift ;;
    --redis-arg) redis_args+=("${2:?}"); shift 2 ;;
    --nodes) configs+=("redis:${2:?--nodes needs a number}"); shift 2 ;;
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
[ "${#configs[@]}" -gt 0 ] || configs=(sqlite)
want_sqlite=0
want_redis=0
max_nodes=1
for c in "${configs[@]}"; do
    case "$c" in
    sqlite) want_sqlite=1 ;;
    redis) want_redis=1 ;;
    redis:[1-9] | redis:[1-9][0-9])
        want_redis=1
        [ "${c#redis:}" -le "$max_nodes" ] || max_nodes=${c#redis:}
        ;;
    *) die "--config $c: want sqlite, redis or redis:K" ;;
    esac
done

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
for k in $(seq 1 $((max_nodes - 1))); do
    ! port_in_use $((port + k)) || die "port $((port + k)) (node $k) is already in use"
done

bench_work_dir yjt-bench-calls
template_dir="$work_dir/template" # accounts only, copied for every run
data_dir="$work_dir/data"
redis_prefix=bench:
template_rdb="$work_dir/redis-template/dump.rdb" # the same accounts in Redis

# ---- accounts -----------------------------------------------------------------

# Makes the division, the enterprises and the users in the store that the
# yjtctl arguments given name (--data-dir DIR, or --redis URL --redis-prefix P).
make_accounts() { # store arguments...
    local where=("$@") t_users
    ctl() {
        "$yjtctl" "${where[@]}" "$@" >>"$work_dir/yjtctl.log" 2>&1 ||
            { tail -n 5 "$work_dir/yjtctl.log" >&2; die "yjtctl $* failed"; }
    }
    ctl division add --code 44 --name province
    ctl division add --code 4401 --name city
    for e in $(seq 0 9); do
        ctl enterprise add --id "EBENCH$e" --name "bench enterprise $e" --division 4401
    done

    echo "bench-calls: creating $((2 * users)) users ($users pairs) in ${where[0]#--}..." >&2
    t_users=$SECONDS
    # two yjtctl processes at a time (SQLite serialises the writes; the rest,
    # process start and hashing, runs in parallel)
    for i in $(seq 0 $((users - 1))); do
        echo "user add --username cbg$i --password benchpass1 --role gov --org 4401"
        echo "user add --username cbc$i --password benchpass1 --role corp --org EBENCH$((i % 10))" \
            "--position principal"
    done | YJT_HASH_ITERATIONS=1000 xargs -P 2 -L 1 "$yjtctl" "${where[@]}" \
        >>"$work_dir/yjtctl.log" 2>&1 ||
        { tail -n 5 "$work_dir/yjtctl.log" >&2; die "creating users failed"; }
    echo "bench-calls: users made in $((SECONDS - t_users))s" >&2
}

if [ "$want_sqlite" = 1 ]; then
    mkdir -p "$template_dir"
    make_accounts --data-dir "$template_dir"
fi
if [ "$want_redis" = 1 ]; then
    start_redis "$work_dir/redis-template"
    make_accounts --redis "$redis_url" --redis-prefix "$redis_prefix"
    redis_cli SAVE >/dev/null
    stop_redis
    [ -s "$template_rdb" ] || die "Redis wrote no snapshot of the accounts"
fi

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

# CPU clock ticks of a process so far (user + system), or 0.
cpu_ticks() { # pid
    [ -r "/proc/$1/stat" ] || { echo 0; return; }
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Writes "cpu LABEL TICKS" for every node (and Redis), Redis's
# commandstats lines and "waits LABEL N" (the times each node's event
# loop waited for Redis, from /metrics) to file: what a run's report
# compares.
sample_cluster() { # file
    local k out
    out="cpu node0 $(cpu_ticks "$server_pid")"
    for k in "${!node_pids[@]}"; do
        out+=$'\n'"cpu node$((k + 1)) $(cpu_ticks "${node_pids[$k]}")"
    done
    if [ -n "$redis_pid" ]; then
        out+=$'\n'"cpu redis $(cpu_ticks "$redis_pid")"
        out+=$'\n'$(redis_cli INFO commandstats | tr -d '\r' | grep '^cmdstat_')
    fi
    if command -v curl >/dev/null; then
        for k in $(seq 0 ${#node_pids[@]}); do
            out+=$'\n'"waits node$k $(curl -s --max-time 5 "http://127.0.0.1:$((port + k))/metrics" |
                awk '$1 == "yjt_redis_loop_waits_total" { print $2 }')"
        done
    fi
    printf '%s\n' "$out" >"$1"
}

# The first node's main loop turns so far (cumulative counts by upper
# bound), into file.
sample_turns() { # file
    command -v curl >/dev/null || return 0
    curl -s --max-time 5 "http://127.0.0.1:$port/metrics" |
        awk '$1 ~ /^yjt_loop_turn_seconds_bucket/ { print $1, $2 }' >"$1"
}

# The first node's loop turns between two samples as JSON: how many, and
# how many kept the loop busy past 10, 25 and 100 ms.
turns_delta() { # before after
    [ -s "$1" ] && [ -s "$2" ] || { echo null; return; }
    awk 'FNR == NR { was[$1] = $2; next }
        { d[$1] = $2 - was[$1] }
        END {
            all = d["yjt_loop_turn_seconds_bucket{le=\"+Inf\"}"]
            printf "{\"turns\":%d,\"over_10ms\":%d,\"over_25ms\":%d,\"over_100ms\":%d}\n",
                all, all - d["yjt_loop_turn_seconds_bucket{le=\"0.01\"}"],
                all - d["yjt_loop_turn_seconds_bucket{le=\"0.025\"}"],
                all - d["yjt_loop_turn_seconds_bucket{le=\"0.1\"}"]
        }' "$1" "$2"
}

# The difference between two samples as JSON, per set-up: CPU ms of each
# process, and Redis's commands, script calls and commands by name.
cluster_delta() { # before after setups
    awk -v n="$3" -v hz="$(getconf CLK_TCK)" '
        function add(sign, line,   name, calls) {
            if (line ~ /^cpu /) { split(line, f, " "); cpu[f[2]] += sign * f[3]; return }
            if (line ~ /^waits /) { split(line, f, " "); waits[f[2]] += sign * f[3]; return }
            name = line; sub(/^cmdstat_/, "", name); sub(/:.*/, "", name)
            calls = line; sub(/^[^:]*:calls=/, "", calls); sub(/,.*/, "", calls)
            cmd[name] += sign * calls
        }
        FNR == NR { add(-1, $0); next }
        { add(1, $0) }
        END {
            if (n <= 0) { print "null"; exit }
            printf "{\"cpu_ms_per_setup\":{"
            sep = ""
            for (p in cpu) { printf "%s\"%s\":%.3f", sep, p, cpu[p] * 1000 / hz / n; sep = "," }
            total = 0
            for (c in cmd) total += cmd[c]
            printf "},\"redis_loop_waits_per_setup\":{"
            sep = ""
            for (p in waits) { printf "%s\"%s\":%.3f", sep, p, waits[p] / n; sep = "," }
            printf "},\"redis_commands_per_setup\":%.2f", total / n
            printf ",\"redis_scripts_per_setup\":%.3f", (cmd["evalsha"] + cmd["eval"]) / n
            printf ",\"redis_by_command_per_setup\":{"
            sep = ""
            for (c in cmd) if (cmd[c]) { printf "%s\"%s\":%.3f", sep, c, cmd[c] / n; sep = "," }
            print "}}"
        }' "$1" "$2"
}

# ---- runs --------------------------------------------------------------------

# One run: a fresh copy of the accounts, a fresh yjtd, yjt-callbench, stop.
# Prints the report line; returns yjt-callbench's status (1 if yjtd died).
run_once() { # rate run yjtd config
    local rate=$1 run=$2 yjtd=$3 config=$4 rate_hold rate_warmup rate_pairs report load_rc
    local alive warnings left nodes=1 k callee_port=$port logs=() n delta=null turns
    rate_hold=$(hold_for "$rate")
    rate_warmup=$(warmup_for "$rate")
    rate_pairs=$(pairs_for "$rate")
    [ "$config" = sqlite ] || nodes=${config#redis}
    nodes=${nodes#:}
    nodes=${nodes:-1}
    [ "$wait_idle" = 0 ] || wait_for_idle
    rm -rf "$data_dir" "$work_dir/redis"

    common_args=(--set invites_per_min=100000
        --set stun_urls=stun:127.0.0.1:3478
        --set turn_urls=turn:127.0.0.1:3478?transport=udp
        --set turn_secret=bench-secret)
    if [ "$config" = sqlite ]; then
        cp -a "$template_dir" "$data_dir"
        server_log="$work_dir/server.log"
        start_server "$yjtd" --listen "127.0.0.1:$port" --data-dir "$data_dir" \
            "${common_args[@]}" "${server_sets[@]}"
        wait_listening yjtd
        logs=("$server_log")
    else
        start_redis "$work_dir/redis" "$template_rdb"
        # node 0 is server_pid (the callers' node, which holds the calls)
        for k in $(seq 0 $((nodes - 1))); do
            mkdir -p "$data_dir/node$k"
            server_log="$work_dir/server-node$k.log"
            start_server "$yjtd" --listen "127.0.0.1:$((port + k))" --data-dir "$data_dir/node$k" \
                --redis "$redis_url" --set "redis_prefix=$redis_prefix" \
                "${common_args[@]}" "${server_sets[@]}"
            wait_listening "yjtd node $k" $((port + k))
            logs+=("$server_log")
            if [ "$k" -gt 0 ]; then
                node_pids+=("$server_pid")
                server_pid=${first_pid:?}
            else
                first_pid=$server_pid
            fi
        done
        [ "$nodes" -lt 2 ] || callee_port=$((port + 1))
    fi

    echo "bench-calls: run $run at $rate set-ups/s, $config: $yjtd pid $server_pid on" \
        "127.0.0.1:$port, callees on port $callee_port," \
        "$concurrent calls up (hold ${rate_hold}s), ${rate_warmup}s warm-up + ${duration}s measured" >&2

    # the cluster's CPU and Redis's counters from the moment every pair is in
    rm -f "$work_dir/sample-in" "$work_dir/sample-end" "$work_dir"/turns-*
    set +e
    report=$("$callbench" --port "$port" --callee-port "$callee_port" --rate "$rate" \
        --hold "$rate_hold" --warmup "$rate_warmup" --duration "$duration" \
        --pairs "$rate_pairs" --procs "$procs" --sources "$sources" --user-prefix cb \
        --password benchpass1 --server-pid "$server_pid" "${extra_args[@]}" \
        2> >(while IFS= read -r line; do
            printf '%s\n' "$line" >&2
            case $line in *"logged in after"*)
                sample_cluster "$work_dir/sample-in"
                # the measured window's loop turns (not the logins, not the
                # connections closing at the end)
                { sleep "$rate_warmup"; sample_turns "$work_dir/turns-in"
                  sleep "$duration"; sample_turns "$work_dir/turns-end"; } &
                ;;
            esac
        done))
    load_rc=$?
    set -e
    sample_cluster "$work_dir/sample-end"

    alive=false
    kill -0 "$server_pid" 2>/dev/null && alive=true
    for k in "${node_pids[@]}"; do
        kill -0 "$k" 2>/dev/null || alive=false
    done
    # every call of the run has ended by now: the servers should hold none
    left=null
    if [ "$alive" = true ] && command -v curl >/dev/null; then
        left=0
        for k in $(seq 0 $((nodes - 1))); do
            n=$(curl -s --max-time 5 "http://127.0.0.1:$((port + k))/metrics" |
                awk '$1 == "yjt_calls_in_progress" { print $2 }')
            left=$((left + ${n:-0}))
        done
    fi
    if [ "$alive" = false ]; then
        echo "bench-calls: yjtd died during the run; last log lines:" >&2
        tail -n 20 "${logs[@]}" >&2
        load_rc=1
    fi
    warnings=$(cat "${logs[@]}" | grep -cE '^[^ ]+ (warn|error) ' || true)
    echo "bench-calls: server log: $(cat "${logs[@]}" | wc -l) lines, $warnings warning/error lines" >&2
    if [ "$warnings" -gt 0 ]; then
        cat "${logs[@]}" | grep -E '^[^ ]+ (warn|error) ' | tail -n 5 >&2
    fi

    if [ -n "$report" ] && [ "$config" != sqlite ] && [ -s "$work_dir/sample-in" ] &&
        command -v jq >/dev/null; then
        delta=$(cluster_delta "$work_dir/sample-in" "$work_dir/sample-end" \
            "$(jq '.setups_incl_warmup.ok' <<<"$report")")
    fi
    # (the last turns sample is due before yjt-callbench ends; allow for curl)
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work_dir/turns-end" ] && break; sleep 0.5; done
    turns=$(turns_delta "$work_dir/turns-in" "$work_dir/turns-end")
    if [ -n "$report" ]; then
        if command -v jq >/dev/null; then
            jq -c --argjson run "$run" --argjson alive "$alive" --argjson w "$warnings" \
                --argjson left "$left" --arg yjtd "$yjtd" --arg config "$config" \
                --argjson cluster "$delta" --argjson turns "$turns" \
                '{run: $run, yjtd: $yjtd, config: $config, server_alive_after: $alive,
                  server_log_warnings: $w, server_calls_in_progress_after: $left} + .
                  + {server_loop_turns: $turns}
                  + (if $cluster then {cluster: $cluster} else {} end)' <<<"$report"
        else
            # shellcheck disable=SC2001
            sed "s|^{|{\"run\":$run,\"yjtd\":\"$yjtd\",\"config\":\"$config\",\"server_alive_after\":$alive,\"server_log_warnings\":$warnings,\"server_calls_in_progress_after\":$left,|" \
                <<<"$report"
        fi
    fi
    stop_server
    stop_nodes
    stop_redis
    if [ "$keep" = 1 ]; then
        for k in "${!logs[@]}"; do
            mv "${logs[$k]}" "$work_dir/server-$rate-$run-$config-$k-$(basename "$(dirname "$yjtd")").log"
        done
    fi
    return "$load_rc"
}

status=0
for r in "${rate_list[@]}"; do
    for run in $(seq 1 "$runs"); do
        for y in "${yjtd_list[@]}"; do
            for c in "${configs[@]}"; do
                run_once "$r" "$run" "$y" "$c" || status=1
            done
        done
    done
done
exit "$status"
