"""Offline delivery: push.register, posts to a real local HTTP gateway that
sometimes fails, backoff and jitter, delivery state, the ack timeout, and a
gateway that hangs without holding anything else up."""

import asyncio
import time

import pytest

from conftest import free_port, run, user
from pushlib import OPS, GatewayReceiver, send_push

ENTERPRISES = [("e1", "Tianhe Chemicals", "440106")]
USERS = [OPS, user("alice", "corp", "e1"), user("bob", "corp", "e1"),
         user("carol", "corp", "e1")]
FAST = {"gateway_timeout_ms": 1000, "gateway_retry_base_ms": 100,
        "gateway_retry_max_ms": 400, "gateway_max_attempts": 5, "push_ack_timeout_s": 1}


@pytest.fixture
def receiver():
    made = []

    def make(policy=lambda body, n: 200, port=None, tls=None):
        r = GatewayReceiver(policy, port, tls)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def start(server, gw_url, **settings):
    s = dict(FAST, gateway_url=gw_url)
    s.update(settings)
    return server(enterprises=ENTERPRISES, users=USERS, settings=s)


async def register(srv, username, device_id, platform, token):
    c = await srv.ws_login(username, device_id=device_id)
    r = await c.ok("push.register", platform=platform, token=token)
    assert r["device_id"] == device_id and r["platform"] == platform
    return c


def gateway_state(srv, username, seq):
    r = srv.http("GET", f"/api/v1/inbox?after_seq={seq - 1}&limit=1", token=srv.token(username))
    assert r.status == 200, r
    return r.json["items"][0].get("gateway")


def wait_state(srv, username, seq, state, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        st = gateway_state(srv, username, seq)
        if st and st["state"] == state:
            return st
        assert time.monotonic() < deadline, f"state {st}, wanted {state}"
        time.sleep(0.05)


def test_offline_user_is_posted_with_backoff_until_it_works(server, receiver):
    gw = receiver(lambda body, n: 503 if n <= 2 else 200)
    srv = start(server, gw.url)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await register(srv, "alice", "phone", "fcm", "fcm-token-A")
        await c.close()

    run(body())
    seq = send_push(srv, ops, alice, kind="alarm", priority="high", title="Tank T-101",
                    body="LEL 35%", payload={"secret": "not for the gateway"})
    pid = f"{alice}:{seq}"
    posts = gw.wait_posts(pid, 3)
    first = posts[0][1]
    assert first["user"] == alice and first["seq"] == seq and first["kind"] == "alarm"
    assert first["priority"] == "high" and first["title"] == "Tank T-101"
    assert first["body"] == "LEL 35%" and "payload" not in first
    assert first["devices"] == [{"device_id": "phone", "platform": "fcm",
                                 "token": "fcm-token-A"}]
    assert [b["attempt"] for _, b in posts] == [1, 2, 3]
    # Exponential backoff with jitter: base 100 ms, then 200 ms, each at least half.
    assert posts[1][0] - posts[0][0] >= 0.045
    assert posts[2][0] - posts[1][0] >= 0.095
    st = wait_state(srv, "alice", seq, "delivered")
    assert st["attempts"] == 3 and st["last_status"] == 200
    time.sleep(0.5)
    assert len(gw.for_push(pid)) == 3  # delivered: no more posts


def test_online_device_that_acks_is_not_posted_one_that_does_not_is(server, receiver):
    gw = receiver()
    srv = start(server, gw.url)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await register(srv, "alice", "phone", "apns", "apns-token-1")
        s1 = send_push(srv, ops, alice)
        ev = await c.next_event("push")
        await c.ok("push.ack", seq=ev["seq"])
        t0 = time.monotonic()
        s2 = send_push(srv, ops, alice)
        await c.next_event("push")  # received, never acknowledged
        posts = await asyncio.to_thread(gw.wait_posts, f"{alice}:{s2}", 1, 5)
        assert posts[0][0] - t0 >= 0.8, "posted before the ack timeout"
        await asyncio.sleep(0.5)
        assert gw.for_push(f"{alice}:{s1}") == []
        await c.close()

    run(body())


def test_no_token_and_giving_up(server, receiver):
    gw = receiver(lambda body, n: 500)
    srv = start(server, gw.url, gateway_max_attempts=3)
    ops = srv.token("ops")

    async def body():
        c = await register(srv, "carol", "tab", "huawei", "hw-token")
        await c.close()

    run(body())
    bob, carol = srv.users["bob"], srv.users["carol"]
    sb = send_push(srv, ops, bob)
    sc = send_push(srv, ops, carol)
    st = wait_state(srv, "carol", sc, "failed")
    assert st["attempts"] == 3 and st["last_status"] == 500
    assert len(gw.for_push(f"{carol}:{sc}")) == 3
    assert wait_state(srv, "bob", sb, "no_tokens")["attempts"] == 0
    assert gw.for_push(f"{bob}:{sb}") == []


def test_hanging_gateway_blocks_nothing_else(server, receiver):
    srv_holder = {}

    def policy(body, n):
        return ("hang", 3) if body["user"] == srv_holder["alice"] else 200

    gw = receiver(policy)
    srv = start(server, gw.url, gateway_timeout_ms=500, gateway_retry_base_ms=2000,
                gateway_retry_max_ms=2000)
    ops = srv.token("ops")
    alice, bob = srv.users["alice"], srv.users["bob"]
    srv_holder["alice"] = alice

    async def body():
        for name, plat in (("alice", "xiaomi"), ("bob", "oppo")):
            c = await register(srv, name, f"{name}-phone", plat, f"{plat}-tok")
            await c.close()
        probe = await srv.ws_login("carol", device_id="probe")
        sa = send_push(srv, ops, alice)
        await asyncio.to_thread(gw.wait_posts, f"{alice}:{sa}", 1)
        t0 = time.monotonic()
        sb = send_push(srv, ops, bob)
        await asyncio.to_thread(gw.wait_posts, f"{bob}:{sb}", 1)
        assert time.monotonic() - t0 < 1.0, "bob's post waited for alice's"
        # The event loop answers at once while a post hangs.
        worst = 0
        for _ in range(10):
            t = time.monotonic()
            await probe.ok("ping")
            worst = max(worst, time.monotonic() - t)
        assert worst < 0.2, worst
        st = await asyncio.to_thread(wait_state, srv, "alice", sa, "retrying")
        assert st["last_error"] == "timeout" and st["attempts"] == 1
        await probe.close()

    run(body())


def test_pending_retry_survives_kill9(server, receiver):
    port = free_port()  # nothing listens there yet: connection refused
    srv = start(server, f"http://127.0.0.1:{port}/push", gateway_retry_base_ms=300,
                gateway_retry_max_ms=300, gateway_max_attempts=50)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await register(srv, "alice", "phone", "vivo", "vivo-tok")
        await c.close()

    run(body())
    seq = send_push(srv, ops, alice)
    st = wait_state(srv, "alice", seq, "retrying")
    assert st["last_status"] == 0
    srv.kill9()
    gw = receiver(port=port)
    srv.start()
    posts = gw.wait_posts(f"{alice}:{seq}", 1)
    assert posts[0][1]["attempt"] >= 2  # the count goes on across the restart
    assert wait_state(srv, "alice", seq, "delivered")["last_status"] == 200


def test_register_validation_and_token_moves(server, receiver):
    gw = receiver()
    srv = start(server, gw.url)
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await srv.ws_login("alice", device_id="phone")
        for bad in ({"platform": "nokia", "token": "t"}, {"platform": "fcm"},
                    {"platform": "fcm", "token": ""}, {"platform": "fcm", "token": "a b"},
                    {"platform": "fcm", "token": "t" * 4097},
                    {"platform": "fcm", "token": "t", "device_id": 5}, {"token": "t"}):
            r = await c.request("push.register", **bad)
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
        r = await c.request("push.unregister")
        assert r["ok"] is False and r["error"]["code"] == "not_found"
        await c.ok("push.register", platform="jpush", token="shared-token")
        await c.close()
        # The phone changed hands: bob registers the same token.
        b = await srv.ws_login("bob", device_id="bobs-phone")
        await b.ok("push.register", platform="jpush", token="shared-token")
        await b.ok("push.unregister", device_id="bobs-phone")
        # A register and the unregister sent right behind it (a log-in and
        # an immediate log-out) are done in that order: no token is left.
        replies = await b.requests_at_once(("push.register", {"platform": "fcm",
                                                              "token": "quick"}),
                                           ("push.unregister", {}))
        assert all(r["ok"] is True for r in replies), replies
        r = await b.request("push.unregister")
        assert r["ok"] is False and r["error"]["code"] == "not_found", r
        await b.close()

    run(body())
    seq = send_push(srv, ops, alice)
    assert wait_state(srv, "alice", seq, "no_tokens")
    assert gw.posts == []


def test_https_gateway_by_name_verified_against_its_ca(server, receiver, tls_files):
    gw = receiver(tls=tls_files)
    srv = start(server, gw.url, gateway_ca_file=tls_files[0])
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await register(srv, "alice", "phone", "fcm", "fcm-tls")
        await c.close()

    run(body())
    seq = send_push(srv, ops, alice)
    assert gw.wait_posts(f"{alice}:{seq}", 1)[0][1]["devices"][0]["token"] == "fcm-tls"
    assert wait_state(srv, "alice", seq, "delivered")["attempts"] == 1


def test_https_gateway_with_an_untrusted_certificate_is_not_posted_to(server, receiver,
                                                                     tls_files):
    gw = receiver(tls=tls_files)
    srv = start(server, gw.url)  # the system's CAs do not know this certificate
    ops = srv.token("ops")
    alice = srv.users["alice"]

    async def body():
        c = await register(srv, "alice", "phone", "fcm", "fcm-tls")
        await c.close()

    run(body())
    seq = send_push(srv, ops, alice)
    st = wait_state(srv, "alice", seq, "retrying")
    assert st["last_status"] == 0 and st["attempts"] >= 1
    assert gw.posts == []
