"""Sensors and readings against the real yjtd: sensor records with checked
thresholds and jurisdiction, gateway API keys limited to their enterprise,
per-row reports for bad readings, history with downsampling, retention, and
latest values and history kept across a restart."""

import json
import math
import time

from conftest import assert_error, metric, user, wait_until

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
    srv = start(server, settings={"readings_max_rows": 50})
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
    r = srv.http("POST", "/api/v1/readings", body={"rows": []}, headers={"X-Api-Key": key})
    assert_error(r, 400, "bad_request")
    r = srv.http("POST", "/api/v1/readings", raw="{not json", headers={"X-Api-Key": key})
    assert_error(r, 400, "bad_request")
    # the server still serves
    assert post(srv, key, [{"sensor": "a1", "value": 3, "ts": t + 20}]).json["accepted"] == 1
    m = srv.metrics()
    assert metric(m, "yjt_readings_accepted_total") == 4
    assert metric(m, "yjt_readings_rejected_total", code="duplicate") == 2
