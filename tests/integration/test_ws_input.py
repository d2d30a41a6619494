"""WebSocket framing and request validation: bad JSON, bad ids, unknown types,
binary frames, oversized frames, rate limiting, ping."""

import asyncio
import json
import time

import websockets

from conftest import run, user

ENTERPRISES = [("e1", "Acme Chemicals", "440106")]
USERS = [user("alice", "corp", "e1")]


def start(server, **kw):
    return server(enterprises=ENTERPRISES, users=USERS, **kw)


def assert_bad_request(reply, re_value):
    assert isinstance(reply, dict), reply
    assert "re" in reply, f"error reply without 're': {reply}"
    assert reply["re"] == re_value and type(reply["re"]) is type(re_value), \
        f"want re={re_value!r}: {reply}"
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "bad_request", reply
    assert isinstance(reply["error"].get("message"), str), reply


async def authed(srv):
    c = await srv.ws()
    await c.login("alice")
    return c


def test_ping_returns_server_time(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        before = int(time.time() * 1000)
        r = await c.ok("ping")
        after = int(time.time() * 1000)
        assert isinstance(r["now"], int), r
        assert before - 2000 <= r["now"] <= after + 2000, (before, r["now"], after)
        await c.close()

    run(body())


def test_pipelined_requests_each_get_their_reply(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        futs = []
        for i in range(20):
            rid = f"req-{i}" if i % 2 else 1000 + i
            futs.append((rid, c.expect_reply(rid)))
            await c.send_obj({"id": rid, "type": "ping"})
        for rid, fut in futs:
            r = await asyncio.wait_for(fut, 5)
            assert r["re"] == rid and r["ok"] is True
        await asyncio.sleep(0.3)
        assert c._unmatched == [], f"stray replies: {c._unmatched}"
        await c.close()

    run(body())


def test_malformed_json_is_bad_request_and_connection_survives(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        for junk in ("{not json", '{"id": 1, "type": "ping"', "", "   ", "\u00ff\u00fe",
                     '{"id": 1, "type": "ping"} trailing'):
            await c.send_raw(junk)
            assert_bad_request(await c.next_unmatched(), None)
            await c.ok("ping")
        assert not c.is_closed
        await c.close()

    run(body())


def test_malformed_json_before_auth(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        await c.send_raw("{{{{")
        assert_bad_request(await c.next_unmatched(), None)
        await c.login("alice")
        await c.close()

    run(body())


def test_non_object_json_is_bad_request(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        for junk in ("[1, 2, 3]", '"ping"', "42", "null", "true"):
            await c.send_raw(junk)
            assert_bad_request(await c.next_unmatched(), None)
        await c.ok("ping")
        await c.close()

    run(body())


def test_missing_or_bad_id_is_bad_request_with_re_null(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        for obj in ({"type": "ping"}, {"id": {"a": 1}, "type": "ping"},
                    {"id": [1], "type": "ping"}, {"id": True, "type": "ping"},
                    {"id": False, "type": "ping"}):
            await c.send_obj(obj)
            assert_bad_request(await c.next_unmatched(), None)
        await c.ok("ping")
        await c.close()

    run(body())


def test_unknown_type_is_bad_request_with_re_id(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        r = await c.request_obj({"id": 7, "type": "no.such.verb"})
        assert_bad_request(r, 7)
        r = await c.request_obj({"id": "s7", "type": "presence.teleport"})
        assert_bad_request(r, "s7")
        r = await c.request_obj({"id": 8, "type": 12})
        assert r["re"] == 8 and r["ok"] is False and r["error"]["code"] == "bad_request", r
        r = await c.request_obj({"id": 9})
        assert r["re"] == 9 and r["ok"] is False and r["error"]["code"] == "bad_request", r
        await c.ok("ping")
        await c.close()

    run(body())


def test_field_of_wrong_type_is_bad_request(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        for fields in ({"users": 5}, {"users": "abc"}, {"users": [1, 2]},
                       {"enterprise": 5}, {"users": {"x": 1}}, {}):
            r = await c.request("presence.query", **fields)
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (fields, r)
            assert r["re"] == c._next_id
        await c.ok("ping")
        await c.close()

    run(body())


def test_login_field_of_wrong_type_is_bad_request(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        r = await c.request("auth.login", username=5, password="x" * 10, device_id="d",
                            platform="android")
        assert r["ok"] is False and r["error"]["code"] == "bad_request", r
        r = await c.request("auth.login", username="alice", device_id="d", platform="android")
        assert r["ok"] is False and r["error"]["code"] == "bad_request", r
        r = await c.request("auth.token", token=["x"])
        assert r["ok"] is False and r["error"]["code"] == "bad_request", r
        await c.login("alice")
        await c.close()

    run(body())


def test_binary_frame_is_bad_request(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        await c.send_raw(json.dumps({"id": 1, "type": "ping"}).encode())
        r = await c.next_unmatched()
        assert r.get("ok") is False and r["error"]["code"] == "bad_request", r
        await c.close()

    run(body())


def test_frame_below_max_frame_is_fine(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        # ~60 KB, below the default max_frame of 65536.
        r = await c.request("ping", pad="x" * 60000)
        assert r["re"] == c._next_id
        assert r.get("ok") is True or r["error"]["code"] != "too_large", r
        await c.ok("ping")
        await c.close()

    run(body())


def test_frame_over_max_frame_is_too_large_and_closed_1009(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        await c.send_raw(json.dumps({"id": 1, "type": "ping", "pad": "y" * 70000}))
        code = await c.wait_closed(5)
        assert code == 1009, f"close code {code}, want 1009"
        errors = [m for m in c.all_messages if isinstance(m, dict) and m.get("ok") is False]
        assert any(m["error"]["code"] == "too_large" for m in errors), c.all_messages[1:]

    run(body())


def test_fragmented_message_over_max_frame_is_refused(server):
    """A message split into small fragments still counts as one message."""
    srv = start(server, settings={"max_frame": "4096"})

    async def body():
        c = await authed(srv)
        # Five fragments of ~1000 bytes: only the last one crosses the limit,
        # so the client has sent everything by the time the server decides.
        text = json.dumps({"id": 1, "type": "ping", "pad": "z" * 4500})
        chunks = [text[i:i + 1000] for i in range(0, len(text), 1000)]
        assert sum(map(len, chunks[:-1])) <= 4096 < len(text)
        try:
            await c.ws.send(iter(chunks))
        except websockets.ConnectionClosed:
            pass  # the server may close before the last fragment is out
        code = await c.wait_closed(5)
        assert code == 1009, f"close code {code}, want 1009"

    run(body())


def test_fragmented_message_within_limit_is_reassembled(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        text = json.dumps({"id": "frag", "type": "ping"})
        fut = c.expect_reply("frag")
        await c.ws.send(iter([text[:5], text[5:12], text[12:]]))
        r = await asyncio.wait_for(fut, 5)
        assert r["ok"] is True, r
        await c.close()

    run(body())


def _masked_text_frame(text):
    data = text.encode()
    key = b"\x11\x22\x33\x44"
    assert 125 < len(data) < 65536
    head = bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big") + key
    return head + bytes(b ^ key[i % 4] for i, b in enumerate(data))


def test_message_arriving_in_pieces_waits_without_holding_others(server):
    """A 5 KB message (more than one 1 KiB read) whose second half arrives
    later: the server reads what is there, serves other connections
    meanwhile, and answers once the rest is in."""
    srv = start(server)

    async def body():
        slow = await authed(srv)
        other = await srv.ws()
        await other.login("alice", device_id="dev-alice-2")
        frame = _masked_text_frame(json.dumps({"id": "big", "type": "ping", "pad": "p" * 5000}))
        fut = slow.expect_reply("big")
        slow.ws.transport.write(frame[:3000])
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        await other.ok("ping")
        assert time.monotonic() - t0 < 2.0
        assert not fut.done()
        slow.ws.transport.write(frame[3000:])
        r = await asyncio.wait_for(fut, 5)
        assert r["ok"] is True, r
        await slow.ok("ping")
        await other.close()
        await slow.close()

    run(body())


def test_max_frame_setting(server):
    srv = start(server, settings={"max_frame": "1024"})

    async def body():
        c = await authed(srv)
        await c.ok("ping", pad="a" * 500)
        await c.send_raw(json.dumps({"id": 2, "type": "ping", "pad": "a" * 2000}))
        assert await c.wait_closed(5) == 1009

    run(body())


def test_rate_limit(server):
    srv = start(server)

    async def body():
        c = await authed(srv)
        n = 300
        futs = {i: c.expect_reply(i) for i in range(1, n + 1)}
        # Send them all in one go, in order.
        for i in futs:
            await c.send_obj({"id": i, "type": "ping"})
        replies = {}
        for i, fut in futs.items():
            replies[i] = await asyncio.wait_for(fut, 15)
        ok = [i for i, r in replies.items() if r["ok"] is True]
        limited = [i for i, r in replies.items()
                   if r["ok"] is False and r["error"]["code"] == "rate_limited"]
        other = [r for r in replies.values()
                 if r["ok"] is False and r["error"]["code"] != "rate_limited"]
        assert not other, other[:3]
        assert len(ok) + len(limited) == n
        assert 90 <= len(ok) <= 200, f"{len(ok)} ok of {n}: burst is 100"
        assert len(limited) >= 100, f"only {len(limited)} rate_limited"
        assert ok[:90] == list(range(1, 91)), "the first requests are the ones served"
        # Exactly one reply each: nothing stray arrives afterwards.
        await asyncio.sleep(0.5)
        assert c._unmatched == [], f"extra replies: {c._unmatched[:3]}"
        assert not c.is_closed
        # The bucket refills.
        await asyncio.sleep(1.5)
        for _ in range(10):
            await c.ok("ping")
        await c.close()

    run(body())


def test_rate_limit_settings(server):
    srv = start(server, settings={"rate_per_s": "5", "rate_burst": "10"})

    async def body():
        c = await authed(srv)
        futs = [c.expect_reply(i) for i in range(1, 41)]
        for i in range(1, 41):
            await c.send_obj({"id": i, "type": "ping"})
        replies = [await asyncio.wait_for(f, 10) for f in futs]
        ok = sum(1 for r in replies if r["ok"] is True)
        assert 8 <= ok <= 15, f"{ok} ok with rate_burst=10"
        await asyncio.sleep(1.0)
        # ~5 tokens after one second at rate_per_s=5
        await c.ok("ping")
        await c.close()

    run(body())


def test_upgrade_without_yjt_subprotocol_or_off_path_is_refused(server):
    """Only /ws with subprotocol yjt.v1 opens a session; anything else is
    refused at the handshake instead of lingering outside every limit."""
    srv = start(server)

    async def body():
        cases = [("/ws", None), ("/ws", ["chat"]), ("/other", ["yjt.v1"]), ("/", None)]
        for path, protos in cases:
            kw = {"subprotocols": protos} if protos else {}
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{srv.port}{path}",
                                              open_timeout=5, **kw)
            except (websockets.InvalidHandshake, OSError, asyncio.TimeoutError):
                continue
            await ws.close()
            raise AssertionError(f"upgrade to {path} with {protos} was accepted")
        # The proper one still works afterwards.
        ws = await websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", subprotocols=["yjt.v1"])
        assert ws.subprotocol == "yjt.v1"
        await ws.close()

    run(body())
