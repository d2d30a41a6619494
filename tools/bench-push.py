#!/usr/bin/python3
"""Push benchmarks: one push to N online users (fan-out latency) and
sustained pushes delivered per second with N connections.

Starts a fresh yjtd, creates N corp accounts of one enterprise with yjtctl,
connects and logs them in with yjt-load (one connection per user, each
recording the arrival of every push), then publishes notices to the
enterprise's division as a regulator: first --fanouts single notices one
second apart, then notices back to back for --sustain seconds (from
--publishers clients at once, each publishing its next notice when the
last one's reply is in). Every
notice is one push to each of the N users. Latency of a delivery = its
arrival (client wall clock) - the push's created_at (server wall clock,
same machine), in ms; created_at is taken before the push is stored, so
the store write is included.

With --redis, the store is a redis-server of the script's own (fresh for
each run, every write synced as operations.md asks) instead of SQLite in the
data directory; with --nodes K, K yjtd nodes share it (one prefix), the
users' connections are spread over them in turn (user i on node i mod K),
and the notices are published through the first node, so most deliveries
cross the bus. Around the idle wait, the fan-outs and the sustained phase
the script reads Redis's INFO commandstats and reports the commands (and
script calls) per push and per delivery. --config sqlite|redis|redis:K,
repeated, with --runs R, makes R rounds of one run of each configuration in
turn, and ends with the medians per configuration and their ratios to the
first.

    tools/bench-push.py --build build --users 10000
    tools/bench-push.py --build build --users 10000 --redis --nodes 3
    tools/bench-push.py --build build --users 10000 --runs 3 \\
        --config sqlite --config redis --config redis:3
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (NOTICE, PASSWORD, Redis, corp_conns, cpu_s, http, login_token,  # noqa: E402
                      metric, pct, redis_delta, wait_healthy)

PREFIX = "bench:"
IDLE_S = 3.0  # quiet wait before the fan-outs: Redis's background commands


def parse_config(text):
    """'sqlite', 'redis' or 'redis:K' as (store, nodes)."""
    store, _, nodes = text.partition(":")
    if store not in ("sqlite", "redis") or (nodes and not nodes.isdigit()) or \
            (store == "sqlite" and nodes not in ("", "1")):
        raise argparse.ArgumentTypeError(f"{text}: want sqlite, redis or redis:K")
    return store, int(nodes or 1)


def config_name(store, nodes):
    return store if nodes == 1 else f"{store}:{nodes}"


def run_once(a, store, nodes):
    """One fresh server (or cluster) and one measurement; returns the report."""
    yjtd, yjtctl, load = (os.path.join(a.build, x) for x in ("yjtd", "yjtctl", "yjt-load"))
    yjtd = a.yjtd or yjtd
    data = tempfile.mkdtemp(prefix="bench-push-")
    env = dict(os.environ, YJT_HASH_ITERATIONS="1000")
    redis = Redis(os.path.join(data, "redis")) if store == "redis" else None
    if redis:
        redis.start()
        where = ["--redis", redis.url, "--redis-prefix", PREFIX]
    else:
        where = ["--data-dir", data]

    def ctl(*args):
        subprocess.run([yjtctl, *where, *args], check=True, env=env, stdout=subprocess.DEVNULL)

    ports = [a.port + i for i in range(nodes)]
    srvs = []
    try:
        t0 = time.time()
        ctl("enterprise", "add", "--id", "E1", "--name", "Bench Chemicals", "--division",
            "440106")
        ctl("user", "add", "--username", "bench-gov", "--password", PASSWORD, "--role", "gov",
            "--org", "4401")
        ctl("user", "add", "--username", "load", "--password", PASSWORD, "--role", "corp",
            "--org", "E1", "--position", "principal", "--count", str(a.users))
        print(f"{config_name(store, nodes)}: accounts made in {time.time() - t0:.1f} s",
              file=sys.stderr)

        for i, port in enumerate(ports):
            # with SQLite the one node's store is the accounts' data directory
            node_dir = os.path.join(data, f"node{i}") if redis else data
            os.makedirs(node_dir, exist_ok=True)
            cmd = [yjtd, "--listen", f"127.0.0.1:{port}", "--data-dir", node_dir,
                   "--log-level", "warn", "--set", "hash_iterations=1000",
                   "--set", "rate_per_s=1000", "--set", "rate_burst=1000"]
            if redis:
                cmd += ["--redis", redis.url, "--set", f"redis_prefix={PREFIX}"]
            for kv in a.set:
                cmd += ["--set", kv]
            srvs.append(subprocess.Popen(cmd, stderr=open(os.path.join(node_dir, "yjtd.log"),
                                                          "w")))
        for i, port in enumerate(ports):
            wait_healthy(port, os.path.join(data, f"node{i}" if redis else "", "yjtd.log"))
        # Long enough for anything; the client is stopped (SIGINT) once done.
        hold = a.fanouts * 10.0 + a.sustain * 4 + 120
        port_args = [x for p in ports for x in ("--port", str(p))]
        procs = ["--procs", str(a.client_procs)] if a.client_procs else []
        if a.client_rx == "raw":
            procs.append("--raw-rx")
        load_err = open(os.path.join(data, "yjt-load.err"), "w")  # kept with the data
        cl = subprocess.Popen([load, *port_args, *procs, "-n", str(a.users), "--user", "load",
                               "--users", str(a.users), "--password", PASSWORD, "--hold",
                               str(hold), "--timeout", str(hold + 300), "--push-log",
                               os.path.join(data, "pushlog")],
                              stdout=subprocess.PIPE, stderr=load_err)
        deadline = time.time() + 240

        def online():
            return sum(corp_conns(p) for p in ports)

        while online() < a.users:
            if time.time() > deadline or cl.poll() is not None:
                sys.exit(f"only {online()} of {a.users} connected")
            time.sleep(0.5)
        token = login_token(a.port, "bench-gov")
        notice = NOTICE

        def sample():
            """Redis's counters, every process's CPU and each node's waits
            for Redis on its event loop, at a phase boundary."""
            waits = [(metric(p, "yjt_redis_loop_waits_total") or 0,
                      metric(p, "yjt_redis_loop_wait_seconds_total") or 0) for p in ports] \
                if redis else None
            return {"redis": redis.sample() if redis else None, "waits": waits,
                    "yjtd_cpu_s": sum(cpu_s(s.pid) for s in srvs), "t": time.time()}

        s_idle = sample()
        time.sleep(IDLE_S)
        s_fan = sample()
        for _ in range(a.fanouts):
            _, body = http(a.port, "POST", "/api/v1/notices", notice, token)
            assert json.loads(body)["recipients"] == a.users, body
            time.sleep(1.0)
        s_sus = sample()
        s_start = time.time()
        counts = [0] * a.publishers

        def publish(k):
            while time.time() - s_start < a.sustain:
                http(a.port, "POST", "/api/v1/notices", notice, token)
                counts[k] += 1

        pubs = [threading.Thread(target=publish, args=(k,)) for k in range(a.publishers)]
        for t in pubs:
            t.start()
        for t in pubs:
            t.join()
        sustained = sum(counts)
        s_end = time.time()
        time.sleep(a.drain)  # let the last deliveries arrive
        s_done = sample()
        bus = [{"out": metric(p, "yjt_bus_messages_total", '{dir="out"}'),
                "in": metric(p, "yjt_bus_messages_total", '{dir="in"}'),
                "dropped": metric(p, "yjt_bus_dropped_total")} for p in ports] if redis else None
        cl.send_signal(signal.SIGINT)
        out, _ = cl.communicate(timeout=120)
        load_err.close()
    finally:
        for s in srvs:
            s.terminate()
        for s in srvs:
            s.wait(30)
        if redis:
            redis.stop()

    rows = []
    for f in os.listdir(data):
        if f.startswith("pushlog."):
            with open(os.path.join(data, f)) as fh:
                rows += [tuple(map(int, line.split())) for line in fh if line.strip()]
    by_created = {}
    for created, recv_us in rows:
        by_created.setdefault(created, []).append(recv_us / 1000.0 - created)
    created_sorted = sorted(by_created)
    fan = created_sorted[:a.fanouts]
    fan_lat = [x for c in fan for x in by_created[c]]
    fan_last = [max(by_created[c]) for c in fan]
    fan_complete = sum(1 for c in fan if len(by_created[c]) == a.users)
    s_rows = [(c, r) for c, r in rows if c >= s_start * 1000 - 1]
    s_recv = [r / 1e6 for _, r in s_rows]
    s_span = (max(s_recv) - min(s_recv)) if s_recv else float("nan")
    report = {
        "config": config_name(store, nodes),
        "users": a.users,
        "fanout": {"pushes": len(fan), "complete": fan_complete,
                   "delivery_ms_p50": round(pct(fan_lat, 50), 1),
                   "delivery_ms_p99": round(pct(fan_lat, 99), 1),
                   "last_ms_median": round(statistics.median(fan_last), 1) if fan_last else None,
                   "last_ms_p99": round(pct(fan_last, 99), 1)},
        "sustained": {"publishers": a.publishers, "notices": sustained, "deliveries": len(s_rows),
                      "expected": sustained * a.users, "seconds": round(s_end - s_start, 2),
                      "deliveries_per_s": round(len(s_rows) / (max(s_recv) - s_start))
                      if s_recv else 0,
                      "receive_span_s": round(s_span, 2)},
        # yjtd's CPU (all nodes together) per push, in ms
        "yjtd_cpu_ms_per_push": {
            "fanout": round((s_sus["yjtd_cpu_s"] - s_fan["yjtd_cpu_s"]) * 1000 / a.fanouts, 1),
            "sustained": round((s_done["yjtd_cpu_s"] - s_sus["yjtd_cpu_s"]) * 1000 / sustained, 1)
            if sustained else None},
        # messages each node wrote to and read from the bus, over the run
        "bus": bus,
        "yjt_load": json.loads(out.decode().strip().splitlines()[-1]).get("ready") if out else None,
    }
    if redis:
        # Per push: one notice (a push to every one of the users); per
        # delivery: the same divided by the users. The idle rate is what the
        # nodes do with nothing published (heartbeats, the bus's blocking
        # reads), per second; it is inside the phases' counts too.
        fan_r = redis_delta(s_fan["redis"], s_sus["redis"], a.fanouts)
        sus_r = redis_delta(s_sus["redis"], s_done["redis"], sustained)
        def waits(a0, a1, pushes):
            """Per node: the loop's waits for Redis per push, and the share
            of the phase's wall time the loop spent waiting."""
            span = a1["t"] - a0["t"]
            return [{"per_push": round((w1[0] - w0[0]) / pushes, 2),
                     "ms_per_push": round((w1[1] - w0[1]) * 1000 / pushes, 3),
                     "share_of_time": round((w1[1] - w0[1]) / span, 4)}
                    for w0, w1 in zip(a0["waits"], a1["waits"])]

        report["redis_loop_waits"] = {
            "fanout": waits(s_fan, s_sus, a.fanouts),
            "sustained": waits(s_sus, s_done, sustained) if sustained else None}
        report["redis"] = {
            "idle_per_s": redis_delta(s_idle["redis"], s_fan["redis"], s_fan["t"] - s_idle["t"]),
            "per_push_fanout": fan_r,
            "per_push_sustained": sus_r,
            "per_delivery_sustained": {
                "commands": round(sus_r["commands"] / a.users, 3),
                "scripts": round(sus_r["scripts"] / a.users, 5)} if sus_r else None,
        }
    if not a.keep:
        shutil.rmtree(data, ignore_errors=True)
    else:
        print(f"kept {data}", file=sys.stderr)
    return report


def summarise(reports, configs):
    """Medians per configuration, and each one's ratio to the first."""
    fields = [("fanout", "delivery_ms_p50"), ("fanout", "delivery_ms_p99"),
              ("fanout", "last_ms_median"), ("sustained", "deliveries_per_s")]
    med = {}
    for store, nodes in configs:
        name = config_name(store, nodes)
        mine = [r for r in reports if r["config"] == name]
        m = {f"{a}.{b}": statistics.median(r[a][b] for r in mine) for a, b in fields}
        m["runs"] = len(mine)
        if store == "redis":
            for phase in ("per_push_fanout", "per_push_sustained"):
                for k in ("commands", "scripts"):
                    m[f"redis.{phase}.{k}"] = statistics.median(
                        r["redis"][phase][k] for r in mine if r["redis"][phase])
        med[name] = m
    base = med[config_name(*configs[0])]
    for m in med.values():
        m["ratio_to_first"] = {k: round(m[k] / base[k], 2) if base[k] else None
                               for k in (f"{a}.{b}" for a, b in fields)}
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--fanouts", type=int, default=20)
    ap.add_argument("--sustain", type=float, default=10.0)
    ap.add_argument("--publishers", type=int, default=1,
                    help="clients publishing at once in the sustained phase")
    ap.add_argument("--drain", type=float, default=5.0,
                    help="seconds to wait after the sustained phase for the last deliveries")
    ap.add_argument("--port", type=int, default=28431,
                    help="the first node's port; node k listens on PORT+k")
    ap.add_argument("--redis", action="store_true",
                    help="store on a redis-server of our own instead of SQLite")
    ap.add_argument("--nodes", type=int, default=1,
                    help="yjtd nodes sharing the Redis (implies --redis when above 1)")
    ap.add_argument("--config", type=parse_config, action="append",
                    help="sqlite, redis or redis:K (K nodes); repeat to run each in turn")
    ap.add_argument("--runs", type=int, default=1,
                    help="rounds of one run of each configuration")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--yjtd", help="the yjtd to measure (default: the one in --build)")
    ap.add_argument("--client-rx", choices=("raw", "lws"), default="raw",
                    help="how yjt-load reads the pushes: its own frame reader (default) or "
                         "libwebsockets, which takes several times the CPU per message")
    ap.add_argument("--client-procs", type=int, default=0, metavar="P",
                    help="yjt-load processes holding the connections (default: as few as the "
                         "open-file limit allows: one for 10,000, two with the default --client-rx raw, "
                         "whose connections hold two descriptors each)")
    ap.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="pass --set K=V to every yjtd (repeatable)")
    a = ap.parse_args()
    configs = a.config or [("redis" if a.redis or a.nodes > 1 else "sqlite", a.nodes)]
    if shutil.which("redis-server") is None and any(s == "redis" for s, _ in configs):
        sys.exit("redis-server is not installed")
    reports = []
    for run in range(1, a.runs + 1):
        for store, nodes in configs:
            r = run_once(a, store, nodes)
            r["run"] = run
            print(json.dumps(r), flush=True)
            reports.append(r)
    if len(reports) > 1:
        print(json.dumps({"medians": summarise(reports, configs)}))


if __name__ == "__main__":
    main()
