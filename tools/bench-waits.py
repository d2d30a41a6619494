#!/usr/bin/python3
"""How often nodes on Redis wait for it on their event loop, per request.

Starts a redis-server of its own and N yjtd nodes on it (a fresh store
each run), makes U corp accounts of one enterprise and a regulator, and
counts yjt_redis_loop_waits_total (summed over the nodes) around each
phase: idle, U password logins over WebSocket (yjt-load, one account each,
spread over the nodes), U token logins (one token, as reconnecting apps
do), K notices published over REST to the enterprise's division (U
recipients each), then on C connections already logged in (Debian's
python3-websockets) a push.resume from 0 each (the K pushes) and a
push.ack of the last, and G REST GETs (a regulator's list and record of
the enterprise, the last notice's receipts and the alarms, a corp user's
inbox; 8 clients at once, spread over the nodes; their rate and latency
too, and meanwhile the round trip of a WebSocket ping on the first node,
which waits behind whatever holds that node's loop). Prints one JSON report per run; with several --yjtd, runs them in
turn (alternating, --runs rounds) on the same settings.

  tools/bench-waits.py --build build [--yjtd OLD/yjtd --yjtd build/yjtd]
                       [--nodes 3] [--users 2000] [--notices 20] [--conns 200]
                       [--gets 2000] [--runs 3] [--port 28531]
"""

import argparse
import asyncio
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import NOTICE, PASSWORD, Redis, http, login_token, wait_healthy  # noqa: E402

PREFIX = "bw:"


def waits(ports):
    """Loop waits and their seconds, summed over the nodes."""
    n = s = 0.0
    for p in ports:
        _, text = http(p, "GET", "/metrics")
        for line in text.splitlines():
            if line.startswith("yjt_redis_loop_waits_total "):
                n += float(line.split()[1])
            elif line.startswith("yjt_redis_loop_wait_seconds_total "):
                s += float(line.split()[1])
    return n, s


def load(a, ports, *auth):
    """One yjt-load run (held 1 s): its logins, their rate and latency."""
    port_args = [x for p in ports for x in ("--port", str(p))]
    cp = subprocess.run([os.path.join(a.build, "yjt-load"), *port_args, "-n", str(a.users),
                         *auth, "--hold", "1", "--timeout", "300"],
                        capture_output=True, text=True, check=True)
    r = json.loads(cp.stdout.strip().splitlines()[-1])
    return {k: r.get(k) for k in ("logged_in", "login_rate", "login_p50_ms", "login_p99_ms")}


async def resume_and_ack(ports, n, phase):
    """n connections (users load0..), logged in; then the resume phase and
    the ack phase, each measured by phase(name, per, fn)."""
    import websockets
    conns = []
    for i in range(n):
        ws = await websockets.connect(f"ws://127.0.0.1:{ports[i % len(ports)]}/ws",
                                      subprotocols=["yjt.v1"], max_size=None)
        await ws.send(json.dumps({"id": 1, "type": "auth.login", "username": f"load{i}",
                                  "password": PASSWORD, "device_id": f"bw{i}",
                                  "platform": "cli"}))
        while json.loads(await ws.recv()).get("re") != 1:
            pass
        conns.append(ws)

    async def ask(ws, msg):
        await ws.send(json.dumps(msg))
        last = 0
        while True:
            m = json.loads(await ws.recv())
            if m.get("type") == "push":
                last = max(last, m["seq"])
            elif m.get("re") == msg["id"]:
                assert m.get("ok"), m
                return last

    lasts = {}

    async def resume_all():
        got = await asyncio.gather(*(ask(ws, {"id": 2, "type": "push.resume", "after_seq": 0})
                                     for ws in conns))
        lasts.update(enumerate(got))

    async def ack_all():
        await asyncio.gather(*(ask(ws, {"id": 3, "type": "push.ack", "seq": lasts[i]})
                               for i, ws in enumerate(conns)))

    await phase("push_resume", n, resume_all)
    await phase("push_ack", n, ack_all)
    for ws in conns:
        await ws.close()


async def ping_probe(port, stop):
    """Round trips of a ping every 5 ms on one logged-in connection until
    stop is not empty."""
    import websockets
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["yjt.v1"]) as ws:
        await ws.send(json.dumps({"id": 1, "type": "auth.login", "username": "load1",
                                  "password": PASSWORD, "device_id": "probe",
                                  "platform": "cli"}))
        while json.loads(await ws.recv()).get("re") != 1:
            pass
        rtts, n = [], 1
        while not stop:
            n += 1
            t = time.monotonic()
            await ws.send(json.dumps({"id": n, "type": "ping"}))
            while json.loads(await ws.recv()).get("re") != n:
                pass
            rtts.append(time.monotonic() - t)
            await asyncio.sleep(0.005)
        return rtts


def run_once(a, yjtd):
    data = tempfile.mkdtemp(prefix="bench-waits-")
    env = dict(os.environ, YJT_HASH_ITERATIONS="1000")
    redis = Redis(os.path.join(data, "redis"))
    redis.start()
    where = ["--redis", redis.url, "--redis-prefix", PREFIX]

    def ctl(*args):
        subprocess.run([os.path.join(a.build, "yjtctl"), *where, *args], check=True, env=env,
                       stdout=subprocess.DEVNULL)

    # below the ephemeral range, which the nodes' own connections use
    ports = [a.port + i for i in range(a.nodes)]
    procs = []
    try:
        ctl("enterprise", "add", "--id", "E1", "--name", "Bench Chemicals", "--division",
            "440106")
        ctl("user", "add", "--username", "bench-gov", "--password", PASSWORD, "--role", "gov",
            "--org", "4401")
        ctl("user", "add", "--username", "load", "--password", PASSWORD, "--role", "corp",
            "--org", "E1", "--count", str(a.users))
        for i, port in enumerate(ports):
            node_dir = os.path.join(data, f"node{i}")
            os.makedirs(node_dir)
            procs.append(subprocess.Popen(
                [yjtd, "--listen", f"127.0.0.1:{port}", "--data-dir", node_dir,
                 "--log-level", "warn", "--redis", redis.url, "--set", f"redis_prefix={PREFIX}",
                 "--set", "hash_iterations=1000", "--set", "rate_per_s=1000",
                 "--set", "rate_burst=1000", "--set", "addr_fail_limit=100000"],
                stderr=open(os.path.join(node_dir, "yjtd.log"), "w")))
        for i, port in enumerate(ports):
            wait_healthy(port, os.path.join(data, f"node{i}", "yjtd.log"))
        report = {"yjtd": yjtd, "nodes": a.nodes, "users": a.users}

        def mark():
            return (*waits(ports), time.monotonic())

        def done(name, per, start, extra=None):
            w0, s0, t0 = start
            w1, s1, t1 = mark()
            report[name] = {"waits_per_op": round((w1 - w0) / per, 2),
                            "wait_ms_per_op": round((s1 - s0) * 1000 / per, 3),
                            "seconds": round(t1 - t0, 2), **(extra or {})}

        def phase(name, per, fn):
            start = mark()
            extra = fn()
            done(name, per, start, extra)

        phase("idle_per_node_second", a.nodes * 3, lambda: time.sleep(3))
        phase("password_login", a.users,
              lambda: load(a, ports, "--user", "load", "--password", PASSWORD, "--users",
                           str(a.users)))
        phase("token_login", a.users,
              lambda: load(a, ports, "--user", "load0", "--password", PASSWORD,
                           "--token-from-login"))
        token = login_token(ports[0], "bench-gov")
        notice = NOTICE
        nids = []

        def notices():
            for i in range(a.notices):
                st, body = http(ports[i % len(ports)], "POST", "/api/v1/notices", notice,
                                token=token)
                assert st == 201, st
                nids.append(json.loads(body)["notice_id"])
        phase("notice", a.notices, notices)
        corp = login_token(ports[0], "load0")
        paths = [(token, "/api/v1/enterprises"), (token, "/api/v1/enterprises/E1"),
                 (token, f"/api/v1/notices/{nids[-1]}/receipts"), (token, "/api/v1/alarms"),
                 (corp, "/api/v1/inbox?limit=20")]

        def get(i):
            tok, path = paths[i % len(paths)]
            t = time.monotonic()
            st, _ = http(ports[i % len(ports)], "GET", path, token=tok)
            assert st == 200, (path, st)
            return time.monotonic() - t

        def gets():
            stop = []
            with concurrent.futures.ThreadPoolExecutor(9) as pool:
                pings = pool.submit(lambda: asyncio.run(ping_probe(ports[0], stop)))
                t0 = time.monotonic()
                lat = sorted(pool.map(get, range(a.gets)))
                took = time.monotonic() - t0
                stop.append(1)
                pings = sorted(pings.result())
            return {"gets_per_s": round(a.gets / took),
                    "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                    "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2),
                    "pings": len(pings),
                    "ping_p50_ms": round(pings[len(pings) // 2] * 1000, 2),
                    "ping_p99_ms": round(pings[int(len(pings) * 0.99)] * 1000, 2)}
        phase("rest_get", a.gets, gets)

        async def aphase(name, per, fn):
            start = mark()
            await fn()
            done(name, per, start)

        asyncio.run(resume_and_ack(ports, min(a.conns, a.users), aphase))
        return report
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
        redis.stop()
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--yjtd", action="append", help="a yjtd to measure (repeatable)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--port", type=int, default=28531,
                    help="the first node's port; node k listens on PORT+k")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--notices", type=int, default=20)
    ap.add_argument("--conns", type=int, default=200,
                    help="connections that resume and ack after the notices")
    ap.add_argument("--gets", type=int, default=2000, help="REST GETs, 8 clients at once")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    for _ in range(a.runs):
        for yjtd in a.yjtd or [os.path.join(a.build, "yjtd")]:
            print(json.dumps(run_once(a, yjtd)), flush=True)


if __name__ == "__main__":
    main()
