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

    tools/bench-push.py --build build --users 10000
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
from benchlib import PASSWORD, corp_conns, http, pct  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--fanouts", type=int, default=20)
    ap.add_argument("--sustain", type=float, default=10.0)
    ap.add_argument("--publishers", type=int, default=1,
                    help="clients publishing at once in the sustained phase")
    ap.add_argument("--port", type=int, default=28431)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    a = ap.parse_args()
    yjtd, yjtctl, load = (os.path.join(a.build, x) for x in ("yjtd", "yjtctl", "yjt-load"))
    data = tempfile.mkdtemp(prefix="bench-push-")
    env = dict(os.environ, YJT_HASH_ITERATIONS="1000")

    def ctl(*args):
        subprocess.run([yjtctl, "--data-dir", data, *args], check=True, env=env,
                       stdout=subprocess.DEVNULL)

    t0 = time.time()
    ctl("enterprise", "add", "--id", "E1", "--name", "Bench Chemicals", "--division", "440106")
    ctl("user", "add", "--username", "bench-gov", "--password", PASSWORD, "--role", "gov",
        "--org", "4401")
    ctl("user", "add", "--username", "load", "--password", PASSWORD, "--role", "corp", "--org",
        "E1", "--position", "principal", "--count", str(a.users))
    print(f"accounts made in {time.time() - t0:.1f} s", file=sys.stderr)

    srv = subprocess.Popen([yjtd, "--listen", f"127.0.0.1:{a.port}", "--data-dir", data,
                            "--log-level", "warn", "--set", "hash_iterations=1000",
                            "--set", "rate_per_s=1000", "--set", "rate_burst=1000"],
                           stderr=open(os.path.join(data, "yjtd.log"), "w"))
    try:
        for _ in range(100):
            try:
                if http(a.port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        # Long enough for anything; the client is stopped (SIGINT) once done.
        hold = a.fanouts * 10.0 + a.sustain * 4 + 120
        cl = subprocess.Popen([load, "--port", str(a.port), "-n", str(a.users), "--user", "load",
                               "--users", str(a.users), "--password", PASSWORD, "--hold",
                               str(hold), "--timeout", str(hold + 300), "--push-log",
                               os.path.join(data, "pushlog")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while corp_conns(a.port) < a.users:
            if time.time() > deadline or cl.poll() is not None:
                sys.exit(f"only {corp_conns(a.port)} of {a.users} connected")
            time.sleep(0.5)
        _, body = http(a.port, "POST", "/api/v1/auth/login",
                       {"username": "bench-gov", "password": PASSWORD, "device_id": "bench",
                        "platform": "cli"})
        token = json.loads(body)["token"]
        notice = {"title": "benchmark", "body": "x" * 100,
                  "audience": {"type": "division", "division": "440106"}}
        time.sleep(2)
        for _ in range(a.fanouts):
            _, body = http(a.port, "POST", "/api/v1/notices", notice, token)
            assert json.loads(body)["recipients"] == a.users, body
            time.sleep(1.0)
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
        time.sleep(5)  # let the last deliveries arrive
        cl.send_signal(signal.SIGINT)
        out, _ = cl.communicate(timeout=120)
    finally:
        srv.terminate()
        srv.wait(30)

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
        "yjt_load": json.loads(out.decode().strip().splitlines()[-1]).get("ready") if out else None,
    }
    print(json.dumps(report))
    if not a.keep:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
