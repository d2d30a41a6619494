#!/usr/bin/env bash
# bench-ingest.sh: readings ingested per second by one yjtd, in batches of
# 1,000 over POST /api/v1/readings, with 440,000 sensors configured.
#
# It makes a fresh data directory (on tmpfs under /dev/shm by default, for
# the CPU-bound number; --disk puts it under $TMPDIR on disk), creates one
# enterprise, imports the sensors with yjtctl (in files of 50,000), creates a
# gateway API key, starts yjtd on a free loopback port, runs yjt-ingest
# against it and prints yjt-ingest's JSON line (plus where the store was),
# then stops the server with SIGTERM and removes everything (--keep keeps
# it). With --runs N the measurement is repeated N times on the same server
# (each run's readings become the new latest of every sensor).
#
# Examples:
#   tools/bench-ingest.sh --build build
#   tools/bench-ingest.sh --build build --disk --seconds 20
#   tools/bench-ingest.sh --build build --sensors 10000 --conns 2

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
build="$repo_dir/build"
sensors=440000
conns=4
batch=1000
seconds=10
warmup=3
runs=1
disk=0
keep=0
sets=()

usage() {
    cat <<USAGE
usage: $(basename "$0") [options]
  --build DIR     build directory with yjtd, yjtctl, yjt-ingest (default: $build)
  --sensors N     sensors configured (default 440000)
  --conns C       keep-alive connections posting (default 4)
  --batch B       readings per request (default 1000)
  --seconds S     measured seconds (default 10), after --warmup S (default 3)
  --runs N        measurements on the same server (default 1)
  --disk          store on disk (under \$TMPDIR or /tmp) instead of tmpfs
  --set K=V       pass --set K=V to yjtd (repeatable)
  --keep          keep the data directory and server log
USAGE
}

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --sensors) sensors=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --disk) disk=1; shift ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

for b in yjtd yjtctl yjt-ingest; do
    [ -x "$build/$b" ] || { echo "bench-ingest: $build/$b not built" >&2; exit 2; }
done
if [ "$disk" = 1 ]; then base=${TMPDIR:-/tmp}; store=disk; else base=/dev/shm; store=tmpfs; fi
dir=$(mktemp -d "$base/yjt-bench-ingest.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    if [ "$keep" = 1 ]; then echo "bench-ingest: kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

ctl() { "$build/yjtctl" --data-dir "$dir/data" "$@"; }
ctl enterprise add --id bench-e1 --name "Bench Plant" --division 440106 >/dev/null
echo "bench-ingest: importing $sensors sensors ($store)" >&2
start=$(date +%s)
/usr/bin/python3 - "$dir" "$sensors" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
chunk = 50000
for f, lo in enumerate(range(0, n, chunk)):
    rows = [{"id": f"s{i:06d}", "enterprise": "bench-e1", "kind": "level", "unit": "m",
             "thresholds": {"low": -1.0, "high": 1000.0}, "deadband": 0.5,
             "interrupt_after_s": 300} for i in range(lo, min(n, lo + chunk))]
    with open(f"{d}/sensors.{f:03d}.json", "w") as out:
        json.dump(rows, out)
PY
for f in "$dir"/sensors.*.json; do
    ctl import sensors --file "$f" >/dev/null
    rm -f "$f"
done
echo "bench-ingest: imported in $(($(date +%s) - start)) s" >&2
key=$(ctl apikey create --enterprise bench-e1 2>/dev/null)

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/yjtd" --listen "127.0.0.1:$port" --data-dir "$dir/data" --set log_level=warn \
    "${sets[@]}" >"$dir/yjtd.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$dir/yjtd.log" >&2; exit 1; }
    sleep 0.1
done
# yjtd's CPU time (user + system, clock ticks) so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tck=$(getconf CLK_TCK)
for run in $(seq 1 "$runs"); do
    c0=$(cpu_ticks)
    out=$("$build/yjt-ingest" --port "$port" --key "$key" --sensors "$sensors" --conns "$conns" \
        --batch "$batch" --warmup "$warmup" --seconds "$seconds") || rc=$?
    c1=$(cpu_ticks)
    # server CPU per accepted reading over the whole run (warm-up included):
    # steadier than the rate on a shared machine
    acc=$(echo "$out" | sed 's/.*"accepted":\([0-9]*\).*/\1/')
    us=$(awk -v c=$((c1 - c0)) -v t="$tck" -v a="$acc" 'BEGIN { printf "%.2f", a ? c * 1e6 / t / a : 0 }')
    alive=$(kill -0 "$pid" 2>/dev/null && echo true || echo false)
    echo "${out%\}},\"server_cpu_us_per_reading\":$us,\"run\":$run,\"store\":\"$store\",\"server_alive\":$alive}"
done
exit "${rc:-0}"
