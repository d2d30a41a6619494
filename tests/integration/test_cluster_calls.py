"""Calls across the nodes of a cluster: a call held by one node and
answered through another, busy, glare and limits counted on every node,
and what becomes of a call when the node holding it dies (taken over from
its record, rung on, or ended for everyone in it). Runs when
YJT_TEST_REDIS names a Redis server (ctest's integration_cluster_* tests
start one)."""

import asyncio
import json
import time

import pytest

from calllib import answered_call, hang_up
from clusterlib import ANSWER, CALL_USERS, OFFER, cluster, redis_cli, wait_until_async
from conftest import REDIS_URL, metric, run, user, wait_until
from test_calls_sfu import device_sdp, fingerprint

pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="needs Redis (YJT_TEST_REDIS)")


def test_call_between_nodes(server):
    """The caller on n1, the callee's devices on n2 and n3: ringing,
    answered elsewhere, candidates both ways, a drop and a resume on
    another node, and the hang-up."""
    n1, n2, n3 = cluster(server, users=CALL_USERS, call_grace_s=5)
    boss = n1.users["boss"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b2 = await n2.ws_login("boss", device_id="boss-phone")
        b3 = await n3.ws_login("boss", device_id="boss-desk")
        r = await gov.ok("call.invite", to={"user": boss}, sdp=OFFER)
        call_id = r["call_id"]
        # an early candidate from the caller is held, then delivered
        await gov.ok("call.candidate", call_id=call_id, candidate={"candidate": "c-early"})
        for b in (b2, b3):
            ev = await b.next_event("call.incoming")
            assert ev["call_id"] == call_id and ev["sdp"] == OFFER
        await b2.ok("call.ringing", call_id=call_id)
        await gov.next_event("call.ringing")
        await b2.ok("call.accept", call_id=call_id, sdp=ANSWER)
        assert (await gov.next_event("call.accepted"))["sdp"] == ANSWER
        assert (await b3.next_event("call.answered_elsewhere"))["call_id"] == call_id
        assert (await b2.next_event("call.candidate"))["candidate"]["candidate"] == "c-early"
        await b2.ok("call.candidate", call_id=call_id, candidate={"candidate": "c-callee"})
        assert (await gov.next_event("call.candidate"))["candidate"]["candidate"] == "c-callee"
        # a request about the call from a user not in it is refused, wherever it is
        outsider = await n3.ws_login("alice", device_id="alice-phone")
        r = await outsider.request("call.hangup", call_id=call_id)
        assert r["ok"] is False and r["error"]["code"] in ("forbidden", "not_found"), r
        await outsider.close()
        # the callee's phone drops and comes back on n3
        await b2.close()
        await gov.next_event("call.peer_disconnected", timeout=5)
        b2 = await n3.ws_login("boss", device_id="boss-phone")
        r = await b2.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "callee"
        await gov.next_event("call.peer_reconnected")
        await b2.ok("call.hangup", call_id=call_id)
        for c in (gov, b2):
            ev = await c.next_event("call.ended")
            assert ev["call_id"] == call_id and ev["reason"] == "hangup", ev
        for c in (gov, b2, b3):
            await c.close()

    run(body())


def test_node_that_never_saw_a_call_reads_its_holder_without_waiting(server):
    """A call between two users of one node is known to that node alone
    (no event crossed the bus): requests about it on another node are
    sent to the call's node after a read of where it is held that does
    not hold that node's loop."""
    n1, _, n3 = cluster(server, users=CALL_USERS, call_grace_s=5)
    boss = n1.users["boss"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b1 = await n1.ws_login("boss", device_id="boss-phone")
        outsider = await n3.ws_login("alice", device_id="alice-phone")
        call_id = (await gov.ok("call.invite", to={"user": boss}, sdp=OFFER))["call_id"]
        await b1.next_event("call.incoming")
        waits = metric(n3.metrics(), "yjt_redis_loop_waits_total") or 0
        replies = await asyncio.gather(*(outsider.request(t, call_id=call_id) for t in
                                         ("call.hangup", "call.accept", "call.decline")))
        for r in replies:
            assert r["ok"] is False and r["error"]["code"] in ("forbidden", "conflict"), r
        assert (metric(n3.metrics(), "yjt_redis_loop_waits_total") or 0) == waits
        # the call is untouched: its callee answers it
        await b1.ok("call.accept", call_id=call_id, sdp=ANSWER)
        await gov.next_event("call.accepted")
        await gov.ok("call.hangup", call_id=call_id)
        assert (await b1.next_event("call.ended"))["reason"] == "hangup"
        for c in (gov, b1, outsider):
            await c.close()

    run(body())


def test_callee_node_killed_mid_call(server):
    """The node holding the callee's phone is killed with -9 during the
    call: the phone reconnects to another node and resumes the call, which
    its owner (the caller's node) kept."""
    n1, n2, n3 = cluster(server, users=CALL_USERS, call_grace_s=20)
    boss = n1.users["boss"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("boss", device_id="boss-phone")
        call_id, _ = await answered_call(gov, b, {"user": boss}, OFFER, ANSWER)
        n2.kill9()
        # the phone's node is gone: its beat stops, and its devices go
        # offline for the owner when their connection is known dead
        b = await n3.ws_login("boss", device_id="boss-phone")
        r = await b.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "callee"
        await b.ok("call.candidate", call_id=call_id, candidate={"candidate": "after"})
        assert (await gov.next_event("call.candidate"))["candidate"]["candidate"] == "after"
        await gov.ok("call.hangup", call_id=call_id)
        ev = await b.next_event("call.ended")
        assert ev["reason"] == "hangup"
        for c in (gov, b):
            await c.close()

    run(body())


def test_caller_node_killed_mid_call(server):
    """The node holding an answered call is killed with -9: while it still
    looks alive a request about the call waits for it (unavailable after
    5 s); once its beat is stale, the first node a party resumes through
    takes the call over from its record, both parties resume there, then
    renegotiate and talk on. An SFU call still ringing rings on with that
    node's media: its device is rung again with the new offer, and the
    caller resumes to the new answer."""
    n1, n2, n3 = cluster(server, users=CALL_USERS + [user("gov2", "gov", "4401")],
                         call_grace_s=30, cluster_beat_s=1, cluster_dead_s=3)
    boss = n1.users["boss"]
    alice = n1.users["alice"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("boss", device_id="boss-phone")
        a = await n3.ws_login("alice", device_id="alice-phone")
        call_id, _ = await answered_call(gov, b, {"user": boss}, OFFER, ANSWER)
        sfu = (await gov.ok("call.invite", to={"user": alice}, mode="sfu",
                            sdp=device_sdp("actpass", fingerprint())))["call_id"]
        sfu_cert = sdp_fingerprint((await a.next_event("call.incoming"))["sdp"])
        n1.kill9()
        r = await b.request("call.candidate", call_id=call_id,
                            candidate={"candidate": "early"}, timeout=10)
        assert r["ok"] is False and r["error"]["code"] in ("unavailable", "not_found"), r
        await asyncio.sleep(3.5)
        # the callee resumes through n3: n3 takes the call over
        b3 = await n3.ws_login("boss", device_id="boss-phone")
        r = await b3.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "callee", r
        # the caller reconnects to n2 and resumes: forwarded to n3
        g2 = await n2.ws_login("gov4401", device_id="gov-phone")
        r = await g2.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "caller", r
        await b3.next_event("call.peer_reconnected")
        # an ICE restart, then the call goes on
        await g2.ok("call.renegotiate", call_id=call_id, sdp_type="offer", sdp=OFFER)
        ev = await b3.next_event("call.renegotiate")
        assert ev["sdp_type"] == "offer", ev
        await b3.ok("call.candidate", call_id=call_id, candidate={"candidate": "after"})
        assert (await g2.next_event("call.candidate"))["candidate"]["candidate"] == "after"
        # the SFU call still ringing rings on through a live node: its
        # ringing device is rung again with that node's offer, and its
        # answer reaches the caller as that node's answer to its offer
        ev = await a.next_event("call.incoming", timeout=10)
        assert ev["call_id"] == sfu and sdp_fingerprint(ev["sdp"]) != sfu_cert, ev
        assert "a=setup:actpass" in ev["sdp"]
        new_cert = sdp_fingerprint(ev["sdp"])
        await a.ok("call.accept", call_id=sfu, sdp=device_sdp("active", fingerprint()))
        r = await g2.ok("call.resume", call_id=sfu)
        assert r["state"] == "active" and "a=setup:passive" in r["sdp"], r
        assert sdp_fingerprint(r["sdp"]) == new_cert
        await g2.ok("call.hangup", call_id=sfu)
        assert (await a.next_event("call.ended"))["reason"] == "hangup"
        await g2.ok("call.hangup", call_id=call_id)
        assert (await b3.next_event("call.ended"))["reason"] == "hangup"
        rec = n2.http("GET", f"/api/v1/calls?user={boss}", token=n2.token("gov4401")).json
        mine = [x for x in rec["calls"] if x["id"] == call_id]
        assert mine and mine[0]["end_reason"] == "hangup" and mine[0]["answered_by"]["user"] == boss
        for c in (gov, b, a, b3, g2):
            await c.close()

    run(body())


def test_ringing_call_rings_on_when_its_node_dies(server):
    """The caller's node is killed with -9 while two calls ring: once it is
    known dead another node takes both over from their records. The
    first is answered on one callee device (the other hears it was
    answered elsewhere, and no device still ringing is rung twice); the
    caller reconnects to another node and resumes it, answered, with the
    callee's answer. The second rings out: its callee hears it timed out
    and finds a missed-call push."""
    n1, n2, n3 = cluster(server, users=CALL_USERS, call_grace_s=30, cluster_beat_s=1,
                         cluster_dead_s=2, ring_timeout_s=12)
    alice, bob = n1.users["alice"], n1.users["bob"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        a2 = await n2.ws_login("alice", device_id="alice-phone")
        a3 = await n3.ws_login("alice", device_id="alice-pad")
        b = await n3.ws_login("bob", device_id="bob-phone")
        t0 = time.monotonic()
        first = (await gov.ok("call.invite", to={"user": alice}, sdp=OFFER))["call_id"]
        second = (await gov.ok("call.invite", to={"user": bob}, sdp=OFFER))["call_id"]
        for dev in (a2, a3):
            assert (await dev.next_event("call.incoming"))["call_id"] == first
        assert (await b.next_event("call.incoming"))["call_id"] == second
        await a2.ok("call.ringing", call_id=first)
        await a2.ok("call.candidate", call_id=first, candidate={"candidate": "early"})
        n1.kill9()
        # taken over without anyone asking (a sweep of the first node alive)

        def claimed():
            key = f"{n2.settings['redis_prefix']}d:call_takeovers"
            return all(redis_cli("HEXISTS", key, c).strip() == "1" for c in (first, second))
        await wait_until_async(lambda: asyncio.to_thread(claimed), bool, timeout=10)
        for dev in (a2, a3, b):
            await dev.no_event("call.incoming", within=0.5)
        await a2.ok("call.accept", call_id=first, sdp=ANSWER)
        assert (await a3.next_event("call.answered_elsewhere"))["call_id"] == first
        g = await n2.ws_login("gov4401", device_id="gov-phone")
        r = await g.ok("call.resume", call_id=first)
        assert r["state"] == "active" and r["role"] == "caller" and r["sdp"] == ANSWER, r
        await g.ok("call.candidate", call_id=first, candidate={"candidate": "after"})
        assert (await a2.next_event("call.candidate"))["candidate"]["candidate"] == "after"
        await g.ok("call.hangup", call_id=first)
        assert (await a2.next_event("call.ended"))["reason"] == "hangup"
        # the second rings out in its own time, not the takeover's
        ev = await b.next_event("call.ended", timeout=15)
        assert ev["call_id"] == second and ev["reason"] == "timeout", ev
        # (rung anew at the takeover, it would end 2 s or more later)
        assert time.monotonic() - t0 < 13.5, "rang its full time again after the takeover"
        ev = await b.next_event("push")
        assert ev["kind"] == "call_missed" and ev["payload"]["call_id"] == second, ev
        for c in (gov, a2, a3, b, g):
            await c.close()
        t = n2.token("gov4401")
        for call_id, reason in ((first, "hangup"), (second, "timeout")):
            rec = n2.http("GET", f"/api/v1/calls/{call_id}", token=t).json["call"]
            assert rec["end_reason"] == reason and "sdp" not in json.dumps(rec), rec

    run(body())


def test_ringing_call_whose_ring_time_passed_with_its_node_ends_timeout(server):
    """The caller's node dies and its ringing call's ring time is over by
    the time another node takes it over: the call ends `timeout` at once,
    the callee's device hears it and finds a missed-call push."""
    n1, n2 = cluster(server, n=2, users=CALL_USERS, cluster_beat_s=1, cluster_dead_s=2,
                     ring_timeout_s=1)
    bob = n1.users["bob"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("bob", device_id="bob-phone")
        call_id = (await gov.ok("call.invite", to={"user": bob}, sdp=OFFER))["call_id"]
        assert (await b.next_event("call.incoming"))["call_id"] == call_id
        n1.kill9()
        ev = await b.next_event("call.ended", timeout=15)
        assert ev["call_id"] == call_id and ev["reason"] == "timeout", ev
        ev = await b.next_event("push")
        assert ev["kind"] == "call_missed" and ev["payload"]["call_id"] == call_id, ev
        await b.no_event("call.incoming", within=0.5)  # not rung again
        await b.close()
        rec = n2.http("GET", f"/api/v1/calls/{call_id}", token=n2.token("gov4401")).json["call"]
        assert rec["end_reason"] == "timeout", rec

    run(body())


def test_party_online_when_its_call_is_taken_over_need_not_resume(server):
    """A peer-to-peer call whose node dies: the party on a live node still
    has its connection and its media, so the node that takes the call over
    counts it there (and tells it the other party dropped); only the party
    whose server died must resume. After the grace period the call still
    goes on. The takeover (the claim, the record, the offer, the devices
    of its people) does not hold the loop of the node that makes it."""
    n1, n2 = cluster(server, n=2, users=CALL_USERS, cluster_beat_s=1, cluster_dead_s=2,
                     call_grace_s=3)
    boss = n1.users["boss"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("boss", device_id="boss-phone")
        call_id, _ = await answered_call(gov, b, {"user": boss}, OFFER, ANSWER)
        waits = metric(n2.metrics(), "yjt_redis_loop_waits_total") or 0
        n1.kill9()
        await b.next_event("call.peer_disconnected", timeout=15)
        g2 = await n2.ws_login("gov4401", device_id="gov-phone")
        r = await g2.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "caller", r
        await b.next_event("call.peer_reconnected")
        await asyncio.sleep(4)  # past the grace period: nobody is missing
        await g2.ok("call.renegotiate", call_id=call_id, sdp_type="offer", sdp=OFFER)
        assert (await b.next_event("call.renegotiate"))["sdp_type"] == "offer"
        await b.ok("call.hangup", call_id=call_id)
        assert (await g2.next_event("call.ended"))["reason"] == "hangup"
        assert (metric(n2.metrics(), "yjt_redis_loop_waits_total") or 0) == waits
        for c in (b, g2):
            await c.close()

    run(body())


async def answered_sfu_call(gov, callee, callee_id, device_fp):
    """gov calls callee_id through the SFU and callee's device (with
    certificate fingerprint device_fp) answers: the call's id, and the
    certificate of the server that offered."""
    call_id = (await gov.ok("call.invite", to={"user": callee_id}, mode="sfu",
                            sdp=device_sdp("actpass", fingerprint())))["call_id"]
    cert = sdp_fingerprint((await callee.next_event("call.incoming"))["sdp"])
    await callee.ok("call.accept", call_id=call_id, sdp=device_sdp("active", device_fp))
    await gov.next_event("call.accepted")
    return call_id, cert


def sdp_fingerprint(sdp):
    return next(line.split(" ", 1)[1] for line in sdp.split("\r\n")
                if line.startswith("a=fingerprint:"))


def test_sfu_call_whose_node_dies_goes_on_through_another(server):
    """An answered SFU call with two regulators watching, one on each node:
    the call's node is killed with -9. The other node takes the call over
    and opens a room of its own: the callee and the viewer still online hear
    call.media_lost, the callee's next offer is answered by the new server
    (its own certificate), the viewer joins again in its place, and the
    caller resumes through the live node, is told the same and offers anew.
    The viewer whose server died is out (offline); the record counts the
    restart; the call ends as any other."""
    n1, n2 = cluster(server, n=2, users=CALL_USERS + [user("prov", "gov", "44"),
                                                      user("city", "gov", "4401")],
                     cluster_beat_s=1, cluster_dead_s=2, call_grace_s=20)
    boss, prov_id, city_id = n1.users["boss"], n1.users["prov"], n1.users["city"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("boss", device_id="boss-phone")
        prov = await n2.ws_login("prov", device_id="prov-pad")
        city = await n1.ws_login("city", device_id="city-pad")
        dev_fp = fingerprint()
        call_id, cert1 = await answered_sfu_call(gov, b, boss, dev_fp)
        prov_fp = fingerprint()
        await prov.ok("call.join", call_id=call_id,
                      sdp=device_sdp("actpass", prov_fp, ufrag="viewU"))
        await city.ok("call.join", call_id=call_id,
                      sdp=device_sdp("actpass", fingerprint(), ufrag="cityU"))
        n1.kill9()
        # the devices still online hear that their media must start again
        await b.next_event("call.peer_disconnected", timeout=15)
        await b.next_event("call.media_lost", timeout=5)
        await prov.next_event("call.media_lost", timeout=5)
        # an answer to nothing is refused; an ICE restart offer is answered
        # by the new server
        r = await b.request("call.renegotiate", call_id=call_id, sdp_type="answer",
                            sdp=device_sdp("active", dev_fp))
        assert r["ok"] is False and r["error"]["code"] == "conflict", r
        await b.ok("call.renegotiate", call_id=call_id, sdp_type="offer",
                   sdp=device_sdp("actpass", dev_fp, ufrag="newU"))
        ev = await b.next_event("call.renegotiate")
        assert ev["sdp_type"] == "answer" and "a=setup:passive" in ev["sdp"], ev
        cert2 = sdp_fingerprint(ev["sdp"])
        assert cert2 != cert1
        # the viewer joins again, in its place (no second entry, no event)
        r = await prov.request("call.join", call_id=call_id, role="speaker",
                               sdp=device_sdp("actpass", prov_fp, ufrag="viewV"))
        assert r["ok"] is False and r["error"]["code"] == "conflict", r
        r = await prov.ok("call.join", call_id=call_id,
                          sdp=device_sdp("actpass", prov_fp, ufrag="viewV"))
        assert sdp_fingerprint(r["sdp"]) == cert2 and "a=sendonly" in r["sdp"], r
        assert {p["role"] for p in r["participants"]} == {"caller", "callee", "viewer"}, r
        # the caller comes back through the live node
        g2 = await n2.ws_login("gov4401", device_id="gov-phone")
        r = await g2.ok("call.resume", call_id=call_id)
        assert r["state"] == "active" and r["role"] == "caller" and "sdp" not in r, r
        await g2.next_event("call.media_lost")
        await b.next_event("call.peer_reconnected")
        await g2.ok("call.renegotiate", call_id=call_id, sdp_type="offer",
                    sdp=device_sdp("actpass", fingerprint(), ufrag="gov2"))
        ev = await g2.next_event("call.renegotiate")
        assert ev["sdp_type"] == "answer" and sdp_fingerprint(ev["sdp"]) == cert2, ev
        # a resume now hands back the new server's answer
        r = await g2.ok("call.resume", call_id=call_id)
        assert r["sdp"] == ev["sdp"], r
        rec = n2.http("GET", f"/api/v1/calls/{call_id}", token=n2.token("gov4401")).json["call"]
        assert rec["state"] == "active" and rec["media_restarts"] == 1, rec
        joined = {j["user"]: j for j in rec["joined"]}
        assert "left" not in joined[prov_id] and joined[city_id]["left"] == "offline", rec
        await g2.ok("call.hangup", call_id=call_id)
        for dev in (b, prov):
            ev = await dev.next_event("call.ended", timeout=5)
            assert ev["call_id"] == call_id and ev["reason"] == "hangup", ev
        rec = n2.http("GET", f"/api/v1/calls/{call_id}", token=n2.token("gov4401")).json["call"]
        assert rec["end_reason"] == "hangup" and joined_left(rec, prov_id) == "ended", rec
        for c in (b, prov, g2):
            await c.close()

    run(body())


def joined_left(rec, user_id):
    return [j for j in rec["joined"] if j["user"] == user_id][-1].get("left")


def test_sfu_call_taken_over_ends_when_media_do_not_come_back(server):
    """The same takeover, but the callee (online) never offers again and
    the viewer never joins again: within the grace period the viewer is
    out (failed) and the call ends failed, as when a party does not come
    back. A node without a media server could not have taken it over: the
    call would have ended at once (the ringing case is tested above)."""
    n1, n2 = cluster(server, n=2, users=CALL_USERS + [user("prov", "gov", "44")],
                     cluster_beat_s=1, cluster_dead_s=2, call_grace_s=4)
    boss, prov_id = n1.users["boss"], n1.users["prov"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("boss", device_id="boss-phone")
        prov = await n2.ws_login("prov", device_id="prov-pad")
        call_id, _ = await answered_sfu_call(gov, b, boss, fingerprint())
        await prov.ok("call.join", call_id=call_id,
                      sdp=device_sdp("actpass", fingerprint(), ufrag="viewU"))
        n1.kill9()
        await b.next_event("call.media_lost", timeout=15)
        t0 = time.monotonic()
        ev = await prov.next_event("call.participant_left", timeout=10)
        assert ev["user_id"] == prov_id and ev["reason"] == "failed", ev
        ev = await b.next_event("call.ended", timeout=10)
        assert ev["call_id"] == call_id and ev["reason"] == "failed", ev
        assert time.monotonic() - t0 < 8
        rec = n2.http("GET", f"/api/v1/calls/{call_id}", token=n2.token("gov4401")).json["call"]
        assert rec["end_reason"] == "failed" and joined_left(rec, prov_id) == "failed", rec
        for c in (b, prov):
            await c.close()

    run(body())


def test_callee_busy_in_a_call_held_by_another_node(server):
    """alice answered a call held by n1; a regulator inviting her through n3
    hears busy, and rings her again once that call is over."""
    users = CALL_USERS + [user("gov2", "gov", "4401")]
    n1, n2, n3 = cluster(server, users=users)
    alice_id = n1.users["alice"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="g1")
        gov2 = await n3.ws_login("gov2", device_id="g2")
        alice = await n2.ws_login("alice", device_id="phone")
        first, _ = await answered_call(gov, alice, {"user": alice_id}, OFFER, ANSWER)
        await asyncio.sleep(0.3)  # the answer reaches n3 over the bus
        r = await gov2.ok("call.invite", to={"user": alice_id}, sdp=OFFER)
        ev = await gov2.next_event("call.ended")
        assert ev["call_id"] == r["call_id"] and ev["reason"] == "busy", ev
        await asyncio.sleep(0.3)
        # rung once, although her login's news may reach n1 after its
        # invite found her phone
        rang = [m.get("call_id") for m in alice.all_messages
                if isinstance(m, dict) and m.get("type") == "call.incoming"]
        assert rang == [first], rang
        await hang_up(gov, alice, first)
        await asyncio.sleep(0.3)  # the end reaches n3 over the bus
        r = await gov2.ok("call.invite", to={"user": alice_id}, sdp=OFFER)
        incoming = await alice.next_event("call.incoming")
        while incoming["call_id"] == first:
            incoming = await alice.next_event("call.incoming")
        assert incoming["call_id"] == r["call_id"]
        for c in (gov, gov2, alice):
            await c.close()

    run(body())


def test_call_of_a_dead_node_that_nobody_resumes_is_ended(server):
    """The node holding an answered call dies and neither party comes back:
    a live node ends the call's record as failed after the grace period."""
    n1, n2 = cluster(server, n=2, users=CALL_USERS, call_grace_s=2, cluster_beat_s=1,
                     cluster_dead_s=3)
    boss = n1.users["boss"]

    async def body():
        gov = await n1.ws_login("gov4401", device_id="gov-phone")
        b = await n2.ws_login("boss", device_id="boss-phone")
        call_id, _ = await answered_call(gov, b, {"user": boss}, OFFER, ANSWER)
        await b.close()
        return call_id

    call_id = run(body())
    n1.kill9()
    t = n2.token("gov4401")

    def ended():
        call = n2.http("GET", f"/api/v1/calls/{call_id}", token=t).json["call"]
        return call if call["state"] == "ended" else None
    call = wait_until(ended, 30, interval=0.5, what="the orphaned call ended")
    assert call["end_reason"] == "failed" and call["answered_by"]["user"] == boss


def test_glare_between_nodes_at_the_same_moment(server):
    """Two regulators invite each other through two nodes at once, before
    either node hears of the other's call: both nodes apply the same rule,
    and only the call made by the smaller user id rings on."""
    users = CALL_USERS + [user("gov2", "gov", "4401")]
    n1, n2 = cluster(server, n=2, users=users)
    ids = {name: n1.users[name] for name in ("gov4401", "gov2")}
    low, high = sorted(ids, key=ids.get)

    async def body():
        c = {low: await n1.ws_login(low, device_id="lo"),
             high: await n2.ws_login(high, device_id="hi")}
        replies = await asyncio.gather(
            c[low].request("call.invite", to={"user": ids[high]}, sdp=OFFER),
            c[high].request("call.invite", to={"user": ids[low]}, sdp=OFFER))
        kept = replies[0]
        assert kept["ok"], kept
        if replies[1]["ok"]:  # both rang: the higher id's call ends busy
            lost = replies[1]["call_id"]
            for name in (low, high):
                ev = await c[name].next_event("call.ended", timeout=5)
                while ev["call_id"] != lost:
                    ev = await c[name].next_event("call.ended", timeout=5)
                assert ev["reason"] == "busy", ev
        else:  # the low id's call was heard of first
            assert replies[1]["error"]["code"] == "conflict", replies[1]
            assert replies[1]["call_id"] == kept["call_id"]
        inc = await c[high].next_event("call.incoming")
        assert inc["call_id"] == kept["call_id"]
        await c[high].ok("call.accept", call_id=kept["call_id"], sdp=ANSWER)
        await c[low].next_event("call.accepted")
        await hang_up(c[low], c[high], kept["call_id"])
        for ws in c.values():
            await ws.close()

    run(body())


def test_a_request_the_bus_sends_twice_runs_once(server):
    """The bus sends again what it did not hear Redis take when its
    connection dropped: a forwarded call request can reach the call's node
    twice. A copy (put on the bus here by hand) is dropped, so a candidate
    reaches the other party once."""
    n1, n2 = cluster(server, n=2, users=CALL_USERS)
    boss = n1.users["boss"]
    prefix = n1.settings["redis_prefix"]

    def redis(*args):
        return json.loads(redis_cli("--json", *args))

    async def body():
        gov = await n1.ws_login("gov4401", device_id="g")
        b = await n2.ws_login("boss", device_id="b")
        call_id, _ = await answered_call(gov, b, {"user": boss}, OFFER, ANSWER)
        await b.ok("call.candidate", call_id=call_id, candidate={"candidate": "c-1"})
        assert (await gov.next_event("call.candidate"))["candidate"]["candidate"] == "c-1"
        entries = redis("XRANGE", prefix + "bus", "-", "+")
        sent = [dict(zip(f[::2], f[1::2])) for _, f in entries]
        req = [f for f in sent if f["t"] == "call.req" and "c-1" in f["d"]][-1]
        redis("XADD", prefix + "bus", "*", *[x for kv in req.items() for x in kv])
        await gov.no_event("call.candidate", within=1.0)
        # later requests still run
        await b.ok("call.candidate", call_id=call_id, candidate={"candidate": "c-2"})
        assert (await gov.next_event("call.candidate"))["candidate"]["candidate"] == "c-2"
        await hang_up(gov, b, call_id)
        for c in (gov, b):
            await c.close()

    run(body())


def test_calls_per_user_counts_calls_on_other_nodes(server):
    """A regulator calling from two devices on two nodes is held to
    calls_per_user over both: each node counts the calls ringing (call.ring)
    and answered (call.busy) on the others."""
    n1, n2, n3 = cluster(server, users=CALL_USERS, calls_per_user=2)
    ids = {name: n1.users[name] for name in ("alice", "bob", "boss")}

    async def body():
        g1 = await n1.ws_login("gov4401", device_id="g1")
        g2 = await n2.ws_login("gov4401", device_id="g2")
        callees = {name: await n3.ws_login(name, device_id=name) for name in ids}
        first = await g1.ok("call.invite", to={"user": ids["alice"]}, sdp=OFFER)
        await callees["alice"].next_event("call.incoming")
        await asyncio.sleep(0.3)  # n2 hears of it over the bus
        second = await g2.ok("call.invite", to={"user": ids["bob"]}, sdp=OFFER)
        await callees["bob"].next_event("call.incoming")
        r = await g2.request("call.invite", to={"user": ids["boss"]}, sdp=OFFER)
        assert r["ok"] is False and r["error"]["code"] == "busy", r
        await callees["alice"].ok("call.accept", call_id=first["call_id"], sdp=ANSWER)
        await g1.next_event("call.accepted")
        await asyncio.sleep(0.3)  # answered, it is counted through call.busy now
        r = await g2.request("call.invite", to={"user": ids["boss"]}, sdp=OFFER)
        assert r["ok"] is False and r["error"]["code"] == "busy", r
        await g2.ok("call.cancel", call_id=second["call_id"])
        await hang_up(g1, callees["alice"], first["call_id"])
        await asyncio.sleep(0.3)
        third = await g2.ok("call.invite", to={"user": ids["boss"]}, sdp=OFFER)
        assert (await callees["boss"].next_event("call.incoming"))["call_id"] == third["call_id"]
        await g2.ok("call.cancel", call_id=third["call_id"])
        for c in (g1, g2, *callees.values()):
            await c.close()

    run(body())
