"""What the Python benchmarks share: a throwaway yjtd with its own data
directory, yjtctl, small HTTP calls, /metrics samples and percentiles."""

import json
import os
import subprocess
import time
import urllib.request

PASSWORD = "bench-pass-1"


def http(port, method, path, body=None, token=None, headers=None, raw=None):
    """(status, text) of one request; body is sent as JSON, raw as is."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read().decode()


def metric(port, name, labels=""):
    """The value of one /metrics sample (name plus its exact label text)."""
    _, text = http(port, "GET", "/metrics")
    want = name + labels
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def corp_conns(port):
    """Open WebSocket connections of corp users, from /metrics."""
    return int(metric(port, "yjt_connections", '{role="corp"}'))


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")


class Yjtd:
    """yjtd and yjtctl of a build, on a fresh data directory."""

    def __init__(self, build, data, port, settings=()):
        self.build, self.data, self.port = build, data, port
        self.env = dict(os.environ, YJT_HASH_ITERATIONS="1000")
        self.settings = ["hash_iterations=1000", "rate_per_s=100000", "rate_burst=100000",
                         *settings]
        self.proc = None

    def ctl(self, *args, stdin=None):
        cp = subprocess.run([os.path.join(self.build, "yjtctl"), "--data-dir", self.data,
                             *map(str, args)], check=True, env=self.env, input=stdin,
                            capture_output=True, text=True)
        return cp.stdout.strip()

    def start(self):
        cmd = [os.path.join(self.build, "yjtd"), "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", self.data, "--log-level", "warn"]
        for s in self.settings:
            cmd += ["--set", s]
        self.proc = subprocess.Popen(cmd, stderr=open(os.path.join(self.data, "yjtd.log"), "w"))
        for _ in range(300):
            try:
                if http(self.port, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("yjtd did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(60)

    def token(self, username):
        _, body = http(self.port, "POST", "/api/v1/auth/login",
                       {"username": username, "password": PASSWORD, "device_id": "bench",
                        "platform": "cli"})
        return json.loads(body)["token"]
