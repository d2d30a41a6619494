"""Call signaling over real sockets: ringing every device, first accept wins,
early candidates, end reasons, glare, who may call whom, limits, resume
after a drop, TURN credentials, call records and the audit log."""

import asyncio
import base64
import hashlib
import hmac
import time

from calllib import answered_call
from conftest import metric, node_local, run, single_node, user

ENTERPRISES = [
    ("e1", "Tianhe Chemicals", "440106", True),
    ("e2", "Huangpu Gas", "440113"),
    ("e3", "Futian Solvents", "440305", True),
]
CARRIERS = [("c1", "Canton Haulage", "440106")]
USERS = [
    user("gov4401", "gov", "4401", display_name="Guangzhou Inspector"),
    user("gov440106", "gov", "440106"),
    user("gov4403", "gov", "4403"),
    user("boss", "corp", "e1", position="principal"),
    user("safety", "corp", "e1", position="safety_manager"),
    user("clerk", "corp", "e1", position="clerk"),
    user("carl", "corp", "e2", position="principal"),
    user("dave", "corp", "e3", position="principal"),
    user("tom", "trs", "c1", position="driver"),
]
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
ANSWER = OFFER.replace("o=- 1 2", "o=- 3 4")
FAST = {"ring_timeout_s": "3", "call_grace_s": "2"}


def start(server, settings=None):
    s = dict(FAST)
    s.update(settings or {})
    return server(enterprises=ENTERPRISES, carriers=CARRIERS, users=USERS, settings=s)


def uid(srv, name):
    return srv.users[name]


def assert_err(reply, code):
    assert reply["ok"] is False and reply["error"]["code"] == code, f"want {code}: {reply}"


async def invite(c, srv, to_name=None, enterprise=None, positions=None, **extra):
    to = {"user": uid(srv, to_name)} if to_name else {"enterprise": enterprise}
    if positions is not None:
        to["positions"] = positions
    return await c.request("call.invite", to=to, sdp=OFFER,
                           media={"audio": True, "video": True}, **extra)


async def answered(caller, callee, srv, callee_name):
    """A call from caller to callee_name answered on callee's device."""
    call_id, _ = await answered_call(caller, callee, {"user": uid(srv, callee_name)}, OFFER,
                                     ANSWER, media={"audio": True, "video": True})
    return call_id


async def ended(c, call_id, reason, timeout=5):
    ev = await c.next_event("call.ended", timeout=timeout)
    assert ev["call_id"] == call_id and ev["reason"] == reason, ev
    return ev


def test_call_rings_every_device_and_first_accept_wins(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        phone = await srv.ws_login("boss", device_id="boss-phone")
        pad = await srv.ws_login("boss", device_id="boss-pad")
        r = await invite(gov, srv, "boss")
        assert r["ok"] is True, r
        call_id = r["call_id"]
        assert isinstance(r["ice_servers"], list)
        incoming = []
        for dev in (phone, pad):
            ev = await dev.next_event("call.incoming")
            assert ev["call_id"] == call_id and ev["sdp"] == OFFER
            assert ev["from"]["id"] == uid(srv, "gov4401")
            assert ev["from"]["display_name"] == "Guangzhou Inspector"
            assert ev["enterprise"] == "e1"
            incoming.append(ev)
        await phone.ok("call.ringing", call_id=call_id)
        await gov.next_event("call.ringing")
        await pad.ok("call.accept", call_id=call_id, sdp=ANSWER)
        acc = await gov.next_event("call.accepted")
        assert acc["call_id"] == call_id and acc["sdp"] == ANSWER
        assert acc["answered_by"] == {"user": uid(srv, "boss"), "device": "boss-pad"}
        ev = await phone.next_event("call.answered_elsewhere")
        assert ev["call_id"] == call_id
        late = await phone.request("call.accept", call_id=call_id, sdp=ANSWER)
        assert_err(late, "conflict")
        # candidates flow both ways once answered
        cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                "sdpMid": "0", "sdpMLineIndex": 0}
        await gov.ok("call.candidate", call_id=call_id, candidate=cand)
        ev = await pad.next_event("call.candidate")
        assert ev["candidate"] == cand
        await pad.ok("call.candidate", call_id=call_id, candidate=None)
        ev = await gov.next_event("call.candidate")
        assert ev["candidate"] is None
        await phone.no_event("call.candidate", within=0.3)
        # renegotiation (an ICE restart) is relayed
        await pad.ok("call.renegotiate", call_id=call_id, sdp=OFFER, sdp_type="offer")
        ev = await gov.next_event("call.renegotiate")
        assert ev["sdp_type"] == "offer" and ev["sdp"] == OFFER
        await gov.ok("call.renegotiate", call_id=call_id, sdp=ANSWER, sdp_type="answer")
        assert (await pad.next_event("call.renegotiate"))["sdp_type"] == "answer"
        await asyncio.sleep(1.1)
        await gov.ok("call.hangup", call_id=call_id)
        await ended(gov, call_id, "hangup")
        ev = await ended(pad, call_id, "hangup")
        assert ev["by"] == uid(srv, "gov4401")
        await phone.no_event("call.ended", within=0.3)

        tok = srv.token("gov4401")
        rec = srv.http("GET", f"/api/v1/calls/{call_id}", token=tok)
        assert rec.status == 200, rec
        call = rec.json["call"]
        assert call["state"] == "ended" and call["end_reason"] == "hangup"
        assert call["answered_by"]["device"] == "boss-pad"
        assert call["duration_s"] >= 1
        assert call["caller"] == uid(srv, "gov4401")
        assert call["enterprise"] == "e1" and call["division"] == "440106"
        for k in ("invite_at", "answer_at", "end_at", "ringing_at"):
            assert isinstance(call[k], int), k
        for c in (gov, phone, pad):
            await c.close()

    run(go())
    audit = srv.ctl("audit", "list", check=True).stdout
    assert "call.invite" in audit and "call.end" in audit
    m = srv.metrics()
    assert metric(m, "yjt_calls_ended_total", reason="hangup") == 1
    assert metric(m, "yjt_calls_ended_total", reason="timeout") == 0
    assert metric(m, "yjt_call_setup_seconds_count") == 1
    assert metric(m, "yjt_calls_in_progress") == 0


def test_enterprise_positions_ring_matching_users_only(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov440106")
        boss = await srv.ws_login("boss")
        safety = await srv.ws_login("safety")
        clerk = await srv.ws_login("clerk")
        r = await invite(gov, srv, enterprise="e1", positions=["principal", "safety_manager"])
        assert r["ok"], r
        call_id = r["call_id"]
        await boss.next_event("call.incoming")
        await safety.next_event("call.incoming")
        await clerk.no_event("call.incoming", within=0.5)
        await safety.ok("call.accept", call_id=call_id, sdp=ANSWER)
        assert (await boss.next_event("call.answered_elsewhere"))["call_id"] == call_id
        await gov.next_event("call.accepted")
        await safety.ok("call.hangup", call_id=call_id)
        await ended(gov, call_id, "hangup")
        # nobody holds the position: unreachable
        r = await invite(gov, srv, enterprise="e1", positions=["nobody"])
        assert r["ok"], r
        await ended(gov, r["call_id"], "unreachable")
        for c in (gov, boss, safety, clerk):
            await c.close()

    run(go())


def test_early_candidates_are_held_and_delivered_in_order(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        r = await invite(gov, srv, "boss")
        call_id = r["call_id"]
        await boss.next_event("call.incoming")
        sent = [{"candidate": f"candidate:{i} 1 udp 1 127.0.0.1 {5000 + i} typ host",
                 "sdpMid": "0", "sdpMLineIndex": 0} for i in range(5)]
        for cand in sent:
            await gov.ok("call.candidate", call_id=call_id, candidate=cand)
        # the callee gathers before it accepts, too
        mine = {"candidate": "candidate:9 1 udp 1 127.0.0.1 6000 typ host", "sdpMid": "0",
                "sdpMLineIndex": 0}
        await boss.ok("call.candidate", call_id=call_id, candidate=mine)
        await boss.no_event("call.candidate", within=0.3)
        await boss.ok("call.accept", call_id=call_id, sdp=ANSWER)
        got = [(await boss.next_event("call.candidate"))["candidate"] for _ in sent]
        assert got == sent
        await gov.next_event("call.accepted")
        assert (await gov.next_event("call.candidate"))["candidate"] == mine
        await gov.ok("call.hangup", call_id=call_id)
        await gov.close()
        await boss.close()

    run(go())


def test_end_reasons_declined_cancelled_timeout_offline_busy(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss", device_id="p1")
        boss2 = await srv.ws_login("boss", device_id="p2")
        # declined: every device of the callee stops ringing
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        await boss2.next_event("call.incoming")
        await boss.ok("call.decline", call_id=call_id, reason="in a meeting")
        await ended(gov, call_id, "declined")
        await ended(boss, call_id, "declined")
        await ended(boss2, call_id, "declined")
        # cancelled
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        await boss2.next_event("call.incoming")
        await gov.ok("call.cancel", call_id=call_id)
        await ended(gov, call_id, "cancelled")
        await ended(boss, call_id, "cancelled")
        await ended(boss2, call_id, "cancelled")
        # timeout (ring_timeout_s=3)
        t0 = time.monotonic()
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        await boss2.next_event("call.incoming")
        await ended(gov, call_id, "timeout", timeout=8)
        assert 2.5 < time.monotonic() - t0 < 7
        await ended(boss, call_id, "timeout")
        await ended(boss2, call_id, "timeout")
        # offline: safety has no device online
        call_id = (await invite(gov, srv, "safety"))["call_id"]
        await ended(gov, call_id, "offline")
        # busy: boss in an answered call with another regulator
        other = await srv.ws_login("gov440106")
        c2 = (await invite(other, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        await boss2.next_event("call.incoming")
        await boss.ok("call.accept", call_id=c2, sdp=ANSWER)
        await boss2.next_event("call.answered_elsewhere")
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await ended(gov, call_id, "busy")
        await boss.no_event("call.incoming", within=0.3)
        await other.ok("call.hangup", call_id=c2)
        for c in (gov, boss, boss2, other):
            await c.close()

        tok = srv.token("gov4401")
        calls = srv.http("GET", "/api/v1/calls?limit=50", token=tok).json["calls"]
        reasons = [c["end_reason"] for c in calls if c["caller"] == uid(srv, "gov4401")]
        assert sorted(reasons) == sorted(["declined", "cancelled", "timeout", "offline", "busy"])

    run(go())


def test_glare_is_resolved_by_user_id(server):
    srv = start(server)

    async def go():
        a = await srv.ws_login("gov4401")
        b = await srv.ws_login("gov440106")
        ida, idb = uid(srv, "gov4401"), uid(srv, "gov440106")
        low, high = (a, b) if ida < idb else (b, a)
        low_name, high_name = ("gov4401", "gov440106") if ida < idb else ("gov440106", "gov4401")
        # the higher id calls first, then the lower id calls back: the lower wins
        first = await invite(high, srv, low_name)
        await low.next_event("call.incoming")
        second = await invite(low, srv, high_name)
        assert second["ok"], second
        ev = await ended(high, first["call_id"], "busy")
        await ended(low, first["call_id"], "busy")
        inc = await high.next_event("call.incoming")
        assert inc["call_id"] == second["call_id"]
        await low.ok("call.cancel", call_id=second["call_id"])
        await ended(high, second["call_id"], "cancelled")
        await ended(low, second["call_id"], "cancelled")
        # the lower id calls first: the higher id's invite yields
        first = await invite(low, srv, high_name)
        await high.next_event("call.incoming")
        second = await invite(high, srv, low_name)
        assert_err(second, "conflict")
        assert second["call_id"] == first["call_id"]
        await low.no_event("call.incoming", within=0.3)
        await high.ok("call.accept", call_id=first["call_id"], sdp=ANSWER)
        await low.next_event("call.accepted")
        await low.ok("call.hangup", call_id=first["call_id"])
        del ev
        await a.close()
        await b.close()

    run(go())


def test_who_may_call_whom(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov440106")
        far = await srv.ws_login("gov4403")
        boss = await srv.ws_login("boss")
        carl = await srv.ws_login("carl")
        tom = await srv.ws_login("tom")
        dave = await srv.ws_login("dave")
        # out of jurisdiction: nobody rings
        assert_err(await invite(gov, srv, "carl"), "forbidden")
        assert_err(await invite(gov, srv, enterprise="e2"), "forbidden")
        assert_err(await invite(far, srv, "boss"), "forbidden")
        await carl.no_event("call.incoming", within=0.3)
        await boss.no_event("call.incoming", within=0.1)
        # corp to corp, corp to a regulator that does not cover it
        assert_err(await invite(boss, srv, "carl"), "forbidden")
        assert_err(await invite(boss, srv, "gov4403"), "forbidden")
        assert_err(await invite(dave, srv, "gov440106"), "forbidden")
        assert_err(await invite(boss, srv, enterprise="e1"), "forbidden")
        await far.no_event("call.incoming", within=0.3)
        # allowed: gov to its carrier, corp and trs calling back their regulator,
        # gov to gov anywhere
        for caller, callee, ring in ((gov, "tom", tom), (boss, "gov440106", gov),
                                     (tom, "gov440106", gov), (gov, "gov4403", far),
                                     (dave, "gov4403", far)):
            r = await invite(caller, srv, callee)
            assert r["ok"], r
            assert (await ring.next_event("call.incoming"))["call_id"] == r["call_id"]
            await caller.ok("call.cancel", call_id=r["call_id"])
            await ended(caller, r["call_id"], "cancelled")
            await ended(ring, r["call_id"], "cancelled")
        # bad requests
        assert_err(await invite(gov, srv, "gov440106"), "bad_request")  # yourself
        r = await gov.request("call.invite", to={"user": "u_nobody"}, sdp=OFFER)
        assert_err(r, "not_found")
        r = await gov.request("call.invite", to={}, sdp=OFFER)
        assert_err(r, "bad_request")
        r = await gov.request("call.invite", to={"user": uid(srv, "boss")}, sdp=5)
        assert_err(r, "bad_request")
        r = await gov.request("call.invite", to="boss", sdp=OFFER)
        assert_err(r, "bad_request")
        r = await gov.request("call.accept", call_id="c_nope", sdp=ANSWER)
        assert_err(r, "not_found")
        r = await gov.request("call.hangup", call_id=7)
        assert_err(r, "bad_request")
        for c in (gov, far, boss, carl, tom, dave):
            await c.close()

    run(go())
    audit = srv.ctl("audit", "list", check=True).stdout
    assert "forbidden" in audit


def test_third_parties_cannot_touch_a_call(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        safety = await srv.ws_login("safety")
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        for t, f in (("call.accept", {"sdp": ANSWER}), ("call.cancel", {}),
                     ("call.hangup", {}), ("call.decline", {}),
                     ("call.candidate", {"candidate": None}), ("call.resume", {})):
            r = await safety.request(t, call_id=call_id, **f)
            assert r["ok"] is False, (t, r)
        await boss.ok("call.accept", call_id=call_id, sdp=ANSWER)
        r = await safety.request("call.renegotiate", call_id=call_id, sdp=OFFER,
                                 sdp_type="offer")
        assert_err(r, "forbidden")
        r = await boss.request("call.renegotiate", call_id=call_id, sdp=OFFER, sdp_type="pranswer")
        assert_err(r, "bad_request")
        await gov.ok("call.hangup", call_id=call_id)
        tok = srv.token("safety")
        assert srv.http("GET", f"/api/v1/calls/{call_id}", token=tok).status == 200  # own plant
        tok = srv.token("carl")
        assert srv.http("GET", f"/api/v1/calls/{call_id}", token=tok).status == 404
        for c in (gov, boss, safety):
            await c.close()

    run(go())


def test_limits_sdp_candidates_calls_and_invite_rate(server):
    srv = start(server, {"call_max_sdp": "2048", "call_max_candidates": "3",
                         "calls_per_user": "2", "invites_per_min": "4"})

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        safety = await srv.ws_login("safety")
        r = await gov.request("call.invite", to={"user": uid(srv, "boss")}, sdp="x" * 2049)
        assert_err(r, "too_large")
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        for _ in range(3):
            await gov.ok("call.candidate", call_id=call_id, candidate=None)
        assert_err(await gov.request("call.candidate", call_id=call_id, candidate=None),
                   "too_large")
        # second concurrent call is fine, a third is refused
        c2 = (await invite(gov, srv, "safety"))["call_id"]
        assert_err(await invite(gov, srv, "clerk"), "busy")
        await gov.ok("call.cancel", call_id=call_id)
        await gov.ok("call.cancel", call_id=c2)
        await ended(gov, call_id, "cancelled")
        await ended(gov, c2, "cancelled")
        # 4 invites per minute; the refusal for busy took none: two left
        for _ in range(2):
            r = await invite(gov, srv, "clerk")
            assert r["ok"], r
            await ended(gov, r["call_id"], "offline")
        assert_err(await invite(gov, srv, "clerk"), "rate_limited")
        # the server keeps serving
        await gov.ok("ping")
        for c in (gov, boss, safety):
            await c.close()

    run(go())


def test_resume_after_a_drop_and_grace_expiry(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401", device_id="gov-phone")
        boss = await srv.ws_login("boss", device_id="boss-phone")
        call_id = await answered(gov, boss, srv, "boss")
        # the plant's phone drops (Wi-Fi to 4G) and comes back
        await boss.close()
        await gov.next_event("call.peer_disconnected", timeout=5)
        boss = await srv.ws_login("boss", device_id="boss-phone")
        r = await boss.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "callee" and r["sdp"] == OFFER
        await gov.next_event("call.peer_reconnected")
        await boss.ok("call.renegotiate", call_id=call_id, sdp=OFFER, sdp_type="offer")
        assert (await gov.next_event("call.renegotiate"))["sdp_type"] == "offer"
        # the caller drops and does not come back within call_grace_s=2
        await gov.close()
        await boss.next_event("call.peer_disconnected")
        await ended(boss, call_id, "failed", timeout=6)
        await boss.close()

    run(go())


def test_a_device_that_comes_online_while_ringing_rings(server):
    srv = start(server, {"ring_timeout_s": "10"})

    async def go():
        gov = await srv.ws_login("gov4401")
        phone = await srv.ws_login("boss", device_id="phone")
        call_id = (await invite(gov, srv, "boss"))["call_id"]
        await phone.next_event("call.incoming")
        late = await srv.ws_login("boss", device_id="pad")
        ev = await late.next_event("call.incoming")
        assert ev["call_id"] == call_id
        # the only ringing devices go away: unreachable after the grace period
        await phone.close()
        await late.close()
        await ended(gov, call_id, "unreachable", timeout=6)
        await gov.close()

    run(go())


def test_ice_servers_carry_turn_rest_credentials(server):
    secret = "s3cret-for-test"
    srv = start(server, {"stun_urls": "stun:127.0.0.1:3478",
                         "turn_urls": "turn:127.0.0.1:3478?transport=udp, turn:127.0.0.1:3478?transport=tcp",
                         "turn_secret": secret, "turn_ttl_s": "600"})

    async def go():
        gov = await srv.ws_login("gov4401")
        r = await gov.ok("ice.servers")
        stun, turn = r["ice_servers"]
        assert stun == {"urls": ["stun:127.0.0.1:3478"]}
        assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp",
                                "turn:127.0.0.1:3478?transport=tcp"]
        expiry, who = turn["username"].split(":", 1)
        assert who == uid(srv, "gov4401")
        assert abs(int(expiry) - (time.time() + 600)) < 30
        want = base64.b64encode(hmac.new(secret.encode(), turn["username"].encode(),
                                         hashlib.sha1).digest()).decode()
        assert turn["credential"] == want
        boss = await srv.ws_login("boss")
        r = await invite(gov, srv, "boss")
        assert len(r["ice_servers"]) == 2
        inc = await boss.next_event("call.incoming")
        assert inc["ice_servers"][1]["username"].endswith(":" + uid(srv, "boss"))
        await gov.ok("call.cancel", call_id=r["call_id"])
        await gov.close()
        await boss.close()

    run(go())
    assert secret not in srv.all_stderr()


def test_calls_are_listed_within_jurisdiction(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov440106")
        dave = await srv.ws_login("dave")
        far = await srv.ws_login("gov4403")
        r1 = await invite(gov, srv, "boss")  # offline
        r2 = await invite(far, srv, "dave")
        await dave.next_event("call.incoming")
        await far.ok("call.cancel", call_id=r2["call_id"])
        for c in (gov, dave, far):
            await c.close()
        return r1["call_id"], r2["call_id"]

    c1, c2 = run(go())
    t = srv.token("gov4401")
    ids = {c["id"] for c in srv.http("GET", "/api/v1/calls", token=t).json["calls"]}
    assert c1 in ids and c2 not in ids
    ids = {c["id"] for c in
           srv.http("GET", "/api/v1/calls?enterprise=e3", token=t).json["calls"]}
    assert ids == set()
    t44 = srv.token("gov4403")
    got = srv.http("GET", "/api/v1/calls?enterprise=e3", token=t44).json["calls"]
    assert [c["id"] for c in got] == [c2]
    got = srv.http("GET", f"/api/v1/calls?user={uid(srv, 'dave')}", token=t44).json["calls"]
    assert [c["id"] for c in got] == [c2]
    now = int(time.time() * 1000)
    got = srv.http("GET", f"/api/v1/calls?from={now + 60000}", token=t44).json["calls"]
    assert got == []
    r = srv.http("GET", "/api/v1/calls?limit=0", token=t44)
    assert r.status == 400
    assert srv.http("GET", "/api/v1/calls").status == 401
    tdave = srv.token("dave")
    got = srv.http("GET", "/api/v1/calls", token=tdave).json["calls"]
    assert [c["id"] for c in got] == [c2]
    assert srv.http("GET", f"/api/v1/calls/{c1}", token=tdave).status == 404


@single_node  # several nodes: test_cluster.py, an orphaned call is ended by a live node
def test_open_calls_are_closed_as_failed_after_a_crash(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        call_id = await answered(gov, boss, srv, "boss")
        return call_id

    call_id = run(go())
    srv.kill9()
    srv.start()
    t = srv.token("gov4401")
    call = srv.http("GET", f"/api/v1/calls/{call_id}", token=t).json["call"]
    assert call["state"] == "ended" and call["end_reason"] == "failed"
    assert call["answered_by"]["user"] == uid(srv, "boss")


def test_only_checked_fields_are_relayed(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        r = await gov.request("call.invite", to={"user": uid(srv, "boss"), "junk": "x" * 5000},
                              sdp=OFFER, media={"audio": True, "video": False}, extra="y")
        assert r["ok"], r
        inc = await boss.next_event("call.incoming")
        assert inc["to"] == {"user": uid(srv, "boss")}
        assert inc["media"] == {"audio": True, "video": False}
        assert "extra" not in inc
        cand = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0",
                "sdpMLineIndex": 0, "usernameFragment": "abcd", "evil": {"x": 1}}
        await gov.ok("call.candidate", call_id=r["call_id"], candidate=cand)
        await boss.ok("call.accept", call_id=r["call_id"], sdp=ANSWER)
        got = (await boss.next_event("call.candidate"))["candidate"]
        assert got == {k: v for k, v in cand.items() if k != "evil"}
        r2 = await gov.request("call.candidate", call_id=r["call_id"], candidate=[1, 2])
        assert_err(r2, "bad_request")
        r2 = await gov.request("call.candidate", call_id=r["call_id"],
                               candidate={"candidate": 5})
        assert_err(r2, "bad_request")
        await gov.ok("call.hangup", call_id=r["call_id"])
        await gov.close()
        await boss.close()

    run(go())


def test_missed_calls_leave_a_durable_push(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("gov4401")
        # offline: the push waits in safety's inbox
        off = (await invite(gov, srv, "safety"))["call_id"]
        await ended(gov, off, "offline")
        # timeout: the ringing device gets the push at once, after call.ended
        boss = await srv.ws_login("boss")
        late = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        await ended(boss, late, "timeout", timeout=8)
        ev = await boss.next_event("push")
        assert ev["kind"] == "call_missed" and ev["payload"]["call_id"] == late
        assert ev["payload"]["reason"] == "timeout"
        assert ev["payload"]["from"]["id"] == uid(srv, "gov4401")
        # declined and answered calls leave none
        c = (await invite(gov, srv, "boss"))["call_id"]
        await boss.next_event("call.incoming")
        await boss.ok("call.decline", call_id=c)
        await boss.no_event("push", within=0.5)
        await gov.close()
        await boss.close()
        return off

    off = run(go())
    srv.restart()  # durable

    async def later():
        safety = await srv.ws_login("safety")
        await safety.ok("push.resume", after_seq=0)
        ev = await safety.next_event("push")
        assert ev["kind"] == "call_missed" and ev["payload"]["call_id"] == off
        assert ev["payload"]["reason"] == "offline" and ev["priority"] == "high"
        await safety.close()

    run(later())
