"""Durable inbox: live pushes to every device, per-device cumulative acks,
push.resume with no gap and no duplicate, restart safety, TTL, trimming,
slow consumers, GET /api/v1/inbox and input validation."""

import asyncio
import json
import time

from conftest import assert_error, metric, run, user
from pushlib import OPS, StalledWs, push_seqs, resume_all, send_push, wait_pushes

ENTERPRISES = [("e1", "Tianhe Chemicals", "440106")]
USERS = [OPS, user("alice", "corp", "e1"), user("bob", "corp", "e1")]


def start(server, **settings):
    return server(enterprises=ENTERPRISES, users=USERS, settings=settings)


def test_every_device_gets_it_and_acks_are_per_device(server):
    srv = start(server)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        d1 = await srv.ws_login("alice", device_id="phone")
        d2 = await srv.ws_login("alice", device_id="tablet")
        b = await srv.ws_login("bob", device_id="bob-phone")
        for i in range(3):
            seq = send_push(srv, ops, alice, kind="alarm", priority="high", title=f"t{i}",
                            payload={"n": i})
            assert seq == i + 1
        assert await wait_pushes(d1, 3) == [1, 2, 3]
        assert await wait_pushes(d2, 3) == [1, 2, 3]
        ev = await d1.next_event("push")
        assert ev["seq"] == 1 and ev["kind"] == "alarm" and ev["priority"] == "high"
        assert ev["title"] == "t0" and ev["payload"] == {"n": 0}
        assert ev["id"] == f"{alice}:1"
        assert ev["expires_at"] - ev["created_at"] == 3600 * 1000
        assert abs(ev["created_at"] - time.time() * 1000) < 10000
        await b.no_event("push", within=0.3)

        assert (await d1.ok("push.ack", seq=2))["acked"] == 2
        assert (await d2.ok("push.ack", seq=3))["acked"] == 3
        # Cumulative: a lower ack changes nothing.
        assert (await d1.ok("push.ack", seq=1))["acked"] == 2
        r = await d1.request("push.ack", seq=4)
        assert r["ok"] is False and r["error"]["code"] == "bad_request", r
        await d1.close()
        await d2.close()

        # Each device resumes from its own stored position.
        d1 = await srv.ws_login("alice", device_id="phone")
        r = await d1.ok("push.resume")
        assert push_seqs(d1) == [3] and r["last_seq"] == 3 and r["more"] is False
        d2 = await srv.ws_login("alice", device_id="tablet")
        r = await d2.ok("push.resume")
        assert push_seqs(d2) == [] and r["last_seq"] == 3 and r["head"] == 3
        for c in (d1, d2, b):
            await c.close()

    run(body())


def test_resume_then_live_has_no_gap_and_no_duplicate(server):
    srv = start(server, push_resume_batch=3)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        for _ in range(10):
            send_push(srv, ops, alice)
        c = await srv.ws_login("alice", device_id="phone")
        r = await c.ok("push.resume", after_seq=0)
        assert r == {"re": r["re"], "ok": True, "last_seq": 3, "head": 10, "more": True}
        assert push_seqs(c) == [1, 2, 3]
        # Pushes while the device catches up wait for its next resume.
        send_push(srv, ops, alice)
        await asyncio.sleep(0.3)
        assert push_seqs(c) == [1, 2, 3]
        after = r["last_seq"]
        while True:
            r = await c.ok("push.resume", after_seq=after)
            after = r["last_seq"]
            send_push(srv, ops, alice)  # one more live push at each step
            if not r["more"]:
                break
        # Now up to date: live pushes flow, each exactly once.
        head = send_push(srv, ops, alice)
        seqs = await wait_pushes(c, head)
        await asyncio.sleep(0.2)
        assert push_seqs(c) == list(range(1, head + 1)), push_seqs(c)
        await c.close()

    run(body())


def test_a_burst_arrives_whole_and_in_order_in_few_writes(server):
    """Messages ready together leave in one socket write as several frames:
    short and long ones (7- and 16-bit frame lengths) arrive intact."""
    srv = start(server, push_resume_batch=100)
    ops = srv.token("ops")
    alice = srv.users["alice"]
    bodies = ["b%d-" % i + "x" * (i * 37 % 400) for i in range(60)]

    async def body():
        for b in bodies:
            send_push(srv, ops, alice, body=b)
        c = await srv.ws_login("alice", device_id="phone")
        before = srv.metrics()
        r = await c.ok("push.resume", after_seq=0)
        assert r["last_seq"] == 60 and not r["more"]
        got = [m for m in c.all_messages if isinstance(m, dict) and m.get("type") == "push"]
        assert [m["seq"] for m in got] == list(range(1, 61))
        assert [m["body"] for m in got] == bodies
        after = srv.metrics()
        writes = metric(after, "yjt_ws_writes_total") - metric(before, "yjt_ws_writes_total")
        carried = (metric(after, "yjt_ws_written_messages_total")
                   - metric(before, "yjt_ws_written_messages_total"))
        assert carried >= 61 and writes <= carried / 10, (writes, carried)
        await c.close()

    run(body())


def test_live_device_that_never_resumed_follows_live(server):
    srv = start(server)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        send_push(srv, ops, alice)
        c = await srv.ws_login("alice", device_id="phone")
        send_push(srv, ops, alice)
        assert await wait_pushes(c, 1) == [2]
        # Resuming replays what was asked for, then live goes on after it.
        r = await c.ok("push.resume", after_seq=0)
        assert r["last_seq"] == 2 and push_seqs(c) == [2, 1, 2]
        send_push(srv, ops, alice)
        assert await wait_pushes(c, 4) == [2, 1, 2, 3]
        await c.close()

    run(body())


def test_kill9_with_unacknowledged_pushes(server):
    srv = start(server)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await srv.ws_login("alice", device_id="phone")
        for _ in range(5):
            send_push(srv, ops, alice)
        await wait_pushes(c, 5)
        await c.ok("push.ack", seq=2)
        srv.kill9()
        await c.wait_closed()
        srv.start()
        c = await srv.ws_login("alice", device_id="phone")
        await resume_all(c)
        assert push_seqs(c) == [3, 4, 5]
        # An offline device that never connected gets all of them.
        d = await srv.ws_login("alice", device_id="new-tablet")
        await resume_all(d, after_seq=0)
        assert push_seqs(d) == [1, 2, 3, 4, 5]
        assert send_push(srv, ops, alice) == 6  # seq goes on after the restart
        assert await wait_pushes(c, 4) == [3, 4, 5, 6]
        await c.close()
        await d.close()

    run(body())


def test_expired_pushes_are_not_delivered_but_listed(server):
    srv = start(server)
    ops = srv.token("ops")
    alice = srv.users["alice"]
    send_push(srv, ops, alice, ttl_s=1, title="short")
    send_push(srv, ops, alice, ttl_s=600, title="long")
    time.sleep(1.2)

    async def body():
        c = await srv.ws_login("alice", device_id="phone")
        r = await c.ok("push.resume", after_seq=0)
        assert r["last_seq"] == 2 and r["more"] is False
        assert push_seqs(c) == [2]
        await c.close()

    run(body())
    r = srv.http("GET", "/api/v1/inbox", token=srv.token("alice"))
    assert r.status == 200, r
    items = r.json["items"]
    assert [(i["seq"], i["title"], i["expired"]) for i in items] == \
        [(1, "short", True), (2, "long", False)]
    assert r.json["head"] == 2 and r.json["more"] is False


def test_inbox_paging_and_errors(server):
    srv = start(server)
    ops = srv.token("ops")
    alice = srv.users["alice"]
    for _ in range(5):
        send_push(srv, ops, alice)
    tok = srv.token("alice")
    r = srv.http("GET", "/api/v1/inbox?after_seq=1&limit=2", token=tok)
    assert [i["seq"] for i in r.json["items"]] == [2, 3]
    assert r.json["next_after_seq"] == 3 and r.json["more"] is True
    r = srv.http("GET", "/api/v1/inbox?after_seq=3&limit=200", token=tok)
    assert [i["seq"] for i in r.json["items"]] == [4, 5] and r.json["more"] is False
    # Bob sees only his own inbox.
    r = srv.http("GET", "/api/v1/inbox", token=srv.token("bob"))
    assert r.json["items"] == [] and r.json["head"] == 0
    assert_error(srv.http("GET", "/api/v1/inbox"), 401, "unauthorized")
    assert_error(srv.http("GET", "/api/v1/inbox?limit=0", token=tok), 400, "bad_request")
    assert_error(srv.http("GET", "/api/v1/inbox?limit=201", token=tok), 400, "bad_request")
    assert_error(srv.http("GET", "/api/v1/inbox?after_seq=x", token=tok), 400, "bad_request")

    # Sending by hand is for operators, with checked fields.
    assert_error(send_push(srv, tok, alice, expect=403), 403, "forbidden")
    assert_error(send_push(srv, ops, "u-nobody", expect=404), 404, "not_found")
    assert_error(send_push(srv, ops, alice, priority="urgent", expect=400), 400, "bad_request")
    assert_error(send_push(srv, ops, alice, priority=5, expect=400), 400, "bad_request")
    assert_error(send_push(srv, ops, alice, ttl_s=0, expect=400), 400, "bad_request")
    assert_error(send_push(srv, ops, alice, payload={"x": "y" * 20000}, expect=400), 400,
                 "bad_request")
    assert_error(send_push(srv, ops, alice, title="t" * 201, expect=400), 400, "bad_request")
    r = srv.http("POST", "/api/v1/pushes", token=ops, raw="[1]")
    assert_error(r, 400, "bad_request")

    async def body():
        c = await srv.ws()
        r = await c.request("push.ack", seq=1)
        assert r["error"]["code"] == "unauthorized"
        await c.login("alice", device_id="phone")
        for bad in ({"seq": "1"}, {"seq": -1}, {"seq": 1.5}, {}):
            r = await c.request("push.ack", **bad)
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
        for bad in ({"after_seq": "1"}, {"after_seq": -1}, {"after_seq": 6}, {"after_seq": None}):
            r = await c.request("push.resume", **bad)
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
        await c.close()

    run(body())


def test_trimmed_by_count(server):
    srv = start(server, inbox_max_count=10)
    ops = srv.token("ops")
    alice = srv.users["alice"]
    for _ in range(70):
        send_push(srv, ops, alice)
    tok = srv.token("alice")
    waits = metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0
    r = srv.http("GET", "/api/v1/inbox?limit=200", token=tok)
    seqs = [i["seq"] for i in r.json["items"]]
    # what is due to be trimmed is read past, not trimmed first: on Redis
    # the listing's reads never wait behind a write on the loop
    assert (metric(srv.metrics(), "yjt_redis_loop_waits_total") or 0) == waits
    # At most max_count plus one trimming interval (32) are kept; never the newest.
    assert seqs == list(range(seqs[0], 71)), seqs
    assert 10 <= len(seqs) <= 42 and seqs[0] > 1, seqs

    async def body():
        # A device that was away longer than the inbox keeps lands on what is left.
        c = await srv.ws_login("alice", device_id="phone")
        r = await resume_all(c, after_seq=0)
        assert r["last_seq"] == 70 and push_seqs(c) == seqs
        await c.close()

    run(body())


def test_slow_consumer_is_dropped_and_resumes(server):
    srv = start(server, send_queue_max=262144)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        slow = StalledWs(srv.port, "alice", "correct-horse-1", "slow")
        # More than the kernel's socket buffers take (up to 4 MiB here).
        big, n = "x" * 16000, 400

        def send_all():
            for _ in range(n):
                send_push(srv, ops, alice, payload={"blob": big})

        await asyncio.to_thread(send_all)
        # The stalled device is cut off instead of growing the server's memory.
        deadline = time.monotonic() + 8
        while "send queue full" not in srv.stderr():
            assert time.monotonic() < deadline, "slow consumer was not dropped"
            await asyncio.sleep(0.1)
        slow.close()
        # Reconnected, it resumes from its position and misses nothing.
        c = await srv.ws_login("alice", device_id="slow")
        await resume_all(c, after_seq=0)
        assert push_seqs(c) == list(range(1, n + 1))
        await c.close()

    run(body())


def server_with_users(server, n_users, **settings):
    """A server with corp users f0..f(n-1) of e1 and the regulator gov440106."""
    gov = user("gov440106", "gov", "440106")
    srv = server(enterprises=ENTERPRISES, users=USERS + [gov], settings=settings, start=False)
    srv.ctl("user", "add", "--username", "f", "--password", "correct-horse-1", "--role", "corp",
            "--org", "e1", "--count", n_users, check=True)
    srv.start()
    return srv


async def many_devices(srv, n_users):
    """Devices d1..d(n-1) of users f1..f(n-1) logged in, and f0's stalled
    connection (it reads nothing until asked)."""
    clients = []
    for k in range(1, n_users, 50):
        clients += await asyncio.gather(*(
            srv.ws_login(f"f{i}", password="correct-horse-1", device_id=f"d{i}")
            for i in range(k, min(k + 50, n_users))))
    return clients, StalledWs(srv.port, "f0", "correct-horse-1", "slow")


async def all_got_all(clients, slow, bodies):
    """Every client, and then the stalled one, got one push per body: whole,
    once and in order."""
    want = list(enumerate(bodies, 1))
    for c in clients:
        await wait_pushes(c, len(bodies), timeout=30)
        got = [m for m in c.all_messages if isinstance(m, dict) and m.get("type") == "push"]
        assert [(m["seq"], m["body"]) for m in got] == want
    frames = await asyncio.to_thread(slow.read_frames, len(bodies))
    pushes = [m for m in map(json.loads, frames) if m.get("type") == "push"]
    assert [(m["seq"], m["body"]) for m in pushes] == want
    slow.close()


def test_a_fan_out_to_hundreds_is_written_by_the_send_threads(server):
    """A flush that releases hundreds of connections is written by several
    threads at once: every device still gets every push whole and in
    order, and a device whose socket fills mid-write gets the rest later."""
    n_users, n_notices = 300, 20
    srv = server_with_users(server, n_users, send_threads=3)
    bodies = [f"n{k}:" + chr(0x4e00 + k) * 1300 for k in range(n_notices)]  # 3.9 KB each
    # About 14 KB a push: one notice's deliveries are more than the send
    # threads take at once (4 MiB), so they are written in several batches.
    attachments = [{"name": f"a{i}.pdf", "url": "https://files.example.org/" + "x" * 990}
                   for i in range(10)]

    async def body():
        # f0 reads nothing until every notice is out: its socket fills.
        clients, slow = await many_devices(srv, n_users)
        before = srv.metrics()
        token = srv.token("gov440106")
        for b in bodies:
            r = srv.http("POST", "/api/v1/notices", token=token,
                         body={"title": "t", "body": b, "attachments": attachments,
                               "audience": {"type": "enterprises", "enterprises": ["e1"]}})
            assert r.status == 201 and r.json["recipients"] == n_users + 2, r
        await all_got_all(clients, slow, bodies)
        if not srv.peers:  # one node holds all 300 devices
            after = srv.metrics()
            assert metric(after, "yjt_ws_pool_writes_total") - \
                metric(before, "yjt_ws_pool_writes_total") >= n_users, after
        for c in clients:
            await c.close()

    run(body(), timeout=180)


def test_a_lone_fan_out_goes_out_while_it_is_queued_and_a_burst_together(server):
    """A push to hundreds of users that comes alone is flushed at once and
    sent from the send threads while the loop still queues the rest of it;
    pushes that come back to back wait for one flush and leave together.
    Either way every device gets every push, whole, once and in order, and
    a device that reads nothing meanwhile gets them all later."""
    n_users, lone, burst = 300, 4, 6
    srv = server_with_users(server, n_users, send_threads=2)
    bodies = [f"notice {k} " + chr(0x4e00 + k) * (50 + 40 * k) for k in range(lone + burst)]

    async def body():
        clients, slow = await many_devices(srv, n_users)
        before = srv.metrics()
        token = srv.token("gov440106")

        def publish(b):
            r = srv.http("POST", "/api/v1/notices", token=token,
                         body={"title": "t", "body": b,
                               "audience": {"type": "enterprises", "enterprises": ["e1"]}})
            assert r.status == 201 and r.json["recipients"] == n_users + 2, r

        for b in bodies[:lone]:
            await asyncio.sleep(0.5)  # alone: well apart from the one before
            publish(b)
        for b in bodies[lone:]:
            publish(b)
        await all_got_all(clients, slow, bodies)
        if not srv.peers:  # SQLite: Redis's batches are told, not flushed
            after = srv.metrics()
            early = metric(after, "yjt_push_fanouts_total", path="early") - \
                metric(before, "yjt_push_fanouts_total", path="early")
            together = metric(after, "yjt_push_fanouts_total", path="burst") - \
                metric(before, "yjt_push_fanouts_total", path="burst")
            # A lone one goes early unless a flush (of the devices' acks)
            # is still under way as it comes: at least one of them does.
            assert early >= 1 and together >= 1 and early + together == len(bodies), after
        for c in clients:
            await c.close()

    run(body(), timeout=180)
