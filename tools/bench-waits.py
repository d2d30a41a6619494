#!/usr/bin/python3
"""How often nodes on Redis wait for it on their event loop, per request.

Starts a redis-server of its own and N yjtd nodes on it (a fresh store
each run), makes U corp accounts of one enterprise and a regulator, and
counts yjt_redis_loop_waits_total (summed over the nodes) around each
phase: idle, U password logins over WebSocket (yjt-load, one account each,
spread over the nodes), U token logins (one token, as reconnecting apps
do), K notices published over REST to the enterprise's division (U
recipients each), then on C connections already logged in (Debian's
python3-websockets) a push.resume from 0 each (the K pushes), a
push.ack of the last, and a notice.read and a notice.get of the last
notice (per connection, both), and G REST GETs (a regulator's list and record of
the enterprise, the last notice's receipts and the alarms, a corp user's
inbox; 8 clients at once, spread over the nodes; their rate and latency
too, and meanwhile the round trip of a WebSocket ping on the first node,
which waits behind whatever holds that node's loop). With --sensors S
(default 20,000; 0: none), then: a gateway's batches of 1,000 readings
to S sensors (yjt-ingest, 4 s, on the first node; waits per batch), and
readings that cross the threshold of --crossings sensors, each raising
an alarm pushed to 20 duty users (per crossing), then leave and cross
it again (per reading: the alarm cleared, then active). With --wait N, a
replica of the Redis server runs too and the nodes' writes wait for N
replicas (?wait=N). Prints one JSON report per run; with several --yjtd, runs them in
turn (alternating, --runs rounds) on the same settings.

  tools/bench-waits.py --build build [--yjtd OLD/yjtd --yjtd build/yjtd]
                       [--nodes 3] [--users 2000] [--notices 20] [--conns 200]
                       [--gets 2000] [--sensors 20000] [--crossings 100]
                       [--wait 1] [--runs 3] [--port 28531] [--keep]
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


async def resume_and_ack(ports, n, phase, nid=None):
    """n connections (users load0..), logged in; then the resume phase and
    the ack phase, and with nid, each of them reading notice nid and
    asking for it whole (notice.read, notice.get), each measured by
    phase(name, per, fn)."""
    import websockets
    conns, ids = [], []

    async def login(port, username, device):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["yjt.v1"],
                                      max_size=None)
        await ws.send(json.dumps({"id": 1, "type": "auth.login", "username": username,
                                  "password": PASSWORD, "device_id": device,
                                  "platform": "cli"}))
        while True:
            m = json.loads(await ws.recv())
            if m.get("re") == 1:
                return ws, m["user"]["id"]

    for i in range(n):
        ws, uid = await login(ports[i % len(ports)], f"load{i}", f"bw{i}")
        conns.append(ws)
        ids.append(uid)

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

    async def notice_reads():
        await asyncio.gather(*(ask(ws, {"id": 4, "type": "notice.read", "notice_id": nid})
                               for ws in conns))
        await asyncio.gather(*(ask(ws, {"id": 5, "type": "notice.get", "notice_id": nid})
                               for ws in conns))
    if nid:
        await phase("notice_read_and_get", n, notice_reads)

    async def presence_queries():
        """A regulator on the first node asks who of the n users is online
        (most of them on the other nodes), once."""
        gov, _ = await login(ports[0], "bench-gov", "bw-gov")
        await gov.send(json.dumps({"id": 2, "type": "presence.query", "users": ids[:500]}))
        while True:
            m = json.loads(await gov.recv())
            if m.get("re") == 2:
                assert m.get("ok"), m
                online = sum(1 for u in m["users"] if u.get("online"))
                assert online == min(n, 500), (online, n)
                break
        await gov.close()
    await phase("presence_query", 1, presence_queries)
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


def gateway_left(redis):
    """The push gateway's deadlines in the store (the scheduler's stay)."""
    return sum(1 for x in redis.cli("ZRANGE", PREFIX + "dlz", 0, -1).split()
               if x.startswith("gw/"))


def sensors_known(port):
    _, text = http(port, "GET", "/metrics")
    for line in text.splitlines():
        if line.startswith("yjt_sensors "):
            return int(float(line.split()[1]))
    return 0


def readings(a, ports, ctl, phase):
    """The readings phases: a gateway's batches of 1,000 (yjt-ingest on
    the first node, per batch), then crossings of a threshold (each one
    alarm raised and pushed to the enterprise's duty staff, per crossing)
    and the same alarms' condition cleared and back (per reading)."""
    data = tempfile.mkdtemp(prefix="bench-waits-sensors-")
    try:
        rows = [{"id": f"s{i:06d}", "enterprise": "E1", "kind": "level", "unit": "m",
                 "thresholds": {"low": -1e9, "high": 1e9}, "deadband": 0.5,
                 "interrupt_after_s": 3600} for i in range(a.sensors)]
        rows += [{"id": f"cross{i}", "enterprise": "E1", "kind": "level", "unit": "m",
                  "thresholds": {"high": 80}, "deadband": 1, "interrupt_after_s": 604800}
                 for i in range(a.crossings)]
        path = os.path.join(data, "sensors.json")
        with open(path, "w") as f:
            json.dump(rows, f)
        ctl("import", "sensors", "--file", path)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    total = a.sensors + a.crossings
    deadline = time.monotonic() + 120
    while sensors_known(ports[0]) < total:  # the nodes poll the store for new sensors
        assert time.monotonic() < deadline, "the sensors never reached the first node"
        time.sleep(0.2)
    key = ctl("apikey", "create", "--enterprise", "E1").strip()
    ctl("user", "add", "--username", "duty", "--password", PASSWORD, "--role", "corp",
        "--org", "E1", "--position", "duty", "--count", "20")
    out = {}

    def ingest():
        cp = subprocess.run([os.path.join(a.build, "yjt-ingest"), "--port", str(ports[0]),
                             "--key", key, "--sensors", str(a.sensors), "--conns", "2",
                             "--warmup", "1", "--seconds", "4"],
                            capture_output=True, text=True, check=True)
        r = json.loads(cp.stdout.strip().splitlines()[-1])
        out["batches"] = r["requests"]
        return {k: r[k] for k in ("readings_per_s_median", "batch_ms_p50", "batch_ms_p99",
                                  "requests", "failed")}
    r = phase("readings_batch", 1, ingest)  # per batch: known only after the run
    for k in ("waits_per_op", "wait_ms_per_op"):
        r[k] = round(r[k] / max(1, out["batches"]), 3)

    def backfill():  # rows older than their sensors' latest: each looked up in the chunks
        base = int(time.time() * 1000) - 3_600_000
        for b in range(20):
            rows = [{"sensor": f"s{i:06d}", "value": 1.0, "ts": base + b}
                    for i in range(min(100, a.sensors))]
            st, body = http(ports[0], "POST", "/api/v1/readings", {"readings": rows},
                            headers={"X-Api-Key": key})
            assert st == 200 and json.loads(body)["late"] == len(rows), body
    phase("readings_late_batch", 20, backfill)

    def post(i, value):
        st, body = http(ports[i % len(ports)], "POST", "/api/v1/readings",
                        {"readings": [{"sensor": f"cross{i}", "value": value,
                                       "ts": int(time.time() * 1000)}]},
                        headers={"X-Api-Key": key})
        assert st == 200 and json.loads(body)["accepted"] == 1, body

    def raise_all():
        for i in range(a.crossings):
            post(i, 85)

    def flip_all():
        for v in (70, 85):
            for i in range(a.crossings):
                post(i, v)
    phase("alarm_raised", a.crossings, raise_all)
    phase("alarm_flip", 2 * a.crossings, flip_all)
    duty = login_token(ports[0], "duty0")
    st, body = http(ports[0], "GET", f"/api/v1/alarms?state=raised&limit={a.crossings}",
                    token=duty)
    assert st == 200, st
    ids = [x["id"] for x in json.loads(body)["alarms"]]

    def act_all():  # each action through the next node
        n = 0
        for verb, body in (("ack", {}), ("feedback", {"found": "f", "done": "d"}),
                           ("close", {})):
            for aid in ids:
                st, reply = http(ports[n % len(ports)], "POST", f"/api/v1/alarms/{aid}/{verb}",
                                 body, token=duty)
                assert st == 200, (verb, st, reply)
                n += 1
    phase("alarm_act", 3 * max(1, len(ids)), act_all)
    return out


def run_once(a, yjtd):
    data = tempfile.mkdtemp(prefix="bench-waits-")
    env = dict(os.environ, YJT_HASH_ITERATIONS="1000")
    redis = Redis(os.path.join(data, "redis"))
    redis.start()
    replica = None
    if a.wait:
        replica = Redis(os.path.join(data, "replica"), replica_of=redis.port)
        replica.start()
    where = ["--redis", redis.url, "--redis-prefix", PREFIX]
    node_url = redis.url + (f"?wait={a.wait}" if a.wait else "")

    def ctl(*args):
        return subprocess.run([os.path.join(a.build, "yjtctl"), *where, *args], check=True,
                              env=env, stdout=subprocess.PIPE, text=True).stdout

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
        gw = ["--set", f"gateway_url=http://127.0.0.1:{a.port + 99}/push"] if a.gateway else []
        for i, port in enumerate(ports):
            node_dir = os.path.join(data, f"node{i}")
            os.makedirs(node_dir)
            procs.append(subprocess.Popen(
                [yjtd, "--listen", f"127.0.0.1:{port}", "--data-dir", node_dir,
                 "--log-level", "warn", "--redis", node_url, "--set", f"redis_prefix={PREFIX}",
                 "--set", "hash_iterations=1000", "--set", "rate_per_s=1000",
                 "--set", "rate_burst=1000", "--set", "addr_fail_limit=100000", *gw],
                stderr=open(os.path.join(node_dir, "yjtd.log"), "w")))
        for i, port in enumerate(ports):
            wait_healthy(port, os.path.join(data, f"node{i}", "yjtd.log"))
        report = {"yjtd": yjtd, "nodes": a.nodes, "users": a.users, "wait": a.wait}

        def mark():
            return (*waits(ports), time.monotonic())

        def done(name, per, start, extra=None):
            w0, s0, t0 = start
            w1, s1, t1 = mark()
            report[name] = {"waits_per_op": round((w1 - w0) / per, 2),
                            "wait_ms_per_op": round((s1 - s0) * 1000 / per, 3),
                            "seconds": round(t1 - t0, 2), **(extra or {})}
            return report[name]

        def phase(name, per, fn):
            start = mark()
            extra = fn()
            return done(name, per, start, extra)

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
                pings = sorted(pings.result()) or [float("nan")]
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

        asyncio.run(resume_and_ack(ports, min(a.conns, a.users), aphase, nids[-1]))
        if a.gateway:
            def gateway_due():
                t0 = time.monotonic()
                for i in range(a.gateway):
                    st, _ = http(ports[i % len(ports)], "POST", "/api/v1/notices", notice,
                                 token=token)
                    assert st == 201, st
                while gateway_left(redis):
                    assert time.monotonic() - t0 < 300, "the pushes never came due and went"
                    time.sleep(0.05)
                return {"drained_s": round(time.monotonic() - t0, 2)}
            t0 = time.monotonic()  # the earlier phases' pushes first
            while gateway_left(redis) and time.monotonic() - t0 < 300:
                time.sleep(0.1)
            phase("gateway_due", a.gateway * a.users, gateway_due)
        if a.sensors:
            readings(a, ports, ctl, phase)
        return report
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
        if replica:
            replica.stop()
        redis.stop()
        if a.keep:
            print(f"kept {data}", file=sys.stderr)
        else:
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
    ap.add_argument("--sensors", type=int, default=20000,
                    help="sensors of the readings phase (0: no readings phases)")
    ap.add_argument("--crossings", type=int, default=100,
                    help="sensors whose threshold the alarm phases cross")
    ap.add_argument("--gateway", type=int, default=0,
                    help="with a push gateway configured: N notices more to users offline, "
                         "their pushes due at once (no push tokens: each is settled after its "
                         "reads); waits per push, until every deadline is gone")
    ap.add_argument("--wait", type=int, default=0,
                    help="with a replica of the Redis server, the nodes' writes wait for N "
                         "replicas (?wait=N)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the data (and the nodes' logs)")
    a = ap.parse_args()
    for _ in range(a.runs):
        for yjtd in a.yjtd or [os.path.join(a.build, "yjtd")]:
            print(json.dumps(run_once(a, yjtd)), flush=True)


if __name__ == "__main__":
    main()
