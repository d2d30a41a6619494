"""What the Python benchmarks share: a throwaway yjtd with its own data
directory, yjtctl, small HTTP calls, /metrics samples and percentiles, a
throwaway redis-server for the nodes of a cluster, and CPU time from /proc."""

import json
import os
import socket
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


# A notice to the benchmarks' enterprise's division (E1 is in 440106).
NOTICE = {"title": "benchmark", "body": "x" * 100,
          "audience": {"type": "division", "division": "440106"}}


def login_token(port, username):
    """The token of a REST login (the benchmarks' password)."""
    _, body = http(port, "POST", "/api/v1/auth/login",
                   {"username": username, "password": PASSWORD, "device_id": "bench",
                    "platform": "cli"})
    return json.loads(body)["token"]


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
        return login_token(self.port, username)


def wait_healthy(port, log_path=None):
    """Waits (10 s at most) until the node on port answers /healthz; exits
    with the end of its log (if given) when it does not."""
    for _ in range(100):
        try:
            if http(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    tail = ""
    if log_path:
        with open(log_path) as f:
            tail = f.read()[-2000:]
    raise SystemExit(f"yjtd on port {port} did not start\n{tail}")


def free_port():
    """A loopback TCP port nothing listens on (it may be taken before use)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    """User + system CPU seconds of a process so far, from /proc (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Redis:
    """A redis-server of our own on a loopback port, its files in a fresh
    directory, configured as operations.md asks of production (every write
    on disk before Redis replies: appendfsync always; no snapshots). The
    nodes of a benchmark cluster and yjtctl share it under one prefix."""

    def __init__(self, workdir, port=None, replica_of=None):
        self.dir = workdir
        self.port = port or free_port()
        self.proc = None
        self.replica_of = replica_of  # the master's port, for a replica
        os.makedirs(workdir, exist_ok=True)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--maxmemory-policy", "noeviction", "--logfile", "redis.log",
             *(["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                if self.cli("PING") == "PONG" and (
                        not self.replica_of
                        or "master_link_status:up" in self.cli("INFO", "replication")):
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)], check=True,
                              capture_output=True, text=True).stdout.strip()

    def info(self, section):
        """INFO SECTION as {key: value text}."""
        out = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def commandstats(self):
        """{command: calls} from INFO commandstats (commands run by scripts
        are counted too, under their own names)."""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                fields = dict(x.split("=", 1) for x in v.split(","))
                out[k[len("cmdstat_"):]] = int(fields["calls"])
        return out

    def sample(self):
        """What the benchmarks compare before and after a phase: the
        commands by name, the bytes in and out, and the server's CPU."""
        st = self.info("stats")
        return {"commands": self.commandstats(),
                "net_in": int(st.get("total_net_input_bytes", 0)),
                "net_out": int(st.get("total_net_output_bytes", 0)),
                "cpu_s": cpu_s(self.proc.pid)}

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(60)
            self.proc = None


def redis_delta(before, after, per):
    """Redis work between two samples, divided by per: every command, the
    script calls (EVALSHA and EVAL) and each command name, the bytes in and
    out, and Redis's CPU in ms."""
    if not per:
        return None
    names = set(before["commands"]) | set(after["commands"])
    by = {n: after["commands"].get(n, 0) - before["commands"].get(n, 0) for n in names}
    by = {n: v for n, v in by.items() if v}
    return {"commands": round(sum(by.values()) / per, 2),
            "scripts": round((by.get("evalsha", 0) + by.get("eval", 0)) / per, 3),
            "by_command": {n: round(v / per, 3)
                           for n, v in sorted(by.items(), key=lambda x: -x[1])},
            "net_in_bytes": round((after["net_in"] - before["net_in"]) / per),
            "net_out_bytes": round((after["net_out"] - before["net_out"]) / per),
            "cpu_ms": round((after["cpu_s"] - before["cpu_s"]) * 1000 / per, 3)}
