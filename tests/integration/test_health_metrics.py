"""Health check, Prometheus metrics, start-up options and the config file."""

import json
import os
import time

import pytest

from conftest import (REDIS_URL, sqlite_only, DEFAULT_PASSWORD, assert_error, free_port, http_request, metric,
                      parse_metrics, run, run_refused, user, wait_until)

CORP = [("e1", "Acme Chemicals", "440106")]
USERS = [user("alice", "corp", "e1"), user("gina", "gov", "4401")]


def test_healthz_answers_ok(server):
    srv = server()
    r = srv.http("GET", "/healthz")
    assert r.status == 200
    assert r.json == {"status": "ok"}


def test_unknown_route_is_404_not_found(server):
    srv = server()
    r = srv.http("GET", "/no/such/thing")
    assert_error(r, 404, "not_found")
    r = srv.http("GET", "/api/v1/nope")
    assert_error(r, 404, "not_found")


def test_metrics_exposes_required_families(server):
    srv = server()
    r = srv.http("GET", "/metrics")
    assert r.status == 200
    ctype = {k.lower(): v for k, v in r.headers.items()}.get("content-type", "")
    assert ctype.startswith("text/plain"), r.headers
    samples = parse_metrics(r.text)
    for role in ("gov", "corp", "trs", "none"):
        assert metric(samples, "yjt_connections", role=role) is not None, \
            f'yjt_connections{{role="{role}"}} missing'
    names = {name for (name, _labels) in samples}
    for fam in ("yjt_store_latency_seconds_bucket", "yjt_store_latency_seconds_sum",
                "yjt_store_latency_seconds_count"):
        assert fam in names, f"{fam} missing from /metrics"
    buckets = [dict(lbl) for (name, lbl) in samples if name == "yjt_store_latency_seconds_bucket"]
    assert any(b.get("le") == "+Inf" for b in buckets), "histogram needs an le=\"+Inf\" bucket"
    for res in ("ok", "failed", "locked"):
        assert metric(samples, "yjt_logins_total", result=res) is not None, \
            f'yjt_logins_total{{result="{res}"}} missing'


def test_metrics_count_logins_messages_errors_and_connections(server):
    srv = server(enterprises=CORP, users=USERS)
    before = srv.metrics()

    assert srv.login("alice").status == 200
    assert srv.login("alice", "wrong-password").status == 401

    async def body():
        c = await srv.ws_login("alice", device_id="m1")
        for _ in range(3):
            await c.ok("ping")
        await c.send_raw("{not json")
        bad = await c.next_unmatched()
        assert bad["error"]["code"] == "bad_request"

        during = srv.metrics()
        assert metric(during, "yjt_connections", role="corp") == 1, \
            "one authenticated corp connection should be counted"
        await c.close()
        # The count returns to 0 once the server has seen the close.
        wait_until(lambda: metric(srv.metrics(), "yjt_connections", role="corp") == 0, 5,
                   what='yjt_connections{role="corp"} back to 0')

    run(body())
    after = srv.metrics()

    def delta(name, **lbl):
        return (metric(after, name, **lbl) or 0) - (metric(before, name, **lbl) or 0)

    assert delta("yjt_logins_total", result="ok") >= 2  # REST + WS
    assert delta("yjt_logins_total", result="failed") >= 1
    assert delta("yjt_messages_in_total", type="ping") >= 3
    assert delta("yjt_messages_out_total") >= 5  # 1 login + 3 ping replies + 1 error
    assert delta("yjt_errors_total", code="bad_request") >= 1
    assert delta("yjt_store_latency_seconds_count") > 0, "logins must touch the store"
    assert (metric(after, "yjt_store_latency_seconds_sum") or 0) >= 0
    # Logins write (sessions, audit): each reply waited for a flush.
    if not REDIS_URL:  # Redis stores each write as it comes: nothing to flush
        assert delta("yjt_store_flush_seconds_count") > 0, "writes must be flushed"
    # SQLite has no Redis to wait for (on Redis, see the test below).
    if not REDIS_URL:
        assert metric(after, "yjt_redis_loop_waits_total") == 0
    # Every reply above came out of some turn of the main loop.
    assert delta("yjt_loop_turn_seconds_count") > 0
    inf = metric(after, "yjt_loop_turn_seconds_bucket", le="+Inf")
    assert inf == metric(after, "yjt_loop_turn_seconds_count"), "buckets are cumulative"


def test_logins_tokens_notices_and_acks_do_not_hold_the_loop(server):
    """On Redis a node reads what logins, token checks, a connection's
    start, notices, push.ack and push.resume need without waiting on its
    event loop (the reads
    are sent, and the request goes on when they are answered): the loop
    waits counted in /metrics stay put while they run. (Before, each
    password login waited about six times, each WebSocket login eight,
    each notice two.)"""
    import test_notices as tn
    srv = server(enterprises=tn.ENTERPRISES, users=tn.USERS)
    before = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    tokens = [srv.token("alice", device_id=f"r{i}") for i in range(5)]
    for t in tokens:
        assert srv.http("GET", "/api/v1/me", token=t).status == 200
    assert srv.login("alice", "wrong-password").status == 401
    gov = srv.token("gov4401")
    r = srv.http("POST", "/api/v1/notices", token=gov,
                 body=dict(tn.NOTICE, audience={"type": "enterprises", "enterprises": ["e1"]}))
    assert r.status == 201 and r.json["recipients"] == 2, r

    async def body():
        a = await srv.ws_login("amy", device_id="w1")
        g = await srv.ws_login("gov4401", device_id="g")
        b = await srv.ws()
        await b.ok("auth.token", token=tokens[0], device_id="t1")
        r = await g.ok("notice.publish", audience={"type": "division", "division": "4401"},
                       **tn.NOTICE)
        assert r["recipients"] == 3
        r = await g.ok("notice.publish", audience={"type": "gov"}, **tn.NOTICE)
        assert r["recipients"] == 2
        ev = await a.next_event("push")
        assert ev["kind"] == "notice"
        r = await a.ok("push.ack", seq=ev["seq"])
        assert r["acked"] == ev["seq"]
        r = await a.ok("push.resume", after_seq=0)
        assert r["last_seq"] == r["head"] == ev["seq"] and r["more"] is False
        r = await a.ok("push.resume")  # from the device's acknowledged position
        assert r["last_seq"] == ev["seq"]
        r = await a.request("push.ack", seq=ev["seq"] + 5)
        assert r["error"]["code"] == "bad_request", r
        for c in (a, g, b):
            await c.close()

    run(body())
    after = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    assert after - before == 0, (before, after)


def test_rest_reads_do_not_hold_the_loop(server):
    """On Redis a REST GET is run against the answers of its reads, sent
    without waiting, rather than waiting on the event loop
    (records/store_replay.h): the loop waits counted in /metrics stay put
    while every GET route answers, once and many at a time, and many at
    once answer as one at a time does. On SQLite the routes answer as ever
    and nothing is replayed."""
    import concurrent.futures
    import test_notices as tn
    srv = server(enterprises=tn.ENTERPRISES, users=tn.USERS)
    gov = srv.token("gov4401")
    alice = srv.token("alice")
    r = srv.http("POST", "/api/v1/notices", token=gov,
                 body=dict(tn.NOTICE, audience={"type": "enterprises", "enterprises": ["e1"]}))
    assert r.status == 201, r
    nid = r.json["notice_id"]
    gets = [(gov, "/api/v1/enterprises"), (gov, "/api/v1/enterprises/e1"),
            (gov, "/api/v1/enterprises/e1/history"), (gov, "/api/v1/enterprises/e1/hazard-sources"),
            (gov, "/api/v1/alarms"), (gov, "/api/v1/alarms/stats"), (gov, "/api/v1/downtimes"),
            (gov, "/api/v1/calls"), (gov, "/api/v1/patrols"), (gov, "/api/v1/patrols/coverage"),
            (gov, "/api/v1/commitments"), (gov, f"/api/v1/notices/{nid}"),
            (gov, f"/api/v1/notices/{nid}/receipts"), (gov, "/api/v1/sensors"),
            (gov, "/api/v1/self-evaluations"), (alice, "/api/v1/inbox"), (alice, "/api/v1/me"),
            (gov, "/api/v1/enterprises/nobody"), (alice, "/api/v1/enterprises/e2")]
    samples = srv.metrics()
    before = metric(samples, "yjt_redis_loop_waits_total") or 0
    replayed = metric(samples, "yjt_store_replay_reads_total") or 0
    one_by_one = {}
    for tok, path in gets:
        r = srv.http("GET", path, token=tok)
        assert r.status in (200, 403, 404), (path, r)
        one_by_one[path] = (r.status, r.json)
    assert one_by_one["/api/v1/enterprises/nobody"][0] == 404
    assert one_by_one["/api/v1/enterprises/e2"][0] == 403
    assert one_by_one["/api/v1/enterprises/e1"][0] == 200
    assert one_by_one[f"/api/v1/notices/{nid}/receipts"][0] == 200

    def get(item):
        tok, path = item
        r = srv.http("GET", path, token=tok)
        return path, r.status, r.json

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for path, status, body in pool.map(get, gets * 4):
            assert (status, body) == one_by_one[path], path
    samples = srv.metrics()
    after = metric(samples, "yjt_redis_loop_waits_total") or 0
    assert after - before == 0, (before, after)
    reads = (metric(samples, "yjt_store_replay_reads_total") or 0) - replayed
    if REDIS_URL:
        assert reads >= len(gets), reads
    else:
        assert reads == 0


def test_metrics_count_unauthenticated_connections_as_none(server):
    srv = server()

    async def body():
        c = await srv.ws()
        wait_until(lambda: (metric(srv.metrics(), "yjt_connections", role="none") or 0) >= 1,
                   5, what='yjt_connections{role="none"} >= 1')
        await c.close()
        wait_until(lambda: metric(srv.metrics(), "yjt_connections", role="none") == 0, 5,
                   what='yjt_connections{role="none"} back to 0')

    run(body())


@sqlite_only
def test_config_file_is_read_and_command_line_wins(server, tmp_path):
    import subprocess
    from conftest import YJTCTL
    file_port = free_port()
    cli_port = free_port()
    data = tmp_path / "cfgdata"
    data.mkdir()
    for args in (["enterprise", "add", "--id", "e1", "--name", "Acme", "--division", "440106"],
                 ["user", "add", "--username", "alice", "--password", DEFAULT_PASSWORD,
                  "--role", "corp", "--org", "e1"]):
        cp = subprocess.run([YJTCTL, "--data-dir", str(data)] + args, capture_output=True,
                            text=True, timeout=60,
                            env=dict(os.environ, YJT_HASH_ITERATIONS="1000"))
        assert cp.returncode == 0, cp.stderr
    config = (
        "# yjtd test configuration\n"
        "[yjtd]\n"
        f"listen = 127.0.0.1:{file_port}\n"
        f"data_dir = {data}\n"
        "max_frame = 1024\n"
        "hash_iterations = 1000\n"
    )
    # No --data-dir on the command line: the file's data_dir is used. The
    # file's listen address loses to --listen.
    srv = server(start=False, config_text=config, cli_listen=False,
                 extra_args=["--listen", f"127.0.0.1:{cli_port}"], port=cli_port)
    srv.start()
    with pytest.raises(OSError):
        http_request(file_port, "GET", "/healthz", timeout=1)

    r = srv.login("alice")
    assert r.status == 200, f"data_dir from the config file was not used: {r!r}"

    async def body():
        c = await srv.ws()
        # max_frame = 1024 from the file
        await c.send_raw(json.dumps({"id": 1, "type": "ping", "pad": "x" * 2000}))
        code = await c.wait_closed(5)
        assert code == 1009, f"max_frame from the config file not applied (close {code})"

    run(body())


def test_set_overrides_config_file(server):
    cfg = "[yjtd]\ntoken_ttl_s = 60\n"
    srv = server(enterprises=CORP, users=USERS, config_text=cfg,
                 settings={"token_ttl_s": "7200"})
    now = time.time()
    exp = srv.login("alice").json["expires_at"]
    secs = exp / 1000 if exp > 1e11 else exp
    assert abs(secs - (now + 7200)) < 60, \
        f"--set token_ttl_s=7200 must win over the file's 60 (expires_at {exp})"


def test_config_value_out_of_range_is_refused(server, tmp_path):
    import subprocess
    from conftest import YJTD
    cp = subprocess.run([YJTD, "--listen", f"127.0.0.1:{free_port()}", "--data-dir",
                         str(tmp_path), "--set", "max_frame=banana"],
                        capture_output=True, text=True, timeout=10)
    assert cp.returncode != 0 and "max_frame" in cp.stderr, cp


def test_log_level_option_accepted(server):
    srv = server(extra_args=["--log-level", "debug"])
    assert srv.http("GET", "/healthz").status == 200
    srv.stop()
    srv.extra_args = ["--log-level", "error"]
    srv.start()
    assert srv.http("GET", "/healthz").status == 200


def test_unknown_option_is_refused(tmp_path):
    rc, err = run_refused(["--listen", f"127.0.0.1:{free_port()}", "--data-dir", tmp_path,
                           "--no-such-option"], 5, "yjtd kept running with an unknown option")
    assert rc != 0, "an unknown option must make yjtd exit with an error"
    assert err.strip(), "and say why on stderr"


def test_a_taken_port_stops_yjtd(tmp_path):
    """yjtd that cannot listen says so and exits, rather than run deaf."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        rc, err = run_refused(["--listen", f"127.0.0.1:{port}", "--data-dir", tmp_path], 15,
                              "yjtd kept running without its port")
    assert rc != 0, err
    assert f"cannot listen on 127.0.0.1:{port}" in err, err


def test_notice_reads_and_patrols_do_not_hold_the_loop(server):
    """notice.read, notice.get, patrol.start and patrol.finish on WebSocket
    run against a replay of their reads, as REST GETs do: on Redis no
    node's loop waits while they run, a connection's requests sent together
    are answered as one at a time would be (a notice read twice at once is
    read once, a patrol finished twice at once is finished once, a message
    behind a request waiting for its reads waits too), and on SQLite
    nothing is replayed."""
    import test_notices as tn
    srv = server(enterprises=tn.ENTERPRISES, users=tn.USERS)
    nodes = [srv] + srv.peers

    def total(name):
        return sum(metric(n.metrics(), name) or 0 for n in nodes)

    r = srv.http("POST", "/api/v1/notices", token=srv.token("gov4401"),
                 body=dict(tn.NOTICE, audience={"type": "enterprises", "enterprises": ["e1"]}))
    assert r.status == 201, r
    nid = r.json["notice_id"]
    before, replayed = total("yjt_redis_loop_waits_total"), total("yjt_store_replay_reads_total")

    async def body():
        a = await srv.ws_login("alice", device_id="a1")
        g = await srv.ws_login("gov4401", device_id="g1")
        for c in (a, g):
            await c.ok("ice.servers")  # each connection's own reads are done
        r1, r2, whole, unknown, other, ice = await a.requests_at_once(
            ("notice.read", {"notice_id": nid}), ("notice.read", {"notice_id": nid}),
            ("notice.get", {"notice_id": nid}), ("notice.read", {"notice_id": "n-unknown"}),
            ("notice.get", {"notice_id": nid + "x"}), ("ice.servers", {}))
        assert r1["ok"] and r2["ok"] and r1["read_at"] == r2["read_at"], (r1, r2)
        assert whole["ok"] and whole["title"] == tn.NOTICE["title"], whole
        assert unknown["error"]["code"] == "not_found" and other["error"]["code"] == "not_found"
        assert ice["ok"], ice
        p1, p2, p3 = await g.requests_at_once(
            ("patrol.start", {"enterprises": ["e1", "e2"]}),
            ("patrol.start", {"enterprises": ["e3"]}), ("patrol.start", {"enterprises": ["e2"]}))
        assert [i["enterprise"] for i in p1["items"]] == ["e1", "e2"], p1
        assert p2["error"]["code"] == "forbidden", p2
        assert p3["ok"] and p3["patrol_id"] != p1["patrol_id"], p3
        # a finish reads its patrol and the patrol's calls for its report
        f1, f2 = await g.requests_at_once(("patrol.finish", {"patrol_id": p1["patrol_id"]}),
                                          ("patrol.finish", {"patrol_id": p1["patrol_id"]}))
        assert f1["report"]["status"] == "finished", f1
        assert f1["report"]["totals"]["enterprises"] == 2, f1
        assert f2["error"]["code"] == "conflict", f2  # the first one's write seen
        # what does not exist is found so without a read on the loop: an
        # organisation (a presence query, a feed) and a patrol (an invite)
        for t, kw in (("presence.query", {"enterprise": "no-such-ent"}),
                      ("feed.subscribe", {"enterprise": "no-such-ent"}),
                      ("call.invite", {"to": {"enterprise": "e1"}, "sdp": "v=0\r\n",
                                       "patrol_id": "p_nope"})):
            r = await g.request(t, **kw)
            assert r["ok"] is False and r["error"]["code"] == "not_found", (t, r)
        for c in (a, g):
            await c.close()

    run(body())
    assert total("yjt_redis_loop_waits_total") - before == 0
    reads = total("yjt_store_replay_reads_total") - replayed
    if REDIS_URL:
        assert reads >= 3, reads
    else:
        assert reads == 0
    r = srv.http("GET", "/api/v1/patrols", token=srv.token("gov4401"))
    assert r.status == 200 and len(r.json["patrols"]) == 2, r


def test_rest_writes_that_read_first_do_not_hold_the_loop(server):
    """A write whose reads come first (a sensor's record and a new one's
    key, an enterprise's draft) is run against a replay of its reads as a GET is: on Redis the
    loop waits stay put while they are written, and the writes are made
    once (a run that lacked a read wrote nothing)."""
    import test_notices as tn
    from test_sensors import TANK
    srv = server(enterprises=tn.ENTERPRISES, users=tn.USERS)
    gov, alice = srv.token("gov4401"), srv.token("alice")
    before = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    # a new sensor's key is counted as the request's reads are made
    r = srv.http("PUT", "/api/v1/sensors/lt1", token=gov, body=dict(TANK, enterprise="e1"))
    assert r.status == 201, r
    r = srv.http("PUT", "/api/v1/sensors/lt2", token=gov, body=dict(TANK, enterprise="e1"))
    assert r.status == 201, r
    for unit in ("cm", "mm"):
        r = srv.http("PUT", "/api/v1/sensors/lt1", token=gov,
                     body=dict(TANK, enterprise="e1", unit=unit))
        assert r.status == 200 and r.json["sensor"]["unit"] == unit, r
    after = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    assert after - before == 0, (before, after)
    # the draft's reads are replayed; the record's status is written as
    # read (its credit code, a unique index, unchanged): no wait either
    r = srv.http("PUT", "/api/v1/enterprises/e1", token=alice, body={"address": "1 Harbour Road"})
    assert r.status == 200 and r.json["draft"]["status"] == "draft", r
    edit = (metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0) - after
    assert edit == 0, edit
    s = srv.http("GET", "/api/v1/sensors/lt1", token=gov).json["sensor"]
    assert s["unit"] == "mm" and s["version"] == 3, s
    h = srv.http("GET", "/api/v1/enterprises/e1", token=gov)
    assert h.status == 200, h
    # a hazard source written to the open draft and deleted again
    from test_enterprises import TANKS
    before = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    r = srv.http("PUT", "/api/v1/enterprises/e1/hazard-sources/tanks", token=alice, body=TANKS)
    assert r.status == 200 and r.json["hazard_source"]["id"] == "tanks", r
    r = srv.http("DELETE", "/api/v1/enterprises/e1/hazard-sources/tanks", token=alice)
    assert r.status == 200, r
    after = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    assert after - before == 0, (before, after)
    # a downtime declared (a record under a new id) and ended
    before = after
    assert_error(srv.http("DELETE", "/api/v1/enterprises/e1/hazard-sources/tanks", token=alice),
                 404, "not_found")
    until = int(time.time() * 1000) + 3600_000
    r = srv.http("POST", "/api/v1/downtimes", token=alice, body={"reason": "检修", "until": until})
    assert r.status == 201 and r.json["downtime"]["enterprise"] == "e1", r
    dt = r.json["downtime"]["id"]
    r = srv.http("POST", f"/api/v1/downtimes/{dt}/end", token=alice, raw="{}")
    assert r.status == 200 and r.json["downtime"]["ended_by"] == srv.users["alice"], r
    assert_error(srv.http("POST", f"/api/v1/downtimes/{dt}/end", token=alice, raw="{}"),
                 409, "conflict")
    r = srv.http("GET", "/api/v1/downtimes", token=gov)
    assert [d["id"] for d in r.json["downtimes"]] == [dt], r
    after = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    assert after - before == 0, (before, after)
    # an import (a new record and an update), a review's approval (its new
    # credit code looked up in the index, the write not waited for) and a
    # sensor's deletion
    from test_enterprises import CSV_HEADER, credit_code, csv_row
    carl = srv.token("carl")
    before = after
    data = (CSV_HEADER + csv_row("n1", credit_code("91440106MA5AAAAA1"), "440106")
            + csv_row("e2", credit_code("91440113MA5AAAAA2"), "440113"))
    r = srv.http("POST", "/api/v1/enterprises/import", token=gov,
                 body={"format": "csv", "data": data})
    assert r.status == 200 and r.json["accepted"] == 2, r
    code = credit_code("91440113MA5AAAAA3")
    r = srv.http("PUT", "/api/v1/enterprises/e2", token=carl, body={"credit_code": code})
    assert r.status == 200, r
    assert srv.http("POST", "/api/v1/enterprises/e2/submit", token=carl, raw="{}").status == 200
    r = srv.http("POST", "/api/v1/enterprises/e2/review", token=gov, body={"decision": "approve"})
    assert r.status == 200 and r.json["enterprise"]["credit_code"] == code, r
    r = srv.http("DELETE", "/api/v1/sensors/lt2", token=gov)
    assert r.status == 200, r
    after = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    assert after - before == 0, (before, after)
    assert srv.http("GET", "/api/v1/sensors/lt2", token=gov).status == 404
    assert srv.http("GET", "/api/v1/enterprises/n1", token=gov).json["enterprise"]["version"] == 1
    # a review whose credit code another enterprise holds is refused
    r = srv.http("PUT", "/api/v1/enterprises/e2", token=carl,
                 body={"credit_code": credit_code("91440106MA5AAAAA1")})
    assert r.status == 200, r
    assert srv.http("POST", "/api/v1/enterprises/e2/submit", token=carl, raw="{}").status == 200
    assert_error(srv.http("POST", "/api/v1/enterprises/e2/review", token=gov,
                          body={"decision": "approve"}), 409, "conflict")
