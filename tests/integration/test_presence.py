"""Presence: query scope per role, online/devices, subscriptions, and the
keep-alive that drops dead peers."""

import asyncio
import base64
import json
import os
import socket
import struct
import time

from conftest import run, user

ENTERPRISES = [
    ("e1", "Tianhe Chemicals", "440106"),
    ("e2", "Huangpu Gas", "440113"),
    ("e3", "Futian Solvents", "440305"),
]
CARRIERS = [
    ("c1", "Canton Haulage", "440106"),
    ("c2", "Shenzhen Tankers", "440305"),
]
USERS = [
    user("gov44", "gov", "44", position="director"),
    user("gov4401", "gov", "4401", position="inspector", display_name="Guangzhou Inspector"),
    user("gov440106", "gov", "440106"),
    user("gov4403", "gov", "4403"),
    user("alice", "corp", "e1", position="safety officer", display_name="Alice"),
    user("amy", "corp", "e1"),
    user("carl", "corp", "e2"),
    user("dave", "corp", "e3"),
    user("tom", "trs", "c1", position="driver"),
    user("tina", "trs", "c1"),
    user("tess", "trs", "c2"),
]
PRESENCE_FIELDS = {"id", "username", "display_name", "role", "org", "position", "online",
                   "devices"}


def start(server, **kw):
    return server(enterprises=ENTERPRISES, carriers=CARRIERS, users=USERS, **kw)


def by_name(srv, users):
    ids = {v: k for k, v in srv.users.items()}
    return {ids.get(u["id"], u["id"]): u for u in users}


def ids(srv, *names):
    return [srv.users[n] for n in names]


async def query(c, srv, *names):
    return await c.request("presence.query", users=ids(srv, *names))


def assert_err(reply, code):
    assert reply["ok"] is False and reply["error"]["code"] == code, \
        f"want {code}: {reply}"


def test_presence_shape_and_online_devices(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        a1 = await srv.ws_login("alice", device_id="p1", platform="android")
        a2 = await srv.ws_login("alice", device_id="w1", platform="web")
        t0 = int(time.time() * 1000)
        r = await query(g, srv, "alice", "amy")
        assert r["ok"] is True, r
        got = by_name(srv, r["users"])
        assert set(got) == {"alice", "amy"}
        for u in r["users"]:
            assert PRESENCE_FIELDS <= set(u), f"missing fields: {PRESENCE_FIELDS - set(u)}"
        a = got["alice"]
        assert a["username"] == "alice" and a["role"] == "corp" and a["org"] == "e1"
        assert a["display_name"] == "Alice" and a["position"] == "safety officer"
        assert a["online"] is True
        devs = {d["device_id"]: d for d in a["devices"]}
        assert set(devs) == {"p1", "w1"}
        assert devs["p1"]["platform"] == "android" and devs["w1"]["platform"] == "web"
        for d in devs.values():
            assert "since" in d
            if isinstance(d["since"], int) and d["since"] > 1e11:
                assert abs(d["since"] - t0) < 60000, d
        assert got["amy"]["online"] is False and got["amy"]["devices"] == []

        await a2.close()
        await asyncio.sleep(0.3)
        r = await query(g, srv, "alice")
        a = r["users"][0]
        assert a["online"] is True and [d["device_id"] for d in a["devices"]] == ["p1"]
        await a1.close()
        await asyncio.sleep(0.3)
        r = await query(g, srv, "alice")
        assert r["users"][0]["online"] is False and r["users"][0]["devices"] == []
        await g.close()

    run(body())


def test_gov_scope_by_division_prefix(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov4401")
        r = await query(g, srv, "alice", "amy", "carl", "tom", "tina", "gov440106", "gov4401")
        assert r["ok"] is True, r
        assert set(by_name(srv, r["users"])) == {"alice", "amy", "carl", "tom", "tina",
                                                   "gov440106", "gov4401"}
        # Anyone outside 4401 makes the whole request forbidden.
        for outsider in ("dave", "tess", "gov4403", "gov44"):
            assert_err(await query(g, srv, "alice", outsider), "forbidden")
        r = await g.request("presence.query", enterprise="e1")
        assert r["ok"] is True, r
        assert set(by_name(srv, r["users"])) == {"alice", "amy"}
        assert_err(await g.request("presence.query", enterprise="e3"), "forbidden")
        assert_err(await g.request("presence.query", enterprise="no-such-ent"), "not_found")

        top = await srv.ws_login("gov44")
        r = await query(top, srv, "dave", "tess", "gov4403", "gov4401", "alice", "tom")
        assert r["ok"] is True, r
        r = await top.request("presence.query", enterprise="e3")
        assert r["ok"] is True and set(by_name(srv, r["users"])) == {"dave"}, r

        leaf = await srv.ws_login("gov440106")
        r = await query(leaf, srv, "alice", "tom")
        assert r["ok"] is True, r
        assert_err(await query(leaf, srv, "carl"), "forbidden")  # 440113
        assert_err(await leaf.request("presence.query", enterprise="e2"), "forbidden")
        for c in (g, top, leaf):
            await c.close()

    run(body())


def test_corp_scope_own_enterprise_only(server):
    srv = start(server)

    async def body():
        c = await srv.ws_login("alice")
        r = await query(c, srv, "alice", "amy")
        assert r["ok"] is True and set(by_name(srv, r["users"])) == {"alice", "amy"}, r
        r = await c.request("presence.query", enterprise="e1")
        assert r["ok"] is True and set(by_name(srv, r["users"])) == {"alice", "amy"}, r
        for outsider in ("carl", "gov4401", "tom", "gov44"):
            assert_err(await query(c, srv, "amy", outsider), "forbidden")
        assert_err(await c.request("presence.query", enterprise="e2"), "forbidden")
        r = await c.request("presence.query", enterprise="no-such-ent")
        assert r["ok"] is False and r["error"]["code"] in ("not_found", "forbidden"), r
        await c.close()

    run(body())


def test_trs_scope_own_carrier_only(server):
    srv = start(server)

    async def body():
        c = await srv.ws_login("tom")
        r = await query(c, srv, "tom", "tina")
        assert r["ok"] is True and set(by_name(srv, r["users"])) == {"tom", "tina"}, r
        for outsider in ("tess", "alice", "gov4401"):
            assert_err(await query(c, srv, "tina", outsider), "forbidden")
        assert_err(await c.request("presence.query", enterprise="e1"), "forbidden")
        await c.close()

    run(body())


def test_empty_query_and_too_many_users(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov44")
        r = await g.request("presence.query", users=[])
        assert r["ok"] is True and r["users"] == [], r
        many = [f"u-{i:04d}" for i in range(501)]
        assert_err(await g.request("presence.query", users=many), "too_large")
        assert_err(await g.request("presence.subscribe", users=many), "too_large")
        await g.ok("ping")
        await g.close()

    run(body())


def test_subscribe_gets_changes(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        r = await g.request("presence.subscribe", users=ids(srv, "alice", "amy"))
        assert r["ok"] is True, r
        assert set(by_name(srv, r["users"])) == {"alice", "amy"}
        assert all(u["online"] is False for u in r["users"])

        a1 = await srv.ws_login("alice", device_id="p1", platform="ios")
        ev = await g.next_event("presence.changed", 5)
        u = ev["user"]
        assert u["id"] == srv.users["alice"] and u["online"] is True
        assert PRESENCE_FIELDS <= set(u)
        assert [(d["device_id"], d["platform"]) for d in u["devices"]] == [("p1", "ios")]

        a2 = await srv.ws_login("alice", device_id="p2", platform="android")
        ev = await g.next_event("presence.changed", 5)
        assert {d["device_id"] for d in ev["user"]["devices"]} == {"p1", "p2"}

        await a1.close()
        ev = await g.next_event("presence.changed", 5)
        assert ev["user"]["online"] is True
        assert [d["device_id"] for d in ev["user"]["devices"]] == ["p2"]

        await a2.close()
        ev = await g.next_event("presence.changed", 5)
        assert ev["user"]["online"] is False and ev["user"]["devices"] == []

        # Users outside the subscription produce no events.
        c = await srv.ws_login("carl")
        await g.no_event("presence.changed", 0.8)

        r = await g.request("presence.unsubscribe")
        assert r["ok"] is True, r
        a3 = await srv.ws_login("alice", device_id="p3")
        await g.no_event("presence.changed", 1.0)
        for x in (a3, c, g):
            await x.close()

    run(body())


def test_subscribe_by_enterprise(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov44")
        r = await g.request("presence.subscribe", enterprise="e1")
        assert r["ok"] is True and set(by_name(srv, r["users"])) == {"alice", "amy"}, r
        amy = await srv.ws_login("amy", device_id="x")
        ev = await g.next_event("presence.changed", 5)
        assert ev["user"]["id"] == srv.users["amy"] and ev["user"]["online"] is True
        await amy.close()
        ev = await g.next_event("presence.changed", 5)
        assert ev["user"]["id"] == srv.users["amy"] and ev["user"]["online"] is False
        await g.close()

    run(body())


def test_requests_of_a_connection_keep_their_order(server):
    """A subscribe and the unsubscribe sent right behind it are taken in
    that order, even where the subscribe first reads the enterprise's
    division (a node on Redis): no subscription is left."""
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov44")
        replies = await g.requests_at_once(("presence.subscribe", {"enterprise": "e2"}),
                                           ("presence.unsubscribe", {}))
        assert all(r["ok"] is True for r in replies), replies
        carl = await srv.ws_login("carl")
        await g.no_event("presence.changed", 1.0)
        for x in (g, carl):
            await x.close()

    run(body())


def test_subscribe_out_of_scope_is_forbidden_and_silent(server):
    srv = start(server)

    async def body():
        c = await srv.ws_login("alice")
        assert_err(await c.request("presence.subscribe", users=ids(srv, "amy", "carl")),
                   "forbidden")
        assert_err(await c.request("presence.subscribe", enterprise="e2"), "forbidden")
        amy = await srv.ws_login("amy")
        carl = await srv.ws_login("carl")
        await c.no_event("presence.changed", 1.0)
        for x in (c, amy, carl):
            await x.close()

    run(body())


def test_replacement_keeps_user_online(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov4401")
        old = await srv.ws_login("alice", device_id="same")
        new = await srv.ws_login("alice", device_id="same")
        assert await old.wait_closed(5) == 4409
        await asyncio.sleep(0.3)
        r = await query(g, srv, "alice")
        u = r["users"][0]
        assert u["online"] is True and [d["device_id"] for d in u["devices"]] == ["same"], u
        await new.close()
        await g.close()

    run(body())


def test_many_subscribers_and_abrupt_disconnects(server):
    """Subscribers that vanish must not break event delivery to the others."""
    srv = start(server)

    async def body():
        subs = [await srv.ws_login("gov44", device_id=f"s{i}") for i in range(6)]
        for s in subs:
            assert (await s.request("presence.subscribe", users=ids(srv, "dave")))["ok"]
        # Half of them go away without a close handshake.
        for s in subs[:3]:
            s.ws.transport.abort()
        await asyncio.sleep(0.3)
        d = await srv.ws_login("dave")
        for s in subs[3:]:
            ev = await s.next_event("presence.changed", 5)
            assert ev["user"]["id"] == srv.users["dave"] and ev["user"]["online"] is True
        await d.close()
        for s in subs[3:]:
            ev = await s.next_event("presence.changed", 5)
            assert ev["user"]["online"] is False
            await s.close()

    run(body())


# ---------------------------------------------------------------- keep-alive


class RawWs:
    """A bare WebSocket client over a plain socket that completes the handshake,
    can send one frame, and then never reads again (so never answers pings)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: yjt.v1\r\n\r\n")
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed during the handshake"
            buf += chunk
        status = buf.split(b"\r\n", 1)[0]
        assert b" 101 " in status + b" ", f"handshake failed: {status!r}"

    def send_text(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def close(self):
        self.sock.close()


def test_dead_peer_dropped_by_keepalive(server):
    srv = start(server, settings={"ping_interval_s": "2"})

    async def online(g, name):
        r = await query(g, srv, name)
        assert r["ok"] is True, r
        return r["users"][0]["online"]

    async def body():
        g = await srv.ws_login("gov4401")
        # A well-behaved idle client (answers pings automatically, sends nothing).
        amy = await srv.ws_login("amy", device_id="idle")
        raw = await asyncio.to_thread(RawWs, srv.port)
        try:
            raw.send_text(json.dumps({"id": 1, "type": "auth.login", "username": "alice",
                                      "password": "correct-horse-1", "device_id": "dead",
                                      "platform": "android"}))
            t0 = time.monotonic()
            while not await online(g, "alice"):
                assert time.monotonic() - t0 < 5, "raw client never came online"
                await asyncio.sleep(0.1)
            # The dead peer must be dropped within ~3 ping intervals.
            t0 = time.monotonic()
            while await online(g, "alice"):
                assert time.monotonic() - t0 < 10, \
                    "a peer that never answers pings was not dropped within 10 s"
                await asyncio.sleep(0.2)
        finally:
            raw.close()
        # The idle but alive client is still there after the same time.
        assert not amy.is_closed, f"live idle client dropped (close {amy.close_code})"
        assert await online(g, "amy") is True
        await amy.ok("ping")
        await amy.close()
        await g.close()

    run(body())


def test_server_pings_idle_connections(server):
    srv = start(server, settings={"ping_interval_s": "1"})

    async def body():
        c = await srv.ws_login("alice")
        pings = []
        orig = c.ws.pong

        async def spy(data=b""):  # the client pongs every ping it receives
            pings.append(data)
            return await orig(data)

        c.ws.pong = spy
        await asyncio.sleep(3.5)
        assert pings, "no ping from the server within 3.5 s at ping_interval_s=1"
        assert not c.is_closed
        await c.ok("ping")
        await c.close()

    run(body())
