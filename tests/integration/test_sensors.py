"""Sensors and readings against the real yjtd: sensor records with checked
thresholds and jurisdiction, gateway API keys limited to their enterprise,
per-row reports for bad readings, history with downsampling, retention, and
latest values and history kept across a restart."""

import json
import math
import time

from conftest import assert_error, metric, node_local, run, user, wait_until

ENTERPRISES = [
    ("e1", "Plant One", "440106"),
    ("e2", "Plant Two", "440113"),
    ("far", "Far Plant", "440305"),
]
USERS = [
    user("admin", "admin", "-"),
    user("insp", "gov", "4401"),
    user("other", "gov", "4403"),
    user("e1boss", "corp", "e1"),
    user("e2boss", "corp", "e2"),
    user("driver", "trs", "c1"),
]
CARRIERS = [("c1", "Carrier", "440106")]

TANK = {"enterprise": "e1", "kind": "level", "unit": "m",
        "thresholds": {"low_low": 0.5, "low": 1.0, "high": 8.0, "high_high": 9.0},
        "deadband": 0.1, "interrupt_after_s": 60}


def start(server, **kw):
    return server(enterprises=ENTERPRISES, users=USERS, carriers=CARRIERS, **kw)


def now_ms():
    return int(time.time() * 1000)


def new_key(srv, enterprise):
    cp = srv.ctl("apikey", "create", "--enterprise", enterprise, check=True)
    key = cp.stdout.strip()
    assert key.startswith("yjk_") and len(key) > 40, cp.stdout
    return key


def post(srv, key, rows, **kw):
    headers = {"X-Api-Key": key} if key is not None else {}
    return srv.http("POST", "/api/v1/readings", body={"readings": rows}, headers=headers, **kw)


def put_sensor(srv, tok, sid, rec):
    return srv.http("PUT", f"/api/v1/sensors/{sid}", token=tok, body=rec)


def test_sensor_records_checked_and_scoped(server):
    srv = start(server)
    admin, insp, other = srv.token("admin"), srv.token("insp"), srv.token("other")
    e1, e2, driver = srv.token("e1boss"), srv.token("e2boss"), srv.token("driver")

    r = put_sensor(srv, e1, "e1-lt-101", TANK)
    assert r.status == 201, r
    s = r.json["sensor"]
    assert s["division"] == "440106" and s["thresholds"]["high_high"] == 9.0
    assert s["interrupt_after_s"] == 60 and s["enabled"] is True
    assert put_sensor(srv, e1, "e1-lt-101", dict(TANK, unit="cm")).status == 200

    # checks: ordered thresholds, deadband, interrupt, unknown enterprise, fields
    bad = [
        dict(TANK, thresholds={"low": 5, "high": 4}),
        dict(TANK, thresholds={"high": 4, "high_high": 3.9}),
        dict(TANK, deadband=-1),
        dict(TANK, interrupt_after_s=0),
        dict(TANK, interrupt_after_s=10 ** 9),
        dict(TANK, kind=""),
        dict(TANK, unit=7),
        dict(TANK, colour="red"),
        dict(TANK, thresholds={"middle": 3}),
    ]
    for rec in bad:
        assert_error(put_sensor(srv, admin, "bad", rec), 400, "bad_request")
    assert_error(put_sensor(srv, admin, "x", dict(TANK, enterprise="nope")), 404, "not_found")
    assert_error(put_sensor(srv, admin, "x", dict(TANK, hazard="nope")), 404, "not_found")
    assert_error(put_sensor(srv, admin, "bad%21id", TANK), 400, "bad_request")

    # who may write: corp of the enterprise, gov reaching it, admin
    assert_error(put_sensor(srv, e2, "e1-x", TANK), 403, "forbidden")
    assert_error(put_sensor(srv, other, "e1-x", TANK), 403, "forbidden")
    assert_error(put_sensor(srv, driver, "e1-x", TANK), 403, "forbidden")
    assert put_sensor(srv, insp, "e1-pt-1", dict(TANK, kind="pressure", unit="MPa")).status == 201
    assert put_sensor(srv, admin, "e2-tt-1",
                      dict(TANK, enterprise="e2", kind="temperature", unit="C")).status == 201
    # a sensor cannot be moved by someone who does not reach its enterprise
    assert_error(put_sensor(srv, e2, "e1-lt-101", dict(TANK, enterprise="e2")), 403, "forbidden")

    # reads
    assert srv.http("GET", "/api/v1/sensors/e1-lt-101", token=e1).json["sensor"]["unit"] == "cm"
    assert_error(srv.http("GET", "/api/v1/sensors/e1-lt-101", token=e2), 403, "forbidden")
    assert_error(srv.http("GET", "/api/v1/sensors/nope", token=admin), 404, "not_found")
    ids = lambda tok, q="": [s["id"] for s in srv.http(
        "GET", "/api/v1/sensors" + q, token=tok).json["sensors"]]
    assert ids(e1) == ["e1-lt-101", "e1-pt-1"]
    assert ids(insp) == ["e1-lt-101", "e1-pt-1", "e2-tt-1"]
    assert ids(insp, "?enterprise=e2") == ["e2-tt-1"]
    assert ids(other) == []
    assert ids(admin, "?division=440113") == ["e2-tt-1"]
    assert_error(srv.http("GET", "/api/v1/sensors?division=4403", token=insp), 403, "forbidden")

    # delete
    assert_error(srv.http("DELETE", "/api/v1/sensors/e1-pt-1", token=e2), 403, "forbidden")
    assert srv.http("DELETE", "/api/v1/sensors/e1-pt-1", token=e1).status == 200
    assert_error(srv.http("GET", "/api/v1/sensors/e1-pt-1", token=e1), 404, "not_found")
    audit = srv.ctl("audit", "list", check=True).stdout
    assert "sensor.create" in audit and "sensor.delete" in audit


def test_gateway_key_scope_and_revocation(server):
    srv = start(server)
    admin = srv.token("admin")
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    assert put_sensor(srv, admin, "b1", dict(TANK, enterprise="e2")).status == 201
    k1, k2 = new_key(srv, "e1"), new_key(srv, "e2")
    t = now_ms()

    assert_error(post(srv, None, [{"sensor": "a1", "value": 1, "ts": t}]), 401, "unauthorized")
    assert_error(post(srv, "yjk_0000000000000000_nope", [{"sensor": "a1", "value": 1, "ts": t}]),
                 401, "unauthorized")
    # a bearer token is not a gateway key
    r = srv.http("POST", "/api/v1/readings", token=admin,
                 body={"readings": [{"sensor": "a1", "value": 1, "ts": t}]})
    assert_error(r, 401, "unauthorized")

    r = post(srv, k1, [{"sensor": "a1", "value": 2.5, "ts": t},
                       {"sensor": "b1", "value": 3.5, "ts": t}])
    assert r.status == 200, r
    assert r.json["accepted"] == 1 and r.json["rejected"] == 1
    assert r.json["errors"] == [{"index": 1, "code": "forbidden"}]
    assert post(srv, k2, [{"sensor": "b1", "value": 3.5, "ts": t}]).json["accepted"] == 1
    # a batch far over max_frame (64 KiB) but within readings_max_body
    rows = [{"sensor": "b1", "value": i / 8, "ts": t - 5000 + i} for i in range(3000)]
    assert len(json.dumps({"readings": rows})) > 150_000
    r = post(srv, k2, rows)
    assert r.status == 200 and r.json["accepted"] == 3000 and r.json["late"] == 3000, r

    s = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert s["latest"]["value"] == 2.5 and s["latest"]["ts"] == t
    s = srv.http("GET", "/api/v1/sensors/b1", token=admin).json["sensor"]
    assert s["latest"]["value"] == 3.5

    listed = [json.loads(l) for l in srv.ctl("apikey", "list", check=True).stdout.splitlines()]
    assert sorted(k["enterprise"] for k in listed) == ["e1", "e2"]
    assert all("hash" not in k for k in listed)
    assert k1 not in srv.stdout() + srv.stderr()  # never logged

    kid = k1[4:20]
    srv.ctl("apikey", "revoke", "--id", kid, check=True)
    assert_error(post(srv, k1, [{"sensor": "a1", "value": 1, "ts": t + 1}]), 401, "unauthorized")
    assert post(srv, k2, [{"sensor": "b1", "value": 4, "ts": t + 1}]).json["accepted"] == 1
    assert srv.ctl("apikey", "create", "--enterprise", "nope").returncode == 1


def test_bad_rows_reported_per_row(server):
    srv = start(server, settings={"readings_max_rows": 50, "readings_max_body": 4096})
    admin = srv.token("admin")
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    assert put_sensor(srv, admin, "off", dict(TANK, enabled=False)).status == 201
    key = new_key(srv, "e1")
    t = now_ms() - 60000
    rows = [
        {"sensor": "a1", "value": 1.0, "ts": t},              # 0 ok
        {"sensor": "ghost", "value": 1.0, "ts": t},           # 1 unknown_sensor
        {"sensor": "a1", "value": None, "ts": t + 1},         # 2 not_finite
        {"sensor": "a1", "value": "NaN", "ts": t + 2},        # 3 not_finite
        {"sensor": "a1", "value": "high", "ts": t + 3},       # 4 bad_row
        {"sensor": "a1", "value": 1.0, "ts": "yesterday"},    # 5 bad_row
        {"sensor": 17, "value": 1.0, "ts": t},                # 6 bad_row
        "not an object",                                      # 7 bad_row
        {"sensor": "a1", "value": 2.0, "ts": t + 10},         # 8 ok, latest
        {"sensor": "a1", "value": 1.5, "ts": t + 5},          # 9 out_of_order: stored late
        {"sensor": "a1", "value": 2.0, "ts": t + 10},         # 10 duplicate of 8
        {"sensor": "a1", "value": 1.0, "ts": t},              # 11 duplicate of 0 (history)
        {"sensor": "off", "value": 1.0, "ts": t},             # 12 disabled
        {"sensor": "a1", "value": 1.0, "ts": now_ms() + 3600_000},  # 13 bad_ts (future)
    ]
    r = post(srv, key, rows)
    assert r.status == 200, r
    codes = {e["index"]: e["code"] for e in r.json["errors"]}
    assert codes == {1: "unknown_sensor", 2: "not_finite", 3: "not_finite", 4: "bad_row",
                     5: "bad_row", 6: "bad_row", 7: "bad_row", 9: "out_of_order",
                     10: "duplicate", 11: "duplicate", 12: "disabled", 13: "bad_ts"}
    assert r.json["accepted"] == 3 and r.json["late"] == 1 and r.json["rejected"] == 11
    s = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert s["latest"] == {"value": 2.0, "ts": t + 10, "seen": s["latest"]["seen"]}
    hist = srv.http("GET", f"/api/v1/sensors/a1/readings?from={t}&to={t + 100}",
                    token=admin).json["points"]
    assert [(p["ts"], p["value"]) for p in hist] == [(t, 1.0), (t + 5, 1.5), (t + 10, 2.0)]

    # the whole request is refused only when it is not a batch at all
    assert_error(post(srv, key, [{"sensor": "a1", "value": 1, "ts": t}] * 51), 413, "too_large")
    # a body over readings_max_body (4 KiB here) is refused before it is parsed
    big = [{"sensor": "a1", "value": 1, "ts": t, "pad": "x" * 100}] * 45
    assert_error(post(srv, key, big), 413, "too_large")
    r = srv.http("POST", "/api/v1/readings", body={"rows": []}, headers={"X-Api-Key": key})
    assert_error(r, 400, "bad_request")
    r = srv.http("POST", "/api/v1/readings", raw="{not json", headers={"X-Api-Key": key})
    assert_error(r, 400, "bad_request")
    # the server still serves
    assert post(srv, key, [{"sensor": "a1", "value": 3, "ts": t + 20}]).json["accepted"] == 1
    m = srv.metrics()
    assert metric(m, "yjt_readings_accepted_total") == 4
    assert metric(m, "yjt_readings_rejected_total", code="duplicate") == 2


def test_history_query_and_downsampling(server):
    srv = start(server, settings={"readings_query_max_points": 50})
    admin, e2 = srv.token("admin"), srv.token("e2boss")
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    key = new_key(srv, "e1")
    t0 = (now_ms() - 3600_000) // 60000 * 60000  # a minute boundary an hour ago
    # one reading a second for 10 minutes, value = minute index + second/100
    rows = [{"sensor": "a1", "value": m + s / 100, "ts": t0 + (m * 60 + s) * 1000}
            for m in range(10) for s in range(60)]
    r = post(srv, key, rows)
    assert r.json["accepted"] == 600 and r.json["rejected"] == 0, r

    base = "/api/v1/sensors/a1/readings"
    raw = srv.http("GET", f"{base}?from={t0}&to={t0 + 30_000}", token=admin).json
    assert [p["ts"] for p in raw["points"]] == [t0 + i * 1000 for i in range(30)]
    assert raw["unit"] == "m" and "truncated" not in raw
    # a raw reply is bounded: truncated, with where to resume
    big = srv.http("GET", f"{base}?from={t0}&to={t0 + 600_000}", token=admin).json
    assert len(big["points"]) == 50 and big["truncated"] is True
    assert big["next_from"] == t0 + 50_000
    # one bucket a minute: min, max, avg, count of each
    ds = srv.http("GET", f"{base}?from={t0}&to={t0 + 600_000}&step=60000", token=admin).json
    assert ds["step"] == 60000 and len(ds["points"]) == 10
    for m, b in enumerate(ds["points"]):
        assert b["ts"] == t0 + m * 60000 and b["count"] == 60
        assert b["min"] == m and math.isclose(b["max"], m + 0.59)
        assert math.isclose(b["avg"], m + 0.295)
    # too many buckets, a backwards range, bad numbers
    assert_error(srv.http("GET", f"{base}?from={t0}&to={t0 + 600_000}&step=1000", token=admin),
                 400, "bad_request")
    assert_error(srv.http("GET", f"{base}?from={t0}&to={t0 - 1}", token=admin), 400, "bad_request")
    assert_error(srv.http("GET", f"{base}?from=yesterday", token=admin), 400, "bad_request")
    assert_error(srv.http("GET", f"{base}?from={t0}", token=e2), 403, "forbidden")
    assert_error(srv.http("GET", "/api/v1/sensors/nope/readings", token=admin), 404, "not_found")


def test_restart_keeps_latest_and_history(server):
    srv = start(server)
    admin = srv.token("admin")
    for sid in ("a1", "a2"):
        assert put_sensor(srv, admin, sid, TANK).status == 201
    key = new_key(srv, "e1")
    t = now_ms() - 10_000
    rows = [{"sensor": "a1", "value": v, "ts": t + i} for i, v in enumerate([1.0, 2.0, 3.0])]
    rows.append({"sensor": "a2", "value": 7.25, "ts": t})
    assert post(srv, key, rows).json["accepted"] == 4
    before = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]["latest"]
    srv.kill9()  # acknowledged means durable: no clean shutdown needed
    srv.start()
    admin = srv.token("admin")
    after = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert after["latest"] == before and after["latest"]["value"] == 3.0
    assert srv.http("GET", "/api/v1/sensors/a2", token=admin).json["sensor"]["latest"]["value"] \
        == 7.25
    hist = srv.http("GET", f"/api/v1/sensors/a1/readings?from={t}&to={t + 10}", token=admin).json
    assert [p["value"] for p in hist["points"]] == [1.0, 2.0, 3.0]
    # the key still works, and a reading older than the restored latest is late
    r = post(srv, key, [{"sensor": "a1", "value": 0.5, "ts": t + 1}])
    assert r.json["rejected"] == 1 and r.json["errors"][0]["code"] == "duplicate"
    r = post(srv, key, [{"sensor": "a1", "value": 0.5, "ts": t - 5}])
    assert r.json["late"] == 1 and r.json["errors"][0]["code"] == "out_of_order"
    # deleting a sensor deletes its history: a new sensor of that id starts empty
    assert srv.http("DELETE", "/api/v1/sensors/a1", token=admin).status == 200
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    s = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert "latest" not in s
    hist = srv.http("GET", f"/api/v1/sensors/a1/readings?from={t - 10}&to={t + 10}",
                    token=admin).json
    assert hist["points"] == []


def history_of(srv, tok, sid, frm, to):
    r = srv.http("GET", f"/api/v1/sensors/{sid}/readings?from={frm}&to={to}", token=tok)
    assert r.status == 200, r
    return [(p["ts"], p["value"]) for p in r.json["points"]]


def test_restart_replays_flushed_and_unflushed_points(server):
    # chunks of 3 points: a1's first three readings get flushed, the rest
    # stay in memory (and in the store's log) until the kill
    srv = start(server, settings={"readings_flush_points": 3})
    admin = srv.token("admin")
    for sid in ("a1", "a2"):
        assert put_sensor(srv, admin, sid, TANK).status == 201
    key = new_key(srv, "e1")
    t = now_ms() - 60_000
    rows = [{"sensor": "a1", "value": float(i), "ts": t + i * 1000} for i in range(3)]
    rows.append({"sensor": "a2", "value": 7.25, "ts": t})
    assert post(srv, key, rows).json["accepted"] == 4
    wait_until(lambda: metric(srv.metrics(), "yjt_readings_chunks_total") == 1, 5,
               what="a1's chunk")
    # one more in order, and one late point older than the flushed chunk
    r = post(srv, key, [{"sensor": "a1", "value": 3.0, "ts": t + 3000},
                        {"sensor": "a1", "value": -1.0, "ts": t - 5000}])
    assert r.json["accepted"] == 2 and r.json["late"] == 1
    m = srv.metrics()
    assert metric(m, "yjt_readings_buffered") == 3  # a2's, and a1's last two
    want = [(t - 5000, -1.0), (t, 0.0), (t + 1000, 1.0), (t + 2000, 2.0), (t + 3000, 3.0)]
    assert history_of(srv, admin, "a1", t - 10_000, t + 10_000) == want
    srv.kill9()

    srv.start()
    admin = srv.token("admin")
    # the unflushed points came back from the log, the flushed ones not twice
    assert metric(srv.metrics(), "yjt_readings_replayed") == 3
    assert history_of(srv, admin, "a1", t - 10_000, t + 10_000) == want
    s = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert (s["latest"]["value"], s["latest"]["ts"]) == (3.0, t + 3000)
    assert srv.http("GET", "/api/v1/sensors/a2", token=admin).json["sensor"]["latest"][
        "value"] == 7.25
    # duplicates are found in the buffer, in a stored chunk and at the latest
    for ts in (t - 5000, t + 1000, t + 3000):
        r = post(srv, key, [{"sensor": "a1", "value": 9.0, "ts": ts}])
        assert r.json["rejected"] == 1 and r.json["errors"][0]["code"] == "duplicate", ts
    # a late point inside the flushed chunk's range is kept in order
    r = post(srv, key, [{"sensor": "a1", "value": 0.5, "ts": t + 500}])
    assert r.json["late"] == 1
    want.insert(2, (t + 500, 0.5))
    assert history_of(srv, admin, "a1", t - 10_000, t + 10_000) == want
    # a raw query cut by limit resumes where it stopped, across chunk and buffer
    r = srv.http("GET", f"/api/v1/sensors/a1/readings?from={t - 10_000}&to={t + 10_000}&limit=3",
                 token=admin).json
    assert [(p["ts"], p["value"]) for p in r["points"]] == want[:3]
    assert r["truncated"] is True and r["next_from"] == want[3][0]
    srv.kill9()

    # now flush everything by age: the overlapping chunks merge on reading
    srv.settings["readings_flush_age_s"] = 1
    srv.start()
    admin = srv.token("admin")
    # At most the four unflushed points come back: on a slow machine the
    # flusher may already have written some of them (3 per chunk) before
    # the kill. Either way the history below is whole and has no point twice.
    assert 1 <= metric(srv.metrics(), "yjt_readings_replayed") <= 4
    assert history_of(srv, admin, "a1", t - 10_000, t + 10_000) == want
    wait_until(lambda: metric(srv.metrics(), "yjt_readings_buffered") == 0, 10,
               what="flush by age")
    srv.kill9()
    del srv.settings["readings_flush_age_s"]
    srv.start()
    admin = srv.token("admin")
    assert metric(srv.metrics(), "yjt_readings_replayed") == 0
    assert history_of(srv, admin, "a1", t - 10_000, t + 10_000) == want
    hist = srv.http("GET", f"/api/v1/sensors/a1/readings?from={t - 10_000}&to={t + 10_000}"
                    "&step=10000", token=admin).json
    assert sum(b["count"] for b in hist["points"]) == len(want)
    assert srv.http("GET", "/api/v1/sensors/a2", token=admin).json["sensor"]["latest"][
        "value"] == 7.25


def test_buffer_memory_cap_forces_flush(server):
    # flushing by size or age is far off; only the 1 MB cap makes it flush
    srv = start(server, settings={"readings_buffer_max_mb": 1, "readings_flush_points": 100000,
                                  "readings_flush_age_s": 86400})
    admin = srv.token("admin")
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    key = new_key(srv, "e1")
    t = now_ms() - 3600_000
    for b in range(80):  # 80,000 points of 16 bytes: over 1 MB
        rows = [{"sensor": "a1", "value": float(i % 7), "ts": t + (b * 1000 + i) * 10}
                for i in range(1000)]
        assert post(srv, key, rows).json["accepted"] == 1000
    wait_until(lambda: metric(srv.metrics(), "yjt_readings_chunks_total") >= 1, 5,
               what="a flush forced by the memory cap")
    assert metric(srv.metrics(), "yjt_readings_buffered") < 80_000
    hist = srv.http("GET", f"/api/v1/sensors/a1/readings?from={t}&to={t + 800_000}&step=100000",
                    token=admin).json
    assert sum(b["count"] for b in hist["points"]) == 80_000


def test_retention_trims_old_history(server):
    day = 86400_000
    t0 = 1_790_000_000_000  # a fixed instant; the server's clock starts there
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
    srv = start(server, settings={"readings_retention_days": 2, "test_clock": iso(t0)})
    admin = srv.token("admin")
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    key = new_key(srv, "e1")
    rows = [{"sensor": "a1", "value": float(i), "ts": t0 - i * day // 2} for i in range(4)]
    assert post(srv, key, rows).json["accepted"] == 4  # 0, 0.5, 1 and 1.5 days old
    # older than the retention period: refused
    r = post(srv, key, [{"sensor": "a1", "value": 9.0, "ts": t0 - 3 * day}])
    assert r.json["errors"] == [{"index": 0, "code": "bad_ts"}]
    srv.stop()
    # a day and a quarter later, the points more than 2 days old go
    srv.settings["test_clock"] = iso(t0 + day + day // 4)
    srv.start()
    admin = srv.token("admin")
    q = f"/api/v1/sensors/a1/readings?from={t0 - 3 * day}&to={t0 + day}"

    def kept():
        return [p["value"] for p in srv.http("GET", q, token=admin).json["points"]]
    wait_until(lambda: kept() == [1.0, 0.0], 5, what="retention trim")
    # the latest reading stays even when its history point is trimmed
    s = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert s["latest"]["value"] == 0.0


@node_local
def test_gateway_websocket_stream(server):
    srv = start(server)
    admin = srv.token("admin")
    assert put_sensor(srv, admin, "a1", TANK).status == 201
    assert put_sensor(srv, admin, "b1", dict(TANK, enterprise="e2")).status == 201
    key = new_key(srv, "e1")
    t = now_ms() - 5000

    async def body():
        gw = await srv.ws()
        # before auth.apikey: neither readings nor user messages
        r = await gw.request("readings.post", readings=[])
        assert r["ok"] is False and r["error"]["code"] == "unauthorized"
        r = await gw.request("auth.apikey", key="yjk_0123456789abcdef_wrong")
        assert r["ok"] is False and r["error"]["code"] == "unauthorized"
        assert await gw.wait_closed() == 4401

        gw = await srv.ws()
        r = await gw.ok("auth.apikey", key=key)
        assert r["role"] == "gateway" and r["enterprise"] == "e1" and r["key_id"] == key[4:20]
        r = await gw.ok("readings.post", readings=[
            {"sensor": "a1", "value": 4.5, "ts": t},
            {"sensor": "b1", "value": 1.0, "ts": t},
            {"sensor": "a1", "value": 4.0, "ts": t - 1}])
        assert r["accepted"] == 2 and r["rejected"] == 1 and r["late"] == 1
        assert r["errors"] == [{"index": 1, "code": "forbidden"},
                               {"index": 2, "code": "out_of_order"}]
        # a gateway connection is not a user: user messages are refused
        for type_ in ("ping", "presence.query", "auth.login", "auth.token"):
            r = await gw.request(type_, username="admin", password="x", token="x",
                                 device_id="d", platform="p", users=[])
            assert r["ok"] is False and r["error"]["code"] in ("forbidden", "conflict"), r
        r = await gw.request("readings.post", readings="nope")
        assert r["error"]["code"] == "bad_request"

        # a user connection cannot post readings
        user_ws = await srv.ws()
        await user_ws.login("admin")
        r = await user_ws.request("readings.post", readings=[{"sensor": "a1", "value": 1,
                                                               "ts": t + 1}])
        assert r["ok"] is False and r["error"]["code"] == "forbidden"
        await user_ws.close()

        # revoking the key ends the stream at the next batch
        srv.ctl("apikey", "revoke", "--id", key[4:20], check=True)
        r = await gw.request("readings.post", readings=[{"sensor": "a1", "value": 1,
                                                         "ts": t + 2}])
        assert r["ok"] is False and r["error"]["code"] == "unauthorized"
        assert await gw.wait_closed() == 4403

    run(body())
    s = srv.http("GET", "/api/v1/sensors/a1", token=admin).json["sensor"]
    assert s["latest"]["value"] == 4.5 and s["latest"]["ts"] == t


def test_import_sensors_with_hazard_sources(server, tmp_path):
    srv = start(server)
    admin = srv.token("admin")
    rows = [
        dict(TANK, id="imp-1"),
        dict(TANK, id="imp-2", kind="gas", unit="%LEL", thresholds={"high": 20, "high_high": 40}),
        dict(TANK, id="imp-bad", thresholds={"low": 3, "low_low": 4}),
        dict(TANK, id="imp-nope", enterprise="nope"),
        {"kind": "level"},
    ]
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps(rows))
    cp = srv.ctl("import", "sensors", "--file", path)
    assert cp.returncode == 1, cp  # some rows were refused
    rep = json.loads(cp.stdout)
    assert rep["accepted"] == 2 and rep["rejected"] == 3
    assert [(e["index"], e["code"]) for e in rep["errors"]] == [
        (2, "bad_request"), (3, "not_found"), (4, "bad_request")]
    # the running server picks the imported sensors up
    def listed():
        return [s["id"] for s in srv.http("GET", "/api/v1/sensors?enterprise=e1",
                                          token=admin).json["sensors"]]
    wait_until(lambda: listed() == ["imp-1", "imp-2"], 5, what="imported sensors")
    key = new_key(srv, "e1")
    r = post(srv, key, [{"sensor": "imp-2", "value": 12.0, "ts": now_ms()}])
    assert r.json["accepted"] == 1
    # re-importing updates in place and keeps the latest reading
    path.write_text(json.dumps([dict(rows[1], unit="ppm")]))
    srv.ctl("import", "sensors", "--file", path, check=True)
    wait_until(lambda: srv.http("GET", "/api/v1/sensors/imp-2", token=admin)
               .json["sensor"]["unit"] == "ppm", 5, what="re-import")
    s = srv.http("GET", "/api/v1/sensors/imp-2", token=admin).json["sensor"]
    assert s["latest"]["value"] == 12.0


def test_sensor_on_hazard_source_copies_level_and_park(server, tmp_path):
    from test_enterprises import RECORD, TANKS
    srv = start(server)
    admin, e1 = srv.token("admin"), srv.token("e1boss")
    # e1's approved record with one hazard source (graded level 2 by the server)
    path = tmp_path / "ent.json"
    path.write_text(json.dumps([dict(RECORD, id="e1", hazard_sources=[dict(TANKS, id="tanks")])],
                               ensure_ascii=False))
    srv.ctl("import", "enterprises", "--file", path, check=True)
    r = put_sensor(srv, e1, "e1-lt-1", dict(TANK, hazard="tanks", name="1# tank level"))
    assert r.status == 201, r
    s = r.json["sensor"]
    assert s["hazard"] == "tanks" and s["hazard_level"] == 2
    assert s["park"] == RECORD["park"] and s["name"] == "1# tank level"
    assert_error(put_sensor(srv, e1, "e1-lt-2", dict(TANK, hazard="other-source")),
                 404, "not_found")
    assert srv.http("GET", "/api/v1/sensors/e1-lt-1", token=admin).json["sensor"][
        "hazard_level"] == 2
