"""3D real-scene feeds: snapshot then coalesced deltas, scopes and their
jurisdiction, a deliberately slow subscriber that must get fewer, fuller
deltas and never a stale value or an unbounded queue."""

import asyncio
import json
import socket
import time

from conftest import metric, run, user
from sensorlib import api_key, import_sensors, post_readings
from test_enterprises import RECORD, credit_code

ENTERPRISES = [
    ("e1", "Tianhe Chemicals", "440106"),
    ("e2", "Huangpu Gas", "440113"),
    ("e3", "Futian Solvents", "440305"),
]
USERS = [
    user("admin", "admin", "-"),
    user("gov4401", "gov", "4401"),
    user("gov440106", "gov", "440106"),
    user("gov4403", "gov", "4403"),
    user("alice", "corp", "e1", position="duty"),
    user("carl", "corp", "e2", position="duty"),
]


def level_sensor(ent, **kw):
    s = {"enterprise": ent, "kind": "level", "unit": "m",
         "thresholds": {"low_low": 0.5, "low": 1.0, "high": 8.0, "high_high": 9.0},
         "deadband": 0.2, "interrupt_after_s": 600}
    s.update(kw)
    return s


def start(server, sensors=(("t1", "e1"), ("t2", "e1"), ("t3", "e1"), ("g1", "e2"),
                           ("f1", "e3")), settings=None):
    srv = server(enterprises=ENTERPRISES, users=USERS, settings=settings, start=False)
    import_sensors(srv, {sid: level_sensor(ent) for sid, ent in sensors})
    srv.start()
    return srv


async def collect_snapshot(c, feed_id, timeout=5):
    """All parts of one snapshot: (sensors by id, alarms by id, parts)."""
    sensors, alarms, parts = {}, {}, 0
    while True:
        ev = await c.next_event("feed.snapshot", timeout=timeout)
        assert ev["feed_id"] == feed_id
        assert ev["part"] == parts
        parts += 1
        for s in ev["sensors"]:
            sensors[s["id"]] = s
        for a in ev.get("alarms", []):
            alarms[a["id"]] = a
        if ev["last"]:
            return sensors, alarms, parts


def test_snapshot_then_only_what_changed(server):
    srv = start(server)
    key1 = api_key(srv, "e1")
    post_readings(srv, key1, [("t1", 3.0), ("t2", 4.0)])

    async def body():
        a = await srv.ws_login("alice", device_id="a")
        r = await a.ok("feed.subscribe", enterprise="e1", max_hz=10)
        fid = r["feed_id"]
        sensors, alarms, _ = await collect_snapshot(a, fid)
        assert set(sensors) == {"t1", "t2", "t3"}
        assert sensors["t1"]["value"] == 3.0 and sensors["t1"]["state"] == "normal"
        assert sensors["t2"]["value"] == 4.0
        assert "value" not in sensors["t3"] and sensors["t3"]["state"] == "no_data"
        assert sensors["t1"]["kind"] == "level" and sensors["t1"]["unit"] == "m"
        assert alarms == {}

        post_readings(srv, key1, [("t2", 5.5)])
        d = await a.next_event("feed.delta")
        assert d["feed_id"] == fid and d["seq"] == 1
        assert [s["id"] for s in d["sensors"]] == ["t2"]
        assert d["sensors"][0]["value"] == 5.5
        # Another plant's readings never reach this feed.
        post_readings(srv, api_key(srv, "e2"), [("g1", 2.0)])
        await a.no_event("feed.delta", within=0.5)

        await a.ok("feed.unsubscribe", feed_id=fid)
        post_readings(srv, key1, [("t1", 6.0)])
        await a.no_event("feed.delta", within=0.5)
        r = await a.request("feed.unsubscribe", feed_id=fid)
        assert r["ok"] is False and r["error"]["code"] == "not_found"
        await a.close()

    run(body())


def test_alarms_and_sensor_state_follow_the_lifecycle(server):
    srv = start(server)
    key1 = api_key(srv, "e1")
    post_readings(srv, key1, [("t1", 3.0)])

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        fid = (await g.ok("feed.subscribe", division="440106", max_hz=20))["feed_id"]
        await collect_snapshot(g, fid)
        a = await srv.ws_login("alice", device_id="a")

        seen = {}  # the regulator's view of each sensor, delta after delta

        async def until(pred):
            while True:
                d = await g.next_event("feed.delta", timeout=5)
                for x in d["sensors"]:
                    seen[x["id"]] = x
                if pred(d):
                    return d

        post_readings(srv, key1, [("t1", 8.5)])  # above high (8.0): yellow
        d = await until(lambda d: d["alarms"])
        alarm = d["alarms"][0]
        assert alarm["sensor"] == "t1" and alarm["level"] == "yellow"
        assert alarm["state"] == "raised"
        t1 = [s for s in d["sensors"] if s["id"] == "t1"][0]
        assert t1["state"] == "alarm" and t1["level"] == "yellow" and t1["value"] == 8.5

        post_readings(srv, key1, [("t1", 9.5)])  # above high-high: upgraded
        d = await until(lambda d: d["alarms"])
        assert d["alarms"][0]["id"] == alarm["id"] and d["alarms"][0]["level"] == "orange"

        await a.ok("alarm.ack", alarm_id=alarm["id"])
        d = await until(lambda d: d["alarms"])
        assert d["alarms"][0]["state"] == "acknowledged"
        # A late subscriber's snapshot has the open alarm and the state.
        fid2 = (await a.ok("feed.subscribe", enterprise="e1"))["feed_id"]
        sensors, alarms, _ = await collect_snapshot(a, fid2)
        assert list(alarms) == [alarm["id"]] and alarms[alarm["id"]]["state"] == "acknowledged"
        assert sensors["t1"]["state"] == "alarm" and sensors["t1"]["level"] == "orange"

        post_readings(srv, key1, [("t1", 5.0)])  # back inside: cleared, still open
        await a.ok("alarm.feedback", alarm_id=alarm["id"], found="level switch stuck",
                   done="switch replaced")
        await a.ok("alarm.close", alarm_id=alarm["id"])
        d = await until(lambda d: any(x.get("state") == "closed" for x in d["alarms"]))
        assert d["alarms"] == [{"id": alarm["id"], "state": "closed"}]
        assert seen["t1"]["state"] == "normal" and "level" not in seen["t1"]
        assert seen["t1"]["value"] == 5.0
        for x in (g, a):
            await x.close()

    run(body())


def test_deltas_are_coalesced_to_max_hz_and_end_on_the_latest_value(server):
    srv = start(server)
    key1 = api_key(srv, "e1")

    async def body():
        a = await srv.ws_login("alice", device_id="a")
        fid = (await a.ok("feed.subscribe", enterprise="e1", max_hz=2))["feed_id"]
        await collect_snapshot(a, fid)
        latest, deltas = {}, []

        async def consume():
            while True:
                d = await a.next_event("feed.delta", timeout=30)
                deltas.append((time.monotonic(), d))
                for s in d["sensors"]:
                    latest[s["id"]] = s["value"]

        consumer = asyncio.get_running_loop().create_task(consume())
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 2.0:
            n += 1
            # Posted from a thread, so the consumer keeps timing arrivals.
            await asyncio.to_thread(post_readings, srv, key1,
                                    [("t1", 2.0 + n / 1000), ("t3", 1.5 + n / 1000)])
            await asyncio.sleep(0.02)
        last = 2.0 + n / 1000
        deadline = time.monotonic() + 3
        while latest.get("t1") != last and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        consumer.cancel()
        assert latest["t1"] == last and latest["t3"] == 1.5 + n / 1000
        # 2 Hz over about 2.5 s: a handful of deltas for dozens of changes,
        # never two closer than the 500 ms the subscriber asked for.
        assert n >= 20
        assert 3 <= len(deltas) <= 7, len(deltas)
        gaps = [b[0] - a_[0] for a_, b in zip(deltas, deltas[1:])]
        assert all(g > 0.35 for g in gaps), gaps
        assert [d["seq"] for _, d in deltas] == list(range(1, len(deltas) + 1))
        await a.close()

    run(body())


def test_scopes_and_jurisdiction(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        fid = (await g.ok("feed.subscribe", division="4401"))["feed_id"]
        sensors, _, _ = await collect_snapshot(g, fid)
        assert set(sensors) == {"t1", "t2", "t3", "g1"}  # not f1 (4403)
        fid2 = (await g.ok("feed.subscribe", division="440113"))["feed_id"]
        sensors, _, _ = await collect_snapshot(g, fid2)
        assert set(sensors) == {"g1"}

        d = await srv.ws_login("gov440106", device_id="d")
        for req, code in [({"division": "4401"}, "forbidden"),
                          ({"division": "4403"}, "forbidden"),
                          ({"enterprise": "e2"}, "forbidden"),
                          ({"enterprise": "nope"}, "not_found"),
                          ({"division": "44x"}, "bad_request"),
                          ({}, "bad_request"),
                          ({"enterprise": "e1", "division": "4401"}, "bad_request"),
                          ({"enterprise": 7}, "bad_request"),
                          ({"enterprise": "e1", "max_hz": 1000}, "bad_request"),
                          ({"enterprise": "e1", "max_hz": "fast"}, "bad_request"),
                          ({"park": "p1"}, None)]:
            r = await d.request("feed.subscribe", **req)
            if code is None:
                assert r["ok"] is True, r
            else:
                assert r["ok"] is False and r["error"]["code"] == code, (req, r)
        assert (await d.ok("feed.subscribe", enterprise="e1"))["feed_id"]

        c = await srv.ws_login("carl", device_id="c")
        for req in ({"enterprise": "e1"}, {"division": "4401"}, {"park": "p1"}):
            r = await c.request("feed.subscribe", **req)
            assert r["ok"] is False and r["error"]["code"] == "forbidden", (req, r)
        fid3 = (await c.ok("feed.subscribe", enterprise="e2"))["feed_id"]
        sensors, _, _ = await collect_snapshot(c, fid3)
        assert set(sensors) == {"g1"}
        for x in (g, d, c):
            await x.close()

    run(body())


def test_park_feed_carries_only_the_plants_in_reach(server):
    srv = server(users=[u for u in USERS if u["role"] == "gov"], start=False)
    rows = [dict(RECORD, id=eid, name=name, division=div, park="Nansha Chemical Park",
                 credit_code=credit_code(f"9144{n:02d}06MA59XK3Q7"))
            for n, (eid, name, div) in enumerate(ENTERPRISES)]
    path = srv.data_dir.parent / "park.json"
    path.write_text(json.dumps(rows, ensure_ascii=False))
    assert json.loads(srv.ctl("import", "enterprises", "--file", path,
                              check=True).stdout)["accepted"] == 3
    import_sensors(srv, {"t1": level_sensor("e1"), "g1": level_sensor("e2"),
                         "f1": level_sensor("e3")})
    srv.start()

    async def body():
        wide = await srv.ws_login("gov4401", device_id="w")
        narrow = await srv.ws_login("gov440106", device_id="n")
        fw = (await wide.ok("feed.subscribe", park="Nansha Chemical Park", max_hz=20))
        fn = (await narrow.ok("feed.subscribe", park="Nansha Chemical Park", max_hz=20))
        sensors, _, _ = await collect_snapshot(wide, fw["feed_id"])
        assert set(sensors) == {"t1", "g1"}
        sensors, _, _ = await collect_snapshot(narrow, fn["feed_id"])
        assert set(sensors) == {"t1"}
        post_readings(srv, api_key(srv, "e2"), [("g1", 4.0)])
        d = await wide.next_event("feed.delta")
        assert [x["id"] for x in d["sensors"]] == ["g1"]
        await narrow.no_event("feed.delta", within=0.5)
        post_readings(srv, api_key(srv, "e1"), [("t1", 4.0)])
        d = await narrow.next_event("feed.delta")
        assert [x["id"] for x in d["sensors"]] == ["t1"]
        for x in (wide, narrow):
            await x.close()

    run(body())


def test_limits_per_connection_and_scope_size(server):
    srv = start(server, settings={"feed_subs_per_conn": 2, "feed_max_sensors": 3})

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        r = await g.request("feed.subscribe", division="4401")  # 4 sensors > 3
        assert r["ok"] is False and r["error"]["code"] == "too_large"
        await g.ok("feed.subscribe", enterprise="e1")
        await g.ok("feed.subscribe", enterprise="e2")
        r = await g.request("feed.subscribe", enterprise="e1")
        assert r["ok"] is False and r["error"]["code"] == "busy"
        await g.close()

    run(body())


def test_snapshot_comes_in_parts(server):
    sensors = [(f"s{i:03d}", "e1") for i in range(25)]
    srv = start(server, sensors=sensors, settings={"feed_part_items": 10})
    # Inside every threshold: no alarm, so the parts carry sensors only.
    post_readings(srv, api_key(srv, "e1"), [(sid, 2.0 + i / 10) for i, (sid, _) in
                                             enumerate(sensors)])

    async def body():
        a = await srv.ws_login("alice", device_id="a")
        fid = (await a.ok("feed.subscribe", enterprise="e1"))["feed_id"]
        got, _, parts = await collect_snapshot(a, fid)
        assert parts == 3
        assert {k: v["value"] for k, v in got.items()} == {
            sid: 2.0 + i / 10 for i, (sid, _) in enumerate(sensors)}
        await a.close()

    run(body())


def test_snapshot_parts_carry_the_open_alarms_too(server):
    """Open alarms follow the sensors in parts of the same size, so no
    snapshot message grows with the number of open alarms."""
    sensors = [(f"s{i:03d}", "e1") for i in range(25)]
    srv = start(server, sensors=sensors, settings={"feed_part_items": 10})
    post_readings(srv, api_key(srv, "e1"), [(sid, 8.5) for sid, _ in sensors])  # all high

    async def body():
        a = await srv.ws_login("alice", device_id="a")
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # the alarms are raised as the readings are taken in
            fid = (await a.ok("feed.subscribe", enterprise="e1"))["feed_id"]
            parts = []
            while True:
                ev = await a.next_event("feed.snapshot", timeout=5)
                assert ev["feed_id"] == fid and ev["part"] == len(parts)
                parts.append(ev)
                if ev["last"]:
                    break
            await a.ok("feed.unsubscribe", feed_id=fid)
            alarms = [x for p in parts for x in p["alarms"]]
            if len(alarms) == 25 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(alarms) == 25
        assert {x["sensor"] for x in alarms} == {sid for sid, _ in sensors}
        assert len({x["id"] for x in alarms}) == 25  # each once
        for p in parts:
            assert len(p["sensors"]) + len(p["alarms"]) <= 10
        assert len(parts) == 5  # 25 sensors, then 25 alarms, 10 a part
        assert all(x["state"] == "alarm" for p in parts for x in p["sensors"])
        await a.close()

    run(body())


def test_slow_subscriber_gets_fewer_fuller_deltas(server):
    n = 2000
    sensors = [(f"s{i:04d}", "e1") for i in range(n)]
    # The slow client answers no pings while it does not read: keep the
    # keep-alive out of the way (on a slow machine this test takes a while).
    srv = start(server, sensors=sensors, settings={"ping_interval_s": 600})
    key1 = api_key(srv, "e1")

    def value(r, i):  # distinct per round and sensor, inside every threshold
        return 2.0 + r / 20 + i / 10000

    async def body():
        fast = await srv.ws_login("gov440106", device_id="fast")
        ffid = (await fast.ok("feed.subscribe", enterprise="e1", max_hz=20))["feed_id"]
        await collect_snapshot(fast, ffid)

        # A tiny receive buffer (which also stops the kernel growing it), so
        # the server's queue for this connection grows once it stops reading.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        slow = await srv.ws(sock=sock, max_queue=1, read_limit=4096)
        await slow.login("alice", device_id="slow")
        sfid = (await slow.ok("feed.subscribe", enterprise="e1", max_hz=20))["feed_id"]
        await collect_snapshot(slow, sfid)
        # Stop reading.
        slow.pause()

        rounds = 60  # about 12 MB of changes for each subscriber at 20 Hz
        for r in range(rounds):
            post_readings(srv, key1, [(sid, value(r, i)) for i, (sid, _) in
                                      enumerate(sensors)])
            await asyncio.sleep(0.03)
        final = {sid: value(rounds - 1, i) for i, (sid, _) in enumerate(sensors)}

        # The fast subscriber follows along.
        seen = {}
        while seen != final:
            d = await fast.next_event("feed.delta", timeout=5)
            for s in d["sensors"]:
                seen[s["id"]] = s["value"]

        assert metric(srv.metrics(), "yjt_feed_skipped_slow_total") > 0
        slow.resume()
        seen = {}
        deltas = 0
        while seen != final:
            d = await slow.next_event("feed.delta", timeout=10)
            deltas += 1
            for s in d["sensors"]:
                seen[s["id"]] = s["value"]
        assert not slow.is_closed, "the slow subscriber was dropped"
        # Far fewer deltas than the fast one got, each fuller.
        assert deltas < rounds, deltas
        await slow.no_event("feed.delta", within=0.5)
        for x in (fast, slow):
            await x.close()

    run(body(), timeout=120)

