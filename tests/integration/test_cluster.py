"""Several yjtd nodes on one Redis: any node serves any user, and what one
node stores reaches the devices held by the others (the bus); presence,
pushes, sensors and alarms across nodes, and Redis restarts and failover.
Calls across nodes are in test_cluster_calls.py. Runs when YJT_TEST_REDIS
names a Redis server (ctest's integration_cluster_* tests start one)."""

import asyncio
import base64
import json
import signal
import subprocess
import time

import pytest

from clusterlib import (CALL_USERS, ENTERPRISES, GOV, OFFER, USERS, cluster, cut_bus_readers,
                        redis_cli, wait_until_async)
from conftest import DEFAULT_PASSWORD, REDIS_URL, Closed, free_port, metric, run, wait_until
from pushlib import GatewayReceiver, push_seqs, resume_all, send_push, wait_pushes

pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="needs Redis (YJT_TEST_REDIS)")


def test_login_on_any_node_with_any_nodes_token(server):
    n1, n2, n3 = cluster(server)
    tok = n1.token("alice")
    # one signing key for the cluster: a token from n1 works on n2 and n3
    for node in (n2, n3):
        r = node.http("GET", "/api/v1/inbox", token=tok)
        assert r.status == 200, r


def test_push_reaches_devices_on_every_node(server):
    n1, n2, n3 = cluster(server)
    ops = n1.token("ops")
    alice = n1.users["alice"]

    async def body():
        d1 = await n1.ws_login("alice", device_id="phone")
        d2 = await n2.ws_login("alice", device_id="tablet")
        d3 = await n3.ws_login("alice", device_id="desk")
        b = await n2.ws_login("bob", device_id="bob-phone")
        for i in range(5):
            assert send_push(n1 if i % 2 == 0 else n3, ops, alice, title=f"t{i}") == i + 1
        for d in (d1, d2, d3):
            assert await wait_pushes(d, 5) == [1, 2, 3, 4, 5]
        await b.no_event("push", within=0.3)
        # acks are per device, stored: a device that moves node resumes from it
        assert (await d2.ok("push.ack", seq=3))["acked"] == 3
        await d2.close()
        d2 = await n3.ws_login("alice", device_id="tablet")
        r = await resume_all(d2)
        assert push_seqs(d2) == [4, 5] and r["last_seq"] == 5
        # live pushes follow the resume on the new node, with no gap
        assert send_push(n2, ops, alice, title="t5") == 6
        assert await wait_pushes(d2, 3) == [4, 5, 6]
        assert await wait_pushes(d1, 6) == [1, 2, 3, 4, 5, 6]
        for c in (d1, d2, d3, b):
            await c.close()

    run(body())


def test_node_killed_mid_storm_loses_nothing(server):
    """kill -9 of the node a device is on while pushes pour in through
    another: the device reconnects elsewhere and resumes every one."""
    n1, n2, n3 = cluster(server)
    ops = n1.token("ops")
    alice = n1.users["alice"]
    total = 60

    async def body():
        d = await n2.ws_login("alice", device_id="phone")
        await resume_all(d)
        sent = 0

        async def storm():
            nonlocal sent
            for i in range(total):
                await asyncio.to_thread(send_push, n1, ops, alice, title=f"s{i}")
                sent += 1
                if sent == total // 3:
                    n2.kill9()

        await storm()
        got_live = push_seqs(d)
        assert got_live == list(range(1, len(got_live) + 1))  # in order, no gap
        d = await n3.ws_login("alice", device_id="phone")
        await resume_all(d, after_seq=got_live[-1] if got_live else 0)
        assert got_live + push_seqs(d) == list(range(1, total + 1))
        await d.close()

    run(body())


def test_pushes_stored_by_two_nodes_reach_a_device_in_order(server):
    """Pushes of one user stored by two nodes at once reach a device on a
    third out of order now and then: a push after a gap has the gap read
    from the inbox (without holding the node's loop) and sent first, so
    the device gets every push once, in order, live."""
    n1, n2, n3 = cluster(server)
    alice = n1.users["alice"]
    per_node = 40

    async def body():
        d = await n3.ws_login("alice", device_id="phone")
        await resume_all(d)
        tokens = [n1.token("ops"), n2.token("ops")]

        def storm(node, tok):
            for i in range(per_node):
                send_push(node, tok, alice, title=f"s{i}")

        await asyncio.gather(asyncio.to_thread(storm, n1, tokens[0]),
                             asyncio.to_thread(storm, n2, tokens[1]))
        await wait_pushes(d, 2 * per_node, timeout=10)
        await asyncio.sleep(0.3)  # nothing more, no duplicate
        assert push_seqs(d) == list(range(1, 2 * per_node + 1))
        await d.close()

    run(body())


def test_presence_is_cluster_wide(server):
    """Presence queries and subscriptions see devices on every node; a
    device that logs in on another node replaces its older connection; the
    devices of a node killed with -9 go offline once its beat is stale."""
    n1, n2, n3 = cluster(server, users=USERS + GOV, cluster_beat_s=1, cluster_dead_s=3)
    alice = n1.users["alice"]

    async def body():
        g = await n1.ws_login("gov4401", device_id="g")
        r = await g.ok("presence.subscribe", users=[alice])
        assert r["users"][0]["online"] is False
        a2 = await n2.ws_login("alice", device_id="phone", platform="ios")
        ev = await g.next_event("presence.changed", 5)
        assert ev["user"]["online"] is True
        assert [d["device_id"] for d in ev["user"]["devices"]] == ["phone"]
        a3 = await n3.ws_login("alice", device_id="desk", platform="web")
        # other nodes hear of a change within milliseconds (the bus): the
        # subscriber is told, and queries after that see it
        ev = await g.next_event("presence.changed", 5)
        assert len(ev["user"]["devices"]) == 2, ev
        r = await g.ok("presence.query", users=[alice])
        assert sorted(d["device_id"] for d in r["users"][0]["devices"]) == ["desk", "phone"]
        # the same device on another node: the older connection is closed
        a2b = await n3.ws_login("alice", device_id="phone", platform="ios")
        await a2.wait_closed(5)
        assert a2.close_code == 4409, a2.close_code
        # a node killed: its devices go offline within its dead time
        n3.kill9()
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            r = await g.ok("presence.query", users=[alice])
            if not r["users"][0]["online"]:
                break
            assert asyncio.get_running_loop().time() < deadline, r
            await asyncio.sleep(0.5)
        for c in (g, a3, a2b):
            await c.close()

    run(body())


def test_presence_elsewhere_is_read_once_while_the_bus_tells_of_changes(server):
    """What a node read of another node's devices holds while the bus is read
    without a break, since every change is announced there: a call or a
    query does not wait for Redis each time. Shown by changing Redis behind
    the nodes' backs (no announcement): the node keeps what it read, past the
    second it used to keep it, until the next announcement; after its bus
    connection broke, for a second only, and it is forgotten at the next
    beat."""
    n1, n2 = cluster(server, n=2, users=USERS + GOV, cluster_beat_s=1)
    alice = n1.users["alice"]
    key = n1.settings["redis_prefix"] + "pr:" + alice

    def devices(r):
        return sorted(d["device_id"] for d in r["users"][0]["devices"])

    async def body():
        g = await n1.ws_login("gov4401", device_id="g")
        await g.ok("presence.subscribe", users=[alice])
        a = await n2.ws_login("alice", device_id="phone")
        # n1 has heard of the login (the bus) before it reads: an
        # announcement that came after the read would drop it
        await g.next_event("presence.changed", 5)
        await asyncio.sleep(0.3)
        assert devices(await g.ok("presence.query", users=[alice])) == ["phone"]
        redis_cli("DEL", key)
        await asyncio.sleep(1.5)  # the beats since keep what is believable
        assert devices(await g.ok("presence.query", users=[alice])) == ["phone"]
        assert metric(n1.metrics(), "yjt_cluster_presence_cached") >= 1
        # an announced change drops what was kept: read again, Redis now
        # holds only the new device
        d = await n2.ws_login("alice", device_id="desk")
        await wait_until_async(lambda: g.ok("presence.query", users=[alice]),
                               lambda r: devices(r) == ["desk"])
        # once the bus reading broke, news may have been missed: what was
        # read is kept for a second only (the nodes read the bus again)
        redis_cli("DEL", key)
        cut_bus_readers()
        # and forgotten at the next beat
        await wait_until_async(
            lambda: asyncio.to_thread(lambda: metric(n1.metrics(), "yjt_cluster_presence_cached")),
            lambda n: n == 0)
        assert devices(await g.ok("presence.query", users=[alice])) == []
        for c in (g, a, d):
            await c.close()

    run(body())


def jti_of(token):
    """The id (claim "j") a token carries in its readable middle part."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["j"]


def test_a_token_known_not_revoked_is_believed_until_its_revocation_is_heard(server):
    """A node that found a token not revoked does not ask Redis again while
    the bus tells it of every revocation: shown by marking the token revoked
    in Redis behind the nodes' backs (no announcement), which the node does
    not see; a logout through another node is announced and refused at
    once; after the bus connection broke, Redis is asked again."""
    n1, n2 = cluster(server, n=2)
    revoked = n1.settings["redis_prefix"] + "kv:revoked:"

    def me(node, tok):
        return node.http("GET", "/api/v1/me", token=tok).status

    tok = n1.token("alice")
    assert me(n2, tok) == 200
    redis_cli("SET", revoked + jti_of(tok), "x")
    assert me(n2, tok) == 200  # believed: not read again
    # a logout elsewhere is announced on the bus: refused at once
    tok2 = n1.token("bob")
    assert me(n2, tok2) == 200
    assert n1.http("POST", "/api/v1/auth/logout", token=tok2).status == 200
    wait_until(lambda: me(n2, tok2) == 401, 2, what="the logout heard on the other node")
    # once the bus reading broke, news may have been missed: asked again
    cut_bus_readers()
    wait_until(lambda: me(n2, tok) == 401, 5, what="the token read again after the break")


def test_each_reminder_is_sent_by_one_node(server):
    """Every node finds the 08:30 commitment reminder due at once; the
    principal still gets it once."""
    from test_reminders import ENTERPRISES as R_ENTS, USERS as R_USERS, at, reminders, set_clock
    nodes = cluster(server, users=R_USERS, enterprises=R_ENTS, test_clock=at("08:00:00"))
    n1 = nodes[0]
    for n in nodes:
        set_clock(n, at("08:30:01"))
    want = [("commitment.0830", "2026-12-01")]
    for n in nodes:
        assert reminders(n, "p1") == want
    for n in nodes:
        set_clock(n, at("08:31:00"))
    assert reminders(n1, "p1") == want


class OwnRedis:
    """A redis-server of the test's own (so that it can kill and restart
    it), with its append-only log synced at every write."""

    def __init__(self, dirpath, replica_of=None, tls=None):
        self.dir = dirpath
        self.port = free_port()
        self.replica_of = replica_of
        self.tls = tls  # (cert, key): TLS only, on self.port
        self.proc = None

    @property
    def url(self):
        if self.tls:
            return f"rediss://localhost:{self.port}?tls_ca={self.tls[0]}"
        return f"redis://127.0.0.1:{self.port}"

    def cli(self):
        return ["redis-cli", "-p", str(self.port)] + (
            ["--tls", "--cacert", self.tls[0]] if self.tls else [])

    def start(self):
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls[0],
                     "--tls-key-file", self.tls[1], "--tls-ca-cert-file", self.tls[0],
                     "--tls-auth-clients", "no", "--tls-replication", "yes"]
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1"] + ports + ["--dir",
             str(self.dir), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             # a master stopping would otherwise wait for lagging replicas
             "--shutdown-on-sigterm", "now",
             "--logfile", str(self.dir / "redis.log")]
            + (["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                return b"PONG" in subprocess.run(
                    self.cli() + ["ping"], capture_output=True, timeout=2).stdout
            except subprocess.TimeoutExpired:
                return False
        wait_until(up, 10, what="redis-server up")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post_push(srv, token, user_id, title):
    return srv.http("POST", "/api/v1/pushes", token=token,
                    body={"user": user_id, "kind": "alarm", "title": title, "body": "b",
                          "ttl_s": 3600})


async def ack_refused(d, seq):
    """A push.ack Redis cannot store is never acknowledged: the ack is one
    write sent with its batch, so either its failure is answered
    unavailable, or its batch fails first and the connection waiting for
    it is closed 1011 (the device reconnects and resumes). True if it
    was closed."""
    try:
        r = await d.request("push.ack", seq=seq)
    except Closed as closed:
        assert closed.code == 1011, closed
        return True
    assert r["ok"] is False and r["error"]["code"] == "unavailable", r
    return False


def test_redis_restart_loses_nothing_acknowledged(server, tmp_path):
    """Redis killed with -9 and restarted from its log: what was
    acknowledged is there; meanwhile writes are refused with unavailable,
    never acknowledged and lost; the nodes come back by themselves, and
    neither holds its loop for Redis meanwhile (the accounts not looked at
    lately are looked at before a token's are judged)."""
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        n1, n2 = cluster(server, n=2, redis=redis.url)
        ops = n1.token("ops")
        alice = n1.users["alice"]

        def waits():
            return sum(metric(n.metrics(), "yjt_redis_loop_waits_total") or 0 for n in (n1, n2))

        async def body():
            d = await n2.ws_login("alice", device_id="phone")
            await resume_all(d)
            for i in range(3):
                assert send_push(n1, ops, alice, title=f"a{i}") == i + 1
            assert await wait_pushes(d, 3) == [1, 2, 3]
            before = waits()
            redis.kill9()
            r = post_push(n1, ops, alice, "lost?")
            assert r.status == 503 and r.error_code() == "unavailable", r
            closed = await ack_refused(d, 3)
            await asyncio.sleep(2.5)  # no look at the accounts answered lately
            redis.start()
            # the nodes reconnect within their backoff (at most 2 s)
            deadline = time.monotonic() + 15
            while True:
                r = post_push(n1, ops, alice, "after")
                if r.status == 201:
                    break
                assert r.status == 503 and time.monotonic() < deadline, r
                await asyncio.sleep(0.2)
            assert r.json["seq"] == 4  # nothing acknowledged was lost, nothing refused was kept
            if closed:  # the device reconnects and resumes, as apps do
                # (n2 may still be in its own backoff: unavailable until it is back)
                while True:
                    d = await n2.ws()
                    r = await d.request("auth.login", username="alice",
                                        password=DEFAULT_PASSWORD, device_id="phone",
                                        platform="android")
                    if r.get("ok"):
                        break
                    await d.close()
                    assert r["error"]["code"] == "unavailable", r
                    assert time.monotonic() < deadline, r
                    await asyncio.sleep(0.2)
                await resume_all(d)
            assert await wait_pushes(d, 4) == [1, 2, 3, 4]
            # the bus is back too: a push stored through n1 reaches n2 live
            assert send_push(n1, ops, alice, title="live") == 5
            assert await wait_pushes(d, 5) == [1, 2, 3, 4, 5]
            r = n2.http("GET", "/api/v1/inbox?limit=10", token=n2.token("alice"))
            assert r.status == 200, r
            titles = [i["title"] for i in r.json["items"] if i["title"] != "live"]
            assert titles[:4] in (["after", "a2", "a1", "a0"], ["a0", "a1", "a2", "after"])
            assert waits() == before
            await d.close()

        run(body())
    finally:
        redis.stop()


class Sentinel:
    """A redis-server in Sentinel mode watching one master (with tls, a
    (cert, key) pair: TLS only, to clients and to the servers it watches)."""

    def __init__(self, dirpath, master_port, tls=None):
        self.dir = dirpath
        self.port = free_port()
        self.tls = tls
        conf = dirpath / "sentinel.conf"
        ports = f"port {self.port}\n"
        if tls:
            ports = (f"port 0\ntls-port {self.port}\ntls-cert-file {tls[0]}\n"
                     f"tls-key-file {tls[1]}\ntls-ca-cert-file {tls[0]}\n"
                     "tls-auth-clients no\ntls-replication yes\n")
        conf.write_text(f"{ports}bind 127.0.0.1\ndir {dirpath}\n"
                        f"sentinel monitor m1 127.0.0.1 {master_port} 1\n"
                        "sentinel down-after-milliseconds m1 1000\n"
                        "sentinel failover-timeout m1 4000\n")
        self.proc = subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def master_port(self):
        tls = ["--tls", "--cacert", self.tls[0]] if self.tls else []
        r = subprocess.run(["redis-cli", "-p", str(self.port)] + tls + ["sentinel",
                            "get-master-addr-by-name", "m1"], capture_output=True, text=True)
        lines = r.stdout.split()
        return int(lines[1]) if len(lines) == 2 else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def test_sentinel_failover_loses_nothing_acknowledged(server, tmp_path):
    """A master, a replica and a sentinel; the nodes find the master through
    the sentinel and make every write wait for the replica (?wait=1). The
    master is killed with -9: writes are refused until the replica is
    promoted and has a replica of its own again (the old master, restarted),
    then go on, and every acknowledged push is there."""
    sentinel_failover(server, tmp_path, tls=False)


def test_sentinel_over_tls_failover_loses_nothing_acknowledged(server, tmp_path):
    """The same with rediss-sentinel://: the master, the replica and the
    sentinel speak TLS only; the nodes reach the sentinel and each master
    it names over TLS, their certificates checked."""
    sentinel_failover(server, tmp_path, tls=True)


def sentinel_failover(server, tmp_path, tls):
    from conftest import make_self_signed
    a_dir, b_dir, s_dir, ca_dir = (tmp_path / "a", tmp_path / "b", tmp_path / "s",
                                   tmp_path / "ca")
    for d in (a_dir, b_dir, s_dir, ca_dir):
        d.mkdir()
    certs = make_self_signed(ca_dir) if tls else None
    a = OwnRedis(a_dir, tls=certs)
    a.start()
    b = OwnRedis(b_dir, replica_of=a.port, tls=certs)
    b.start()
    wait_until(lambda: b"master_link_status:up" in subprocess.run(
        b.cli() + ["info", "replication"], capture_output=True).stdout,
        10, what="replica in sync")
    s = Sentinel(s_dir, a.port, tls=certs)
    try:
        wait_until(lambda: s.master_port() == a.port, 10, what="sentinel sees the master")
        url = f"redis-sentinel://127.0.0.1:{s.port}/m1?wait=1&wait_ms=500"
        if tls:
            url = url.replace("redis-", "rediss-") + f"&tls_ca={certs[0]}"
        shared = {"redis": url, "redis_prefix": "f:"}
        n1 = server(enterprises=ENTERPRISES, users=USERS, settings=shared)
        ops = n1.token("ops")
        alice = n1.users["alice"]
        acked = [send_push(n1, ops, alice, title=f"a{i}") for i in range(5)]
        assert acked == [1, 2, 3, 4, 5]
        a.kill9()
        refused = 0
        deadline = time.monotonic() + 30
        restarted = False
        while True:
            r = post_push(n1, ops, alice, "after")
            if r.status == 201:
                break
            assert r.status == 503 and r.error_code() == "unavailable", r
            refused += 1
            if not restarted and s.master_port() == b.port:
                # promoted; the old master comes back and the sentinel makes it a replica
                a.start()
                restarted = True
            assert time.monotonic() < deadline, "no write accepted after the failover"
            time.sleep(0.2)
        assert restarted and refused > 0
        assert r.json["seq"] >= 6

        # Writes wait for a replica (wait=1): while the old master resyncs
        # as the new one's replica, a login (it writes a session) may still
        # be refused with 503, never with anything else, and not for long.
        def alice_token():
            r = n1.login("alice")
            assert r.status in (200, 503), r
            return r.json["token"] if r.status == 200 else None
        tok = wait_until(alice_token, 15, interval=0.2, what="a login after the failover")
        r = n1.http("GET", "/api/v1/inbox?limit=50", token=tok)
        titles = {i["title"] for i in r.json["items"]}
        assert {f"a{i}" for i in range(5)} <= titles, titles
    finally:
        s.stop()
        a.stop()
        b.stop()


def alarm_cluster(server, n=2, **settings):
    import test_alarms as ta
    return ta, cluster(server, n=n, users=ta.USERS, enterprises=ta.ENTERPRISES, **settings)


def test_sensor_reporting_to_one_node_is_not_silent_on_the_others(server):
    """Every node scans for interrupted sensors; a reading taken by one node
    must count on all of them, or the others raise false 数据中断 alarms."""
    ta, (n1, n2) = alarm_cluster(server)
    key = ta.gateway_key(n1)
    ta.put_sensor(n1, "lt1", interrupt_after_s=2)
    end = time.monotonic() + 6
    v = 50
    while time.monotonic() < end:
        ta.post(n1, key, "lt1", v)
        v = 101 - v  # 50, 51, 50, ...: all within the band
        time.sleep(0.4)
    assert ta.alarms(n1) == [] and ta.alarms(n2) == []


def test_sensor_registered_on_one_node_takes_readings_on_another_at_once(server):
    """A node that does not know a sensor yet (the others learn of a new
    one at their next poll, within a second) looks for it in the store
    when a reading names it, instead of refusing the reading as
    unknown_sensor."""
    ta, (n1, n2) = alarm_cluster(server)
    key = ta.gateway_key(n1)
    for i in range(5):
        sid = f"new{i}"
        ta.put_sensor(n1, sid)
        ta.post(n2, key, sid, 50)  # accepted at once, on the other node
    r = n2.http("POST", "/api/v1/readings", headers={"X-Api-Key": key},
                body={"readings": [{"sensor": "nosuch", "value": 1, "ts": ta.next_ts()}]})
    assert r.status == 200 and r.json["accepted"] == 0, r
    assert r.json["errors"] == [{"index": 0, "code": "unknown_sensor"}], r


def test_feed_on_another_node_than_the_gateways(server):
    """A 3D client subscribed on one node sees the readings and alarms of a
    gateway that sends to another."""
    import test_feeds as tf
    n1, n2 = cluster(server, n=2, users=tf.USERS, enterprises=tf.ENTERPRISES)
    ops_token = n1.token("admin")
    for sid in ("t1", "t2"):
        r = n1.http("PUT", f"/api/v1/sensors/{sid}", token=ops_token, body=tf.level_sensor("e1"))
        assert r.status in (200, 201), r
    key = tf.api_key(n1, "e1")

    async def body():
        a = await n2.ws_login("alice", device_id="a")
        # n2 learns of sensors put on n1 within a second (it polls for them)
        deadline = time.monotonic() + 5
        while True:
            fid = (await a.ok("feed.subscribe", enterprise="e1", max_hz=10))["feed_id"]
            sensors, _, _ = await tf.collect_snapshot(a, fid)
            if set(sensors) == {"t1", "t2"} or time.monotonic() > deadline:
                break
            await a.ok("feed.unsubscribe", feed_id=fid)
            await asyncio.sleep(0.3)
        assert set(sensors) == {"t1", "t2"}
        # n2 holds the value n1 read before n2 knew the sensor only from
        # the sensor's next reading on
        tf.post_readings(n1, key, [("t1", 3.5)])
        d = await a.next_event("feed.delta")
        assert [(x["id"], x["value"]) for x in d["sensors"]] == [("t1", 3.5)]
        tf.post_readings(n1, key, [("t2", 9.5)])  # over high_high: a red alarm on n1
        seen_value = seen_alarm = False
        deadline = time.monotonic() + 5
        while not (seen_value and seen_alarm) and time.monotonic() < deadline:
            d = await a.next_event("feed.delta", timeout=5)
            for s in d.get("sensors", []):
                if s["id"] == "t2" and s.get("value") == 9.5:
                    seen_value = True
            for al in d.get("alarms", []):
                if al.get("sensor") == "t2" and al.get("state") != "closed":
                    seen_alarm = True
        assert seen_value and seen_alarm
        await a.close()

    run(body())


def test_silence_of_a_dead_nodes_sensor_is_still_an_interruption(server):
    """The node that took a sensor's readings is killed: another node
    watches the sensor from then on and raises its 数据中断 alarm once."""
    ta, (n1, n2, n3) = alarm_cluster(server, n=3, cluster_beat_s=1, cluster_dead_s=3)
    key = ta.gateway_key(n1)
    ta.put_sensor(n1, "lt1", interrupt_after_s=4)
    ta.post(n1, key, "lt1", 50)
    time.sleep(0.5)
    n1.kill9()
    wait_until(lambda: len(ta.alarms(n2)) >= 1, timeout=20, what="an interruption alarm")
    time.sleep(2)  # a second node raising one too would show by now
    got = ta.alarms(n2)
    assert [(a["sensor"], a["condition"]) for a in got] == [("lt1", "interrupted")], got


def test_alarm_is_acted_on_through_any_node(server):
    """An alarm raised on the node its gateway sends to is acknowledged,
    handled and closed through the others, and every node shows each step."""
    ta, (n1, n2, n3) = alarm_cluster(server, n=3)
    key = ta.gateway_key(n1)
    ta.put_sensor(n1, "lt1")
    ta.post(n1, key, "lt1", 85)  # over high: a yellow alarm, raised on n1
    [a] = ta.alarms(n1)
    duty = n1.token("duty1")

    def act(node, verb, body=None):
        r = node.http("POST", f"/api/v1/alarms/{a['id']}/{verb}", token=duty, body=body or {})
        return r.json["alarm"]["state"] if r.status == 200 else None

    def state_on(node):
        return node.http("GET", f"/api/v1/alarms/{a['id']}", token=duty).json["alarm"]["state"]

    # the raise reaches n2 over the bus within moments
    assert wait_until(lambda: act(n2, "ack"), 5, what="ack through n2") == "acknowledged"
    for node in (n1, n3):
        wait_until(lambda: state_on(node) == "acknowledged", 5, what="ack seen")
    assert act(n3, "feedback", {"found": "浮子卡滞", "done": "清理并校验"}) == "handled"
    wait_until(lambda: state_on(n1) == "handled", 5, what="feedback seen on n1")
    assert act(n1, "close", {"note": "已复核"}) == "closed"
    for node in (n2, n3):
        wait_until(lambda: act(node, "ack") is None and state_on(node) == "closed", 5,
                   what="close seen")
    assert ta.alarms(n2, state="closed")[0]["close_note"] == "已复核"


def test_redis_over_tls(server, tmp_path):
    """rediss://: the store and the bus reach a Redis that speaks TLS only,
    its certificate checked; a node that does not trust it does not start."""
    from conftest import make_self_signed
    (tmp_path / "ca").mkdir()
    (tmp_path / "other").mkdir()
    redis = OwnRedis(tmp_path, tls=make_self_signed(tmp_path / "ca"))
    redis.start()
    try:
        n1, n2 = cluster(server, n=2, redis=redis.url)
        ops = n1.token("ops")
        alice = n1.users["alice"]

        async def body():
            d = await n2.ws_login("alice", device_id="phone")
            await resume_all(d)
            for i in range(3):
                assert send_push(n1, ops, alice, title=f"t{i}") == i + 1
            assert await wait_pushes(d, 3) == [1, 2, 3]
            await d.close()

        run(body())
        # the pushes are in Redis (read back over TLS by redis-cli)
        keys = subprocess.run(redis.cli() + ["--scan", "--pattern", n1.settings["redis_prefix"] + "*"],
                              capture_output=True, text=True, timeout=10).stdout.split()
        assert keys, "nothing stored under the prefix"

        other_ca, _ = make_self_signed(tmp_path / "other")
        bad = server(settings={"redis": redis.url.replace(redis.tls[0], other_ca),
                               "redis_prefix": n1.settings["redis_prefix"]}, start=False)
        bad.start(wait=False)
        assert bad.proc.wait(30) != 0
        assert "certificate verify failed" in bad.stderr(), bad.stderr()[-2000:]
    finally:
        redis.stop()


def test_alarm_changed_on_two_nodes_at_once_keeps_both(server):
    """A reading that clears an alarm (on the gateway's node) and a person
    acknowledging it (through another node) in the same instant: every
    node ends up with both, and so does the stored record."""
    import threading
    ta, (n1, n2, n3) = alarm_cluster(server, n=3)
    key = ta.gateway_key(n1)
    duty = n1.token("duty1")
    for k in range(5):
        sid = f"lt{k}"
        ta.put_sensor(n1, sid)
        ta.post(n1, key, sid, 85)
        [a] = [x for x in ta.alarms(n1) if x["sensor"] == sid]
        wait_until(lambda: n2.http("GET", f"/api/v1/alarms/{a['id']}",
                                   token=duty).json["alarm"]["state"] == "raised", 5,
                   what="the alarm on n2")
        acks = []
        t = threading.Thread(target=lambda: acks.append(n2.http(
            "POST", f"/api/v1/alarms/{a['id']}/ack", token=duty, body={})))
        t.start()
        ta.post(n1, key, sid, 50)  # back inside the band: cleared
        t.join()
        assert acks[0].status == 200, acks[0]

        def both(node):
            x = node.http("GET", f"/api/v1/alarms/{a['id']}", token=duty).json["alarm"]
            return x["state"] == "acknowledged" and x["cleared"] is True
        for node in (n1, n2, n3):
            wait_until(lambda: both(node), 5, what=f"ack and clear on every node ({sid})")
    # the stored records: what a node that starts now loads
    n4 = server(settings={"redis_prefix": n1.settings["redis_prefix"]})
    n4.users = n1.users
    got = [x for x in ta.alarms(n4, state="acknowledged")]
    assert len(got) == 5 and all(x["cleared"] for x in got), got


def test_rate_limits_count_on_every_node(server):
    """Invites per minute and failed logins per address are counted in
    Redis: spreading them over nodes does not multiply the limit."""
    n1, n2, n3 = cluster(server, users=CALL_USERS, invites_per_min=3, addr_fail_limit=4,
                         lockout_after=100)
    alice = n1.users["alice"]

    async def body():
        g1 = await n1.ws_login("gov4401", device_id="g1")
        g2 = await n2.ws_login("gov4401", device_id="g2")
        for g in (g1, g2, g1):  # alice is offline: each call ends at once
            call_id = (await g.ok("call.invite", to={"user": alice}, sdp=OFFER))["call_id"]
            ev = await g.next_event("call.ended")
            assert ev["call_id"] == call_id and ev["reason"] == "offline", ev
        for g in (g2, g1):
            r = await g.request("call.invite", to={"user": alice}, sdp=OFFER)
            assert r["ok"] is False and r["error"]["code"] == "rate_limited", r
        for g in (g1, g2):
            await g.close()

    run(body())
    for i, node in enumerate((n1, n2, n1, n2)):
        assert node.login(f"ghost{i}", "wrong-password-x").status == 401
    for node in (n3, n1):
        r = node.login("ghost-next", "wrong-password-x")
        assert r.status == 429 and r.json["error"]["code"] == "rate_limited", r


def test_news_of_an_older_login_elsewhere_does_not_close_the_newer_one(server):
    """The bus can bring the news of a device's login on another node after
    the same device logged in again here: the connection here, the newer,
    stays (both nodes order the two logins alike). News of a newer login
    there closes it. (The announcements are put on the bus here by hand, as
    from a third node.)"""
    n1, n2 = cluster(server, n=2, users=USERS)
    alice = n1.users["alice"]
    prefix = n1.settings["redis_prefix"]

    def announce(since_ms):
        redis_cli("XADD", prefix + "bus", "*", "n", "n-elsewhere", "t", "presence", "o", "", "u",
                  alice, "d", f"+phone\t{since_ms}")

    async def body():
        a = await n2.ws_login("alice", device_id="phone")
        announce(int(time.time() * 1000) - 5000)  # logged in there 5 s ago
        await a.ok("ping")
        await asyncio.sleep(1.0)
        await a.ok("ping")  # still open
        announce(int(time.time() * 1000) + 1000)
        assert await a.wait_closed(5) == 4409

    run(body())


def test_a_write_redis_refuses_after_the_fact_is_never_acknowledged(server, tmp_path):
    """A node sends the writes whose outcome it needs later at once and
    reads their replies at the end of the loop turn, before anything that
    tells of them goes out. When Redis refuses them then (here: out of
    memory), the WebSocket request that waited for one is refused (its
    connection closed 1011, or answered unavailable), an HTTP request gets
    503, and nothing of it is kept."""
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        n1, = cluster(server, n=1, redis=redis.url)
        ops = n1.token("ops")
        alice = n1.users["alice"]

        def cli(*args):
            subprocess.run(redis.cli() + list(args), check=True, capture_output=True)

        async def body():
            d = await n1.ws_login("alice", device_id="phone")
            await resume_all(d)
            assert send_push(n1, ops, alice, title="a0") == 1
            assert await wait_pushes(d, 1) == [1]
            cli("config", "set", "maxmemory-policy", "noeviction")
            cli("config", "set", "maxmemory", "1")
            await ack_refused(d, 1)
            r = n1.http("POST", "/api/v1/auth/logout", token=ops, raw="{}")
            assert r.status == 503 and r.error_code() == "unavailable", r
            cli("config", "set", "maxmemory", "0")
            # the ack and the logout were not kept, and the node serves on
            d = await n1.ws_login("alice", device_id="phone")
            await resume_all(d)  # from the device's stored ack
            assert push_seqs(d) == [1]
            assert n1.http("GET", "/api/v1/inbox", token=ops).status == 200
            assert (await d.ok("push.ack", seq=1))["acked"] == 1
            await d.close()

        run(body())
    finally:
        redis.stop()


def test_a_push_its_replica_never_confirmed_is_never_told(server, tmp_path):
    """With ?wait=1 a batch is durable once a replica has it. A push is
    stored as a write of the open batch; Redis answers its seq at once,
    but the push goes to no device and its request is not acknowledged
    until the batch is confirmed: here the replica is gone, the batch
    fails, and the push is refused (503) and never delivered; a push.ack
    likewise is refused."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = OwnRedis(a_dir)
    a.start()
    b = OwnRedis(b_dir, replica_of=a.port)
    b.start()
    try:
        wait_until(lambda: b"master_link_status:up" in subprocess.run(
            b.cli() + ["info", "replication"], capture_output=True).stdout,
            10, what="replica in sync")
        n1, = cluster(server, n=1, redis=a.url + "?wait=1&wait_ms=300")
        ops = n1.token("ops")
        alice = n1.users["alice"]

        async def body():
            d = await n1.ws_login("alice", device_id="phone")
            await resume_all(d)
            assert send_push(n1, ops, alice, title="kept") == 1
            assert await wait_pushes(d, 1) == [1]
            b.kill9()
            r = post_push(n1, ops, alice, "never confirmed")
            assert r.status == 503 and r.error_code() == "unavailable", r
            await asyncio.sleep(1.0)
            assert push_seqs(d) == [1]  # the refused push never reached the device
            # an ack is such a write too: not acknowledged unless confirmed
            await ack_refused(d, 1)
            await d.close()

        run(body())
    finally:
        b.stop()
        a.stop()


def test_readings_whose_chunks_redis_refused_are_kept(server, tmp_path):
    """Chunks of readings are writes of the open batch, not waited for. When
    Redis refuses a batch with chunks in it (here: out of memory), the
    readings they held are read back from the node's log before the log is
    trimmed again (by a thread: the node's loop does not wait for it):
    what was acknowledged outlives a kill -9 after Redis takes writes
    again."""
    import test_alarms as ta
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        n1, = cluster(server, n=1, users=ta.USERS, enterprises=ta.ENTERPRISES, redis=redis.url,
                      readings_flush_points=3)
        ops = n1.token("ops")
        ta.put_sensor(n1, "a1")
        key = ta.gateway_key(n1)

        def cli(*args):
            subprocess.run(redis.cli() + list(args), check=True, capture_output=True)

        def post(v):
            return n1.http("POST", "/api/v1/readings", headers={"X-Api-Key": key},
                           body={"readings": [{"sensor": "a1", "value": v, "ts": ta.next_ts()}]})
        t0 = ta.next_ts()
        assert post(50).status == 200  # acknowledged: in the log, not yet in a chunk
        waits = metric(n1.metrics(), "yjt_redis_loop_waits_total") or 0
        cli("config", "set", "maxmemory-policy", "noeviction")
        cli("config", "set", "maxmemory", "1")
        for v in (51, 52):  # refused, yet buffered: the third makes a chunk, refused too
            r = post(v)
            assert r.status == 503 and r.error_code() == "unavailable", r
        wait_until(lambda: "reading the readings log back" in n1.stderr(), 10,
                   what="the node to read its log back")
        cli("config", "set", "maxmemory", "0")
        assert post(53).status == 200
        assert post(54).status == 200  # a chunk of three again, now stored
        time.sleep(2.5)  # rounds end, their trims are sent
        assert (metric(n1.metrics(), "yjt_redis_loop_waits_total") or 0) == waits
        n1.kill9()
        n1.start()
        r = n1.http("GET", f"/api/v1/sensors/a1/readings?from={t0}&to={ta.next_ts() + 1}",
                    token=ops)
        got = [p["value"] for p in r.json["points"]]
        assert 50 in got and 53 in got and 54 in got, got
    finally:
        redis.stop()


def test_gateway_after_a_notice_knows_who_is_online_on_other_nodes(server):
    """The gateway decides per recipient of a notice whether a device is
    online (post after the ack timeout) or not (post at once); for users
    held by other nodes it reads their devices for the whole audience at
    once. alice is online on another node than the publisher's, bob is
    not: bob's push is posted at once, alice's only after she fails to
    acknowledge it."""
    gw = GatewayReceiver(lambda body, n: 200, None, None)
    try:
        n1, n2 = cluster(server, n=2, users=CALL_USERS, gateway_url=gw.url,
                         push_ack_timeout_s=2, gateway_retry_base_ms=100)
        ids = {name: n1.users[name] for name in ("alice", "bob")}

        async def body():
            a = await n2.ws_login("alice", device_id="a-phone")
            await a.ok("push.register", platform="apns", token="tok-a")
            b = await n2.ws_login("bob", device_id="b-phone")
            await b.ok("push.register", platform="apns", token="tok-b")
            await b.close()  # bob is offline: his token is stored
            g = await n1.ws_login("gov4401", device_id="g")
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            r = await g.ok("notice.publish", audience={"type": "enterprises",
                                                       "enterprises": ["e1"]},
                           title="t", body="b", require_read=False)
            assert r["recipients"] >= 2, r
            ev = await a.next_event("push")  # received, never acknowledged
            bob_posts = await asyncio.to_thread(gw.wait_posts, f"{ids['bob']}:{ev['seq']}", 1, 5)
            assert bob_posts[0][0] - t0 < 1.5, "an offline user waited for the ack timeout"
            alice_posts = await asyncio.to_thread(gw.wait_posts,
                                                  f"{ids['alice']}:{ev['seq']}", 1, 6)
            assert alice_posts[0][0] - t0 >= 1.8, "an online user was posted at once"
            for c in (a, g):
                await c.close()

        run(body())
    finally:
        gw.close()


def test_readings_of_two_nodes_survive_either_ones_kill(server):
    """Two gateways post to two nodes at once. Each node flushes its own
    sensors' readings and deletes what it flushed from the readings log;
    neither may delete the other's unflushed readings, so a node killed
    with -9 replays every reading it acknowledged."""
    ta, (n1, n2) = alarm_cluster(server, readings_flush_points=3)
    ops = n1.token("ops")
    for sid in ("a1", "b1"):
        ta.put_sensor(n1, sid, enterprise="e1" if sid == "a1" else "e2")
    ta.known_everywhere(n1, "a1", "b1")
    ka, kb = ta.gateway_key(n1, "e1"), ta.gateway_key(n1, "e2")
    tb = ta.next_ts()
    r = n2.http("POST", "/api/v1/readings", headers={"X-Api-Key": kb},
                body={"readings": [{"sensor": "b1", "value": 7.5, "ts": tb}]})
    assert r.status == 200 and r.json["accepted"] == 1, r
    ta.post(n1, ka, "a1", 1, 2, 3, 4)  # a chunk on n1, then its log trimmed
    wait_until(lambda: metric(n1.metrics(), "yjt_readings_chunks_total") >= 1, 5,
               what="a1's chunk on n1")
    # n1's flusher rounds end (a second each), its chunk is stored, and the
    # rows it holds go from n1's own log (all four, or three if the fourth
    # came after the chunk)
    n1_log = n1.settings["redis_prefix"] + "tsl:o:" + (n1.data_dir / "node.id").read_text().strip()
    wait_until(lambda: int(redis_cli("XLEN", n1_log)) <= 1, 10, what="n1's log trimmed")
    n2.kill9()
    n2.start()
    assert metric(n2.metrics(), "yjt_readings_replayed") == 1
    r = n2.http("GET", f"/api/v1/sensors/b1/readings?from={tb - 1000}&to={tb + 1000}",
                token=ops)
    assert r.status == 200 and [p["value"] for p in r.json["points"]] == [7.5], r


def test_readings_of_a_node_gone_for_good_are_taken_over(server):
    """A node killed with -9 that does not come back: once its hold on its
    readings log runs out (cluster_dead_s), another node takes over what it
    had acknowledged and not flushed, and stores it as its own. Each step
    of the takeover is sent without waiting: that node's loop never waits
    for Redis meanwhile."""
    ta, (n1, n2) = alarm_cluster(server, cluster_beat_s=1, cluster_dead_s=3)
    ops = n1.token("ops")
    ta.put_sensor(n1, "b1", enterprise="e2")
    ta.known_everywhere(n1, "b1")
    kb = ta.gateway_key(n1, "e2")
    t0 = ta.next_ts()
    want = []
    for i in range(5):  # five rows of n2's log, none flushed
        ts = ta.next_ts()
        r = n2.http("POST", "/api/v1/readings", headers={"X-Api-Key": kb},
                    body={"readings": [{"sensor": "b1", "value": 50 + i, "ts": ts}]})
        assert r.status == 200 and r.json["accepted"] == 1, r
        want.append(50 + i)
    waits = metric(n1.metrics(), "yjt_redis_loop_waits_total") or 0
    n2.kill9()
    wait_until(lambda: metric(n1.metrics(), "yjt_readings_adopted_total") == 5, 10,
               what="n2's readings taken over by n1")
    assert (metric(n1.metrics(), "yjt_redis_loop_waits_total") or 0) == waits
    r = n1.http("GET", f"/api/v1/sensors/b1/readings?from={t0}&to={ta.next_ts() + 1}",
                token=ops)
    assert r.status == 200 and [p["value"] for p in r.json["points"]] == want, r
    # n1's own log now holds them: they outlive n1's kill as well
    n1.kill9()
    n1.start()
    assert metric(n1.metrics(), "yjt_readings_replayed") == 5
    assert redis_cli("--scan", "--pattern", n1.settings["redis_prefix"] + "tsl:o:*").split() == [
        n1.settings["redis_prefix"] + "tsl:o:" + open(n1.data_dir / "node.id").read().strip()]


def notice_to_e1(node):
    """A notice to enterprise e1, published by gov4401 on node: its id."""
    r = node.http("POST", "/api/v1/notices", token=node.token("gov4401"),
                  body={"title": "t", "body": "b", "audience": {"type": "enterprises",
                                                                 "enterprises": ["e1"]}})
    assert r.status == 201, r
    return r.json["notice_id"]


def test_connections_gone_while_replayed_requests_wait(server):
    """A notice.read or patrol.start waits for its reads (replayed) and the
    connection's later messages wait behind it: connections that close at
    once, mid-wait, leave nothing behind (the sanitizer build checks for
    leaks at shutdown), and the nodes serve on; one that stays gets its
    answers in order."""
    n1, n2, n3 = cluster(server, users=USERS + GOV)
    nid = notice_to_e1(n1)

    async def body():
        for i in range(12):
            c = await (n1, n2, n3)[i % 3].ws_login("alice", device_id=f"gone{i}")
            for k in range(5):
                await c.send_obj({"id": k, "type": "notice.read", "notice_id": nid})
            await c.close()
            g = await (n1, n2, n3)[i % 3].ws_login("gov4401", device_id=f"g{i}")
            await g.send_obj({"id": 1, "type": "patrol.start", "enterprises": ["e1"]})
            await g.send_obj({"id": 2, "type": "ice.servers"})
            await g.close()
        a = await n2.ws_login("alice", device_id="stays")
        replies = await a.requests_at_once(*[("notice.read", {"notice_id": nid})] * 5,
                                           ("notice.get", {"notice_id": nid}))
        assert all(x["ok"] for x in replies), replies
        assert len({x["read_at"] for x in replies[:5]}) == 1, replies
        await a.close()

    run(body())
    for node in (n1, n2, n3):
        assert node.http("GET", "/healthz").status == 200


def test_messages_behind_a_waiting_request_keep_their_order_and_are_bounded(server):
    """While a notice.read waits for its reads (Redis paused, so it cannot
    be answered), the connection's next messages wait behind it: 64 of
    them, the rest answered busy at once; once Redis answers, the read is
    answered first and the 64 follow in the order sent."""
    n1, n2, n3 = cluster(server, users=USERS + GOV, rate_per_s="1000", rate_burst="1000")
    nid = notice_to_e1(n1)

    async def body():
        a = await n1.ws_login("alice", device_id="q")
        await a.ok("ping")
        a.all_messages.clear()
        redis_cli("CLIENT", "PAUSE", "1500", "ALL")
        await a.send_obj({"id": "read", "type": "notice.read", "notice_id": nid})
        for k in range(70):
            await a.send_obj({"id": k, "type": "ping"})

        def replies():
            return [m for m in a.all_messages if isinstance(m, dict) and "re" in m]
        deadline = time.monotonic() + 20
        while len(replies()) < 71:
            assert time.monotonic() < deadline, replies()
            await asyncio.sleep(0.05)
        got = replies()
        busy = [m["re"] for m in got if not m["ok"]]
        assert busy == list(range(64, 70)), busy
        assert all(m["error"]["code"] == "busy" for m in got if not m["ok"])
        order = [m["re"] for m in got if m["ok"]]
        assert order == ["read"] + list(range(64)), order
        # the busy ones were answered at once, before Redis came back
        assert [m["re"] for m in got[:6]] == list(range(64, 70)), got[:8]
        await a.close()

    run(body())


def test_an_enterprises_batches_waiting_for_the_store_are_bounded(server):
    """With Redis paused (briefly: a longer pause fails the batches), a
    gateway's batches of one enterprise wait on the node: 64 of them
    behind the one under way; more are answered 409 busy at once, and
    those that waited are all taken once Redis answers."""
    import concurrent.futures
    ta, (n1, n2) = alarm_cluster(server)
    key = ta.gateway_key(n1)
    ta.put_sensor(n1, "lt1")
    ta.post(n1, key, "lt1", 50)
    ts0 = ta.next_ts()

    def send(i):
        return n1.http("POST", "/api/v1/readings", headers={"X-Api-Key": key},
                       body={"readings": [{"sensor": "lt1", "value": 50, "ts": ts0 + i}]})

    redis_cli("CLIENT", "PAUSE", "600", "ALL")
    with concurrent.futures.ThreadPoolExecutor(80) as pool:
        got = list(pool.map(send, range(80)))
    codes = sorted(r.status for r in got)
    # their keys' reads wait too, and are answered together: a burst
    assert codes.count(200) >= 64 and codes.count(409) >= 1, codes
    assert codes.count(200) + codes.count(409) == 80, codes
    assert all(r.json["error"]["code"] == "busy" for r in got if r.status == 409)
    assert sum(r.json["accepted"] for r in got if r.status == 200) == codes.count(200)


def test_presence_requests_waiting_for_the_store_are_bounded(server):
    """A presence.query whose enterprise's division must be read first
    waits (Redis paused); the connection's presence requests behind it wait
    in order, 64 in all with it; more are answered busy at once."""
    n1, n2, n3 = cluster(server, users=USERS + GOV, rate_per_s="1000", rate_burst="1000")

    async def body():
        g = await n1.ws_login("gov4401", device_id="p")
        redis_cli("CLIENT", "PAUSE", "800", "ALL")
        for k in range(70):
            await g.send_obj({"id": k, "type": "presence.query", "enterprise": "e1"})
        deadline = time.monotonic() + 20
        while len([m for m in g.all_messages if "re" in m]) < 70:
            assert time.monotonic() < deadline, g.all_messages
            await asyncio.sleep(0.05)
        got = {m["re"]: m for m in g.all_messages if "re" in m}
        busy = sorted(k for k, m in got.items() if not m["ok"])
        assert busy == list(range(64, 70)), busy
        assert all(got[k]["error"]["code"] == "busy" for k in busy)
        assert all(len(got[k]["users"]) == 2 for k in range(64)), got[0]
        await g.close()

    run(body())
