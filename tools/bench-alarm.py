#!/usr/bin/python3
"""Alarm latency probe: the time from the gateway's reading that crosses a
threshold to the alarm push arriving at each duty device.

Starts a fresh yjtd, creates one enterprise with --devices corp accounts in
position "duty" (each one device, connected and logged in by yjt-load,
which writes the arrival of every push with its wall clock in
microseconds), --crossings sensors with a high threshold of 80, and a
gateway API key. Then, one sensor at a time, --interval seconds apart, it
posts a reading of 85 (one crossing: one new alarm, one push to every
device) over a kept-alive HTTP connection, noting the wall clock just
before the request is written. The pushes of crossing k are the k-th
distinct created_at in the push log; latency = arrival - send time of the
reading (same machine, same clock), so it includes the reading's batch
commit, the evaluation, the alarm's store write, the inbox write and the
delivery.

With --ingest-sensors N, N more sensors s000000.. of a second enterprise
are imported (yjtctl import sensors, no threshold the load crosses) and
yjt-ingest posts readings to them as fast as it can, in batches of 1,000
over --ingest-conns connections, from --ingest-warmup seconds before the
first crossing until after the last one; its JSON line is included.

    tools/bench-alarm.py --build build --devices 100 --crossings 200
    tools/bench-alarm.py --build build --devices 100 --crossings 200 --ingest-sensors 20000
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import PASSWORD, corp_conns, pct  # noqa: E402


class Http:
    """One kept-alive HTTP/1.1 connection to yjtd."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.c.connect()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def req(self, method, path, body=None, token=None, headers=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        self.c.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers=h)
        r = self.c.getresponse()
        return r.status, r.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--crossings", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--port", type=int, default=28441)
    ap.add_argument("--ingest-sensors", type=int, default=0)
    ap.add_argument("--ingest-conns", type=int, default=2)
    ap.add_argument("--ingest-warmup", type=float, default=3.0)
    ap.add_argument("--shm", action="store_true", help="data directory on /dev/shm")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    a = ap.parse_args()
    yjtd, yjtctl, load = (os.path.join(a.build, x) for x in ("yjtd", "yjtctl", "yjt-load"))
    data = tempfile.mkdtemp(prefix="bench-alarm-", dir="/dev/shm" if a.shm else None)
    env = dict(os.environ, YJT_HASH_ITERATIONS="1000")

    def ctl(*args):
        return subprocess.run([yjtctl, "--data-dir", data, *args], check=True, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()

    ctl("enterprise", "add", "--id", "PROBE", "--name", "Probe Chemicals", "--division", "440106")
    ctl("enterprise", "add", "--id", "LOAD", "--name", "Load Chemicals", "--division", "440113")
    ctl("user", "add", "--username", "ops", "--password", PASSWORD, "--role", "admin", "--org", "-")
    ctl("user", "add", "--username", "duty", "--password", PASSWORD, "--role", "corp", "--org",
        "PROBE", "--position", "duty", "--count", str(a.devices))
    key = ctl("apikey", "create", "--enterprise", "PROBE").strip()
    load_key = ctl("apikey", "create", "--enterprise", "LOAD").strip()
    for lo in range(0, a.ingest_sensors, 50000):
        rows = [{"id": f"s{i:06d}", "enterprise": "LOAD", "kind": "level", "unit": "m",
                 "thresholds": {"low": -1e9, "high": 1e9}, "deadband": 0.5,
                 "interrupt_after_s": 3600}
                for i in range(lo, min(a.ingest_sensors, lo + 50000))]
        path = os.path.join(data, "sensors.json")
        with open(path, "w") as f:
            json.dump(rows, f)
        ctl("import", "sensors", "--file", path)
        os.unlink(path)

    srv = subprocess.Popen([yjtd, "--listen", f"127.0.0.1:{a.port}", "--data-dir", data,
                            "--log-level", "warn", "--set", "hash_iterations=1000",
                            "--set", "rate_per_s=1000", "--set", "rate_burst=1000"],
                           stderr=open(os.path.join(data, "yjtd.log"), "w"))
    ingest = None
    cl = None
    sent = []
    try:
        for _ in range(100):
            try:
                if Http(a.port).req("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        h = Http(a.port)
        _, body = h.req("POST", "/api/v1/auth/login",
                        {"username": "ops", "password": PASSWORD, "device_id": "bench",
                         "platform": "cli"})
        token = json.loads(body)["token"]
        for i in range(a.crossings):
            st, body = h.req("PUT", f"/api/v1/sensors/probe-{i}", token=token,
                             body={"enterprise": "PROBE", "kind": "level", "unit": "m",
                                   "thresholds": {"high": 80}, "deadband": 1,
                                   "interrupt_after_s": 604800})
            assert st in (200, 201), body
        hold = a.crossings * (a.interval + 1) + a.ingest_warmup + 120
        cl = subprocess.Popen([load, "--port", str(a.port), "-n", str(a.devices), "--user", "duty",
                               "--users", str(a.devices), "--password", PASSWORD, "--hold",
                               str(hold), "--timeout", str(hold + 300), "--push-log",
                               os.path.join(data, "pushlog")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while corp_conns(a.port) < a.devices:
            if time.time() > deadline or cl.poll() is not None:
                sys.exit(f"only {corp_conns(a.port)} of {a.devices} connected")
            time.sleep(0.2)
        if a.ingest_sensors:
            span = a.crossings * (a.interval + 0.05) + 5
            ingest = subprocess.Popen(
                [os.path.join(a.build, "yjt-ingest"), "--port", str(a.port), "--key", load_key,
                 "--sensors", str(a.ingest_sensors), "--conns", str(a.ingest_conns),
                 "--warmup", str(int(a.ingest_warmup)), "--seconds", str(int(span))],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            time.sleep(a.ingest_warmup)
        else:
            time.sleep(1)
        g = Http(a.port)
        for i in range(a.crossings):
            row = {"readings": [{"sensor": f"probe-{i}", "value": 85,
                                 "ts": int(time.time() * 1000)}]}
            t0 = time.time()
            st, body = g.req("POST", "/api/v1/readings", row, headers={"X-Api-Key": key})
            assert st == 200 and json.loads(body)["accepted"] == 1, body
            sent.append(t0 * 1000.0)
            time.sleep(a.interval)
        time.sleep(3)
        ingest_out = None
        if ingest:
            try:
                ingest_out = ingest.communicate(timeout=600)[0].decode().strip()
            except subprocess.TimeoutExpired:
                ingest.kill()
            ingest = None
        cl.send_signal(signal.SIGINT)
        cl.communicate(timeout=120)
        cl = None
        _, metrics = Http(a.port).req("GET", "/metrics")
    finally:
        for p in (ingest, cl):
            if p and p.poll() is None:
                p.kill()
        srv.terminate()
        srv.wait(30)

    rows = []
    for f in os.listdir(data):
        if f.startswith("pushlog."):
            with open(os.path.join(data, f)) as fh:
                rows += [tuple(map(int, line.split())) for line in fh if line.strip()]
    by_created = {}
    for created, recv_us in rows:
        by_created.setdefault(created, []).append(recv_us / 1000.0)
    created_sorted = sorted(by_created)
    lat, last, complete = [], [], 0
    for k, c in enumerate(created_sorted[:len(sent)]):
        d = [r - sent[k] for r in by_created[c]]
        lat += d
        last.append(max(d))
        complete += len(d) == a.devices
    accepted = [ln for ln in metrics.splitlines()
                if ln.startswith("yjt_readings_accepted_total ")]
    report = {
        "devices": a.devices, "crossings": len(sent), "alarm_pushes": len(created_sorted),
        "complete": complete, "deliveries": len(lat),
        "reading_to_push_ms_p50": round(pct(lat, 50), 2),
        "reading_to_push_ms_p99": round(pct(lat, 99), 2),
        "reading_to_push_ms_max": round(max(lat), 2) if lat else None,
        "last_device_ms_median": round(statistics.median(last), 2) if last else None,
        "ingest_sensors": a.ingest_sensors, "store": "tmpfs" if a.shm else "disk",
        "readings_accepted_total": int(float(accepted[0].split()[-1])) if accepted else None,
    }
    if a.ingest_sensors:
        try:
            report["ingest"] = json.loads(ingest_out.splitlines()[-1])
        except (ValueError, IndexError, AttributeError):
            report["ingest"] = ingest_out
    print(json.dumps(report))
    if not a.keep:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
