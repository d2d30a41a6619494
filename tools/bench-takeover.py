#!/usr/bin/python3
"""How fast a node takes over the readings log of a node killed with -9.

Starts a redis-server of its own and two yjtd nodes on it (the store's
flusher held back: readings_flush_points and readings_flush_age_s high,
so that every reading stays in the log), imports S sensors, posts readings
to the second node with yjt-ingest for T seconds, kills that node with -9
and measures, from the kill, how long the first node takes to take over
every reading the killed node acknowledged (yjt_readings_adopted_total),
how long a /healthz of the first node takes meanwhile, and whether the
old log and its lease are gone after. cluster_dead_s sets the lease.

  tools/bench-takeover.py --build build [--sensors 20000] [--seconds 3]
                          [--dead 3] [--port 28701]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Redis, http, wait_healthy  # noqa: E402

PREFIX = "bt:"


def metric(port, name):
    _, text = http(port, "GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--sensors", type=int, default=20000)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--dead", type=int, default=3, help="cluster_dead_s: the logs' lease")
    ap.add_argument("--port", type=int, default=28701)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="bench-takeover-")
    env = dict(os.environ, YJT_HASH_ITERATIONS="1000")
    redis = Redis(os.path.join(data, "redis"))
    redis.start()
    procs = []
    try:
        def ctl(*args):
            return subprocess.run([os.path.join(a.build, "yjtctl"), "--redis", redis.url,
                                   "--redis-prefix", PREFIX, *args], check=True, env=env,
                                  capture_output=True, text=True).stdout

        ctl("enterprise", "add", "--id", "E1", "--name", "Bench Chemicals", "--division", "440106")
        rows = [{"id": f"s{i:06d}", "enterprise": "E1", "kind": "level", "unit": "m",
                 "thresholds": {"low": -1e9, "high": 1e9}, "deadband": 0.5,
                 "interrupt_after_s": 3600} for i in range(a.sensors)]
        path = os.path.join(data, "sensors.json")
        with open(path, "w") as f:
            json.dump(rows, f)
        ctl("import", "sensors", "--file", path)
        key = ctl("apikey", "create", "--enterprise", "E1").strip()
        ports = [a.port, a.port + 1]
        for i, port in enumerate(ports):
            d = os.path.join(data, f"node{i}")
            os.makedirs(d)
            procs.append(subprocess.Popen(
                [os.path.join(a.build, "yjtd"), "--listen", f"127.0.0.1:{port}", "--data-dir", d,
                 "--log-level", "info", "--redis", redis.url, "--set", f"redis_prefix={PREFIX}",
                 "--set", "readings_flush_points=100000", "--set", "readings_flush_age_s=86400",
                 "--set", f"cluster_dead_s={a.dead}", "--set", "cluster_beat_s=1"],
                stderr=open(os.path.join(d, "yjtd.log"), "w")))
            wait_healthy(port, os.path.join(d, "yjtd.log"))
        cp = subprocess.run([os.path.join(a.build, "yjt-ingest"), "--port", str(ports[1]), "--key",
                             key, "--sensors", str(a.sensors), "--conns", "2", "--warmup", "0",
                             "--seconds", str(a.seconds)],
                            capture_output=True, text=True, check=True)
        accepted = json.loads(cp.stdout.strip().splitlines()[-1])["accepted"]
        with open(os.path.join(data, "node1", "node.id")) as f:
            dead_log = PREFIX + "tsl:o:" + f.read().strip()
        rows_left = int(redis.cli("XLEN", dead_log))
        procs[1].kill()
        procs[1].wait()
        t0 = time.monotonic()
        healthz = []
        while metric(ports[0], "yjt_readings_adopted_total") < accepted:
            assert time.monotonic() - t0 < 600, "the log was never taken over"
            t = time.monotonic()
            http(ports[0], "GET", "/healthz")
            healthz.append((time.monotonic() - t) * 1000)
            time.sleep(0.05)
        took = time.monotonic() - t0
        time.sleep(1.5)  # the emptied log goes at the next look
        healthz.sort()
        print(json.dumps({
            "sensors": a.sensors, "accepted": accepted, "log_rows": rows_left,
            "lease_s": a.dead, "taken_over_s": round(took, 2),
            "adopted": metric(ports[0], "yjt_readings_adopted_total"),
            "buffered_on_taker": metric(ports[0], "yjt_readings_buffered"),
            "healthz_ms_p50": round(healthz[len(healthz) // 2], 2) if healthz else None,
            "healthz_ms_max": round(healthz[-1], 2) if healthz else None,
            "old_log_left": int(redis.cli("EXISTS", dead_log)),
            "owners_left": len(redis.cli("HKEYS", PREFIX + "tsl:owners").split())}))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(60)
        redis.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
