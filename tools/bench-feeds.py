#!/usr/bin/python3
"""3D feed fan-out benchmark: N subscribers of one plant's feed.

Starts a fresh yjtd, creates an enterprise with --sensors sensors and N corp
accounts, connects and logs them in with yjt-load, each following the
plant's feed (feed.subscribe, max_hz --hz) and recording the arrival of
every feed.delta. Then, as the plant's gateway (an API key):

  latency:    --probes single readings, 300 ms apart, each stamped with the
              wall clock as its ts; latency = arrival - ts (same machine),
              so it covers ingestion, storage, the feed and the socket. Per
              probe, "last" is the time until the last subscriber had it.
  sustained:  batches of readings over every sensor back to back for
              --sustain seconds; reports the deltas delivered per second
              (every subscriber is capped at --hz).

    tools/bench-feeds.py --build build --subscribers 1000
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import PASSWORD, Yjtd, http, metric, pct  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--hz", type=float, default=10)
    ap.add_argument("--probes", type=int, default=30)
    ap.add_argument("--sustain", type=float, default=5.0)
    ap.add_argument("--port", type=int, default=28441)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="bench-feeds-")
    y = Yjtd(a.build, data, a.port, settings=[f"feed_max_hz={max(20, int(a.hz))}"])
    y.ctl("enterprise", "add", "--id", "E1", "--name", "Bench Chemicals", "--division",
          "440106")
    y.ctl("user", "add", "--username", "bench-gov", "--password", PASSWORD, "--role", "gov",
          "--org", "4401")
    y.ctl("user", "add", "--username", "sub", "--password", PASSWORD, "--role", "corp", "--org",
          "E1", "--count", a.subscribers)
    key = y.ctl("apikey", "create", "--enterprise", "E1").split()[-1]
    y.start()
    cl = None
    try:
        tok = y.token("bench-gov")
        sensors = [f"B{i:05d}" for i in range(a.sensors)]
        for sid in sensors:
            http(a.port, "PUT", f"/api/v1/sensors/{sid}",
                 {"enterprise": "E1", "kind": "pressure", "unit": "MPa",
                  "thresholds": {"high": 1e9}, "deadband": 0, "interrupt_after_s": 3600}, tok)

        def post(rows):
            http(a.port, "POST", "/api/v1/readings", {"readings": rows},
                 headers={"X-Api-Key": key})

        post([{"sensor": s, "value": 1.0, "ts": int(time.time() * 1000)} for s in sensors])
        log = os.path.join(data, "feedlog")
        hold = a.probes * 0.3 + a.sustain + 120
        cl = subprocess.Popen([os.path.join(a.build, "yjt-load"), "--port", str(a.port), "-n",
                               str(a.subscribers), "--user", "sub", "--users",
                               str(a.subscribers), "--password", PASSWORD, "--hold", str(hold),
                               "--timeout", str(hold + 300), "--feed", "E1", "--feed-hz",
                               str(a.hz), "--push-log", log],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while metric(a.port, "yjt_feed_subscriptions") < a.subscribers:
            if time.time() > deadline or cl.poll() is not None:
                sys.exit(f"only {metric(a.port, 'yjt_feed_subscriptions')} of "
                         f"{a.subscribers} subscribed")
            time.sleep(0.5)
        time.sleep(2)  # snapshots out
        probe_ts = []
        for i in range(a.probes):
            ts = int(time.time() * 1000)
            post([{"sensor": sensors[0], "value": 2.0 + i, "ts": ts}])
            probe_ts.append(ts)
            time.sleep(0.3)
        time.sleep(1)
        d0 = metric(a.port, "yjt_feed_deltas_total")
        s_start = time.time()
        batches = 0
        while time.time() - s_start < a.sustain:
            ts = int(time.time() * 1000)
            post([{"sensor": s, "value": 3.0 + batches, "ts": ts} for s in sensors])
            batches += 1
        s_end = time.time()
        time.sleep(1)
        d1 = metric(a.port, "yjt_feed_deltas_total")
        slow = metric(a.port, "yjt_feed_skipped_slow_total")
        cl.send_signal(signal.SIGINT)
        cl.communicate(timeout=120)
        cl = None
    finally:
        if cl:
            cl.kill()
        y.stop()

    rows = []
    for f in os.listdir(data):
        if f.startswith("feedlog."):
            with open(os.path.join(data, f)) as fh:
                rows += [tuple(map(int, line.split())) for line in fh if line.strip()]
    by_ts = {}
    for ts, recv_us in rows:
        by_ts.setdefault(ts, []).append(recv_us / 1000.0 - ts)
    lat = [x for t in probe_ts for x in by_ts.get(t, [])]
    last = [max(by_ts[t]) for t in probe_ts if t in by_ts]
    complete = sum(1 for t in probe_ts if len(by_ts.get(t, [])) == a.subscribers)
    report = {
        "subscribers": a.subscribers, "sensors": a.sensors, "max_hz": a.hz,
        "latency": {"probes": a.probes, "complete": complete,
                    "ms_p50": round(pct(lat, 50), 1), "ms_p99": round(pct(lat, 99), 1),
                    "last_ms_median": round(statistics.median(last), 1) if last else None,
                    "last_ms_max": round(max(last), 1) if last else None},
        "sustained": {"seconds": round(s_end - s_start, 2), "batches": batches,
                      "readings_per_s": round(batches * a.sensors / (s_end - s_start)),
                      "deltas_per_s": round((d1 - d0) / (s_end - s_start + 1)),
                      "cap_per_s": round(a.subscribers * a.hz),
                      "skipped_slow": int(slow)},
    }
    print(json.dumps(report))
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
