"""Sensors and readings for the tests that need a plant that reports: a
sensor record put over REST, a gateway key made with yjtctl, readings
posted as that gateway."""

import json
import time


_last = [0]


def now_ms():
    """Now in UTC ms, always later than the last call's: two readings of a
    sensor with the same ts are a duplicate."""
    _last[0] = max(int(time.time() * 1000), _last[0] + 1)
    return _last[0]


def put_sensor(srv, tok, sid, rec):
    r = srv.http("PUT", f"/api/v1/sensors/{sid}", token=tok, body=rec)
    assert r.status in (200, 201), r
    return r.json["sensor"]


def api_key(srv, enterprise):
    """A new gateway key of the enterprise (cached per server)."""
    keys = srv.__dict__.setdefault("_gateway_keys", {})
    if enterprise not in keys:
        cp = srv.ctl("apikey", "create", "--enterprise", enterprise, check=True)
        keys[enterprise] = cp.stdout.strip()
    return keys[enterprise]


def post_readings(srv, key, rows, ts=None):
    """Posts (sensor, value) rows, all stamped ts (default now), and checks
    every row was accepted; returns the report."""
    t = ts if ts is not None else now_ms()
    body = {"readings": [{"sensor": s, "value": v, "ts": t} for s, v in rows]}
    r = srv.http("POST", "/api/v1/readings", body=body, headers={"X-Api-Key": key})
    assert r.status == 200, r
    assert r.json["accepted"] == len(rows), r.json
    return r.json


def import_sensors(srv, records):
    """Writes {id: record} with yjtctl import sensors (yjtd running or not)."""
    path = srv.data_dir.parent / f"sensors-{len(records)}-{now_ms()}.json"
    path.write_text(json.dumps([dict(rec, id=sid) for sid, rec in records.items()]))
    cp = srv.ctl("import", "sensors", "--file", path, check=True)
    report = json.loads(cp.stdout)
    assert report["accepted"] == len(records), report
