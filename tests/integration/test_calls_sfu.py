"""Calls through the SFU ("mode":"sfu"), at the signaling level: the same
messages as a peer-to-peer call, but the caller gets the server's answer,
the callees the server's offer, and candidates go to the server, never to
the other party. Offers the server cannot take are refused with a reason
and ring nobody. (The browser suite makes real media flow through it.)"""

import secrets

from conftest import metric, run, user, wait_until

ENTERPRISES = [("e1", "Tianhe Chemicals", "440106", True)]
USERS = [
    user("gov4401", "gov", "4401", display_name="Guangzhou Inspector"),
    user("boss", "corp", "e1", position="principal"),
]


def fingerprint():
    return ":".join(f"{b:02X}" for b in secrets.token_bytes(32))


def device_sdp(setup, fp, ufrag="devU", pwd="devicepassworddevicepwd", video=True,
               codecs_audio="111", audio_map="a=rtpmap:111 opus/48000/2\r\n"):
    """An SDP as a browser writes it (no candidates: they trickle)."""
    mids = "0 1" if video else "0"
    s = ("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
         f"a=group:BUNDLE {mids}\r\na=msid-semantic: WMS st\r\n"
         f"m=audio 9 UDP/TLS/RTP/SAVPF {codecs_audio}\r\nc=IN IP4 0.0.0.0\r\n"
         "a=rtcp:9 IN IP4 0.0.0.0\r\n"
         f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n"
         f"a=fingerprint:sha-256 {fp}\r\na=setup:{setup}\r\na=mid:0\r\n"
         "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
         "a=sendrecv\r\na=msid:st ta\r\na=rtcp-mux\r\n"
         f"{audio_map}a=fmtp:111 minptime=10;useinbandfec=1\r\n"
         "a=ssrc:1111 cname:c\r\n")
    if video:
        s += ("m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\nc=IN IP4 0.0.0.0\r\n"
              f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
              f"a=fingerprint:sha-256 {fp}\r\na=setup:{setup}\r\na=mid:1\r\n"
              "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
              "a=extmap:3 http://www.ietf.org/id/"
              "draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
              "a=sendrecv\r\na=msid:st tv\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
              "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\n"
              "a=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n"
              "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
              "a=rtpmap:102 H264/90000\r\n"
              "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;"
              "profile-level-id=42e01f\r\n"
              "a=ssrc-group:FID 2222 3333\r\na=ssrc:2222 cname:c\r\na=ssrc:3333 cname:c\r\n")
    return s


CAND = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "sdpMid": "0", "sdpMLineIndex": 0}
# As Chromium writes its TCP candidates (it connects: RFC 6544 active, port 9).
TCP_CAND = {"candidate": "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active "
                         "generation 0 ufrag devU network-id 1",
            "sdpMid": "0", "sdpMLineIndex": 0}


def transports(sdp):
    """The (protocol, tcptype) of each candidate line of an SDP."""
    out = set()
    for c in attr(sdp, "candidate"):
        f = c.split()
        out.add((f[2].lower(), f[f.index("tcptype") + 1] if "tcptype" in f else None))
    return out


def caller_answer_to(server_offer, ufrag, fp):
    """A device's answer to an offer of the server: each section accepted
    as the server offered it, receiving what the server sends."""
    out = []
    for line in server_offer.split("\r\n"):
        if line.startswith(("a=candidate", "a=end-of-candidates", "a=ssrc", "a=msid:")):
            continue
        if line.startswith("a=ice-ufrag:"):
            line = f"a=ice-ufrag:{ufrag}"
        elif line.startswith("a=ice-pwd:"):
            line = "a=ice-pwd:devicepassworddevicepwd"
        elif line.startswith("a=fingerprint:"):
            line = f"a=fingerprint:sha-256 {fp}"
        elif line == "a=setup:actpass":
            line = "a=setup:active"
        elif line == "a=sendonly":
            line = "a=recvonly"
        out.append(line)
    return "\r\n".join(out)


def start(server, **settings):
    return server(enterprises=ENTERPRISES, users=USERS, settings=settings)


def assert_err(reply, code, says=None):
    assert reply["ok"] is False and reply["error"]["code"] == code, f"want {code}: {reply}"
    if says:
        assert says in reply["error"]["message"], reply


def attr(sdp, name):
    return [line[len(name) + 3:] for line in sdp.split("\r\n") if line.startswith(f"a={name}:")]


def test_sfu_call_negotiates_with_the_server(server):
    srv = start(server)
    caller_fp, callee_fp = fingerprint(), fingerprint()
    offer = device_sdp("actpass", caller_fp)

    async def go():
        gov = await srv.ws_login("gov4401")
        phone = await srv.ws_login("boss", device_id="boss-phone")
        pad = await srv.ws_login("boss", device_id="boss-pad")
        r = await gov.ok("call.invite", to={"user": srv.users["boss"]}, sdp=offer, mode="sfu",
                         media={"audio": True, "video": True})
        call_id = r["call_id"]
        assert r["mode"] == "sfu"
        offers = []
        for dev in (phone, pad):
            ev = await dev.next_event("call.incoming")
            assert ev["call_id"] == call_id and ev["mode"] == "sfu"
            offers.append(ev["sdp"])
        server_offer = offers[0]
        assert offers[1] == server_offer  # one server end for whichever device wins
        # The server's offer: its certificate, its candidates, actpass, the
        # caller's codecs (VP8 preferred) with the caller's payload types,
        # what it will send announced, no transport-wide congestion control.
        assert caller_fp not in server_offer
        assert attr(server_offer, "setup") == ["actpass", "actpass"]
        assert all(" 127.0.0.1 " in c for c in attr(server_offer, "candidate"))
        assert attr(server_offer, "candidate")
        # UDP, and passive TCP (ICE-TCP, media_ice_tcp on by default).
        assert transports(server_offer) == {("udp", None), ("tcp", "passive")}, server_offer
        assert "a=rtpmap:96 VP8/90000" in server_offer
        assert "a=rtpmap:111 opus/48000/2" in server_offer
        assert "H264" not in server_offer and "transport-cc" not in server_offer
        assert len(attr(server_offer, "ssrc")) == 4  # cname and msid, audio and video

        # Candidates go to the server, from the caller at once and from a
        # ringing device once it wins; nobody else hears them.
        await gov.ok("call.candidate", call_id=call_id, candidate=CAND)
        await gov.ok("call.candidate", call_id=call_id, candidate=TCP_CAND)
        await pad.ok("call.candidate", call_id=call_id, candidate=CAND)
        # A malformed candidate line (TCP without tcptype) is not taken,
        # and the request still succeeds.
        await gov.ok("call.candidate", call_id=call_id, candidate=dict(
            TCP_CAND, candidate="candidate:3 1 tcp 1518280447 127.0.0.1 5000 typ host"))
        for dev in (phone, pad):
            await dev.no_event("call.candidate", within=0.3)

        # Answers the server cannot take are refused; the call rings on.
        bad = await pad.request("call.accept", call_id=call_id, sdp="v=0\r\n")
        assert_err(bad, "bad_request")
        passive = await pad.request("call.accept", call_id=call_id,
                                    sdp=device_sdp("actpass", callee_fp))
        assert_err(passive, "bad_request", "setup:active")
        answer = device_sdp("active", callee_fp, ufrag="padU")
        await pad.ok("call.accept", call_id=call_id, sdp=answer)
        acc = await gov.next_event("call.accepted")
        server_answer = acc["sdp"]
        assert server_answer != answer and callee_fp not in server_answer
        assert attr(server_answer, "setup") == ["passive", "passive"]
        assert attr(server_answer, "candidate")
        assert "a=group:BUNDLE 0 1" in server_answer
        assert "a=rtpmap:96 VP8/90000" in server_answer and "H264" not in server_answer
        assert len(attr(server_answer, "ssrc")) == 4
        await phone.next_event("call.answered_elsewhere")

        await gov.ok("call.candidate", call_id=call_id, candidate=CAND)
        await pad.ok("call.candidate", call_id=call_id, candidate=None)
        await pad.no_event("call.candidate", within=0.3)
        await gov.no_event("call.candidate", within=0.1)
        # Renegotiation is answered by the server: an ICE restart (new
        # credentials) gets new server credentials, the same SSRCs.
        restart = device_sdp("actpass", callee_fp, ufrag="padV", pwd="anotherpasswordanother")
        await pad.ok("call.renegotiate", call_id=call_id, sdp=restart, sdp_type="offer")
        ev = await pad.next_event("call.renegotiate")
        assert ev["sdp_type"] == "answer" and ev["call_id"] == call_id
        assert attr(ev["sdp"], "ice-ufrag") != attr(server_offer, "ice-ufrag")
        assert attr(ev["sdp"], "setup") == ["passive", "passive"]
        assert sorted(attr(ev["sdp"], "ssrc")) == sorted(attr(server_offer, "ssrc"))
        await gov.no_event("call.renegotiate", within=0.2)  # nothing for the other party
        # ... which call.resume now hands back.
        await pad.close()
        pad = await srv.ws_login("boss", device_id="boss-pad")
        res = await pad.ok("call.resume", call_id=call_id)
        assert res["sdp"] == ev["sdp"]
        for bad, says in ((device_sdp("actpass", callee_fp, video=False), "sections"),
                          (device_sdp("actpass", fingerprint()), "certificate")):
            r = await pad.request("call.renegotiate", call_id=call_id, sdp=bad, sdp_type="offer")
            assert_err(r, "bad_request", says)
        r = await pad.request("call.renegotiate", call_id=call_id, sdp=answer, sdp_type="answer")
        assert_err(r, "bad_request", "no offer")
        # A device that resumes gets the server's SDP again.
        res = await gov.ok("call.resume", call_id=call_id)
        assert res["sdp"] == server_answer
        assert metric(srv.metrics(), "yjt_media_peers") == 2

        await gov.ok("call.hangup", call_id=call_id)
        for c in (gov, pad):
            ev = await c.next_event("call.ended")
            assert ev["reason"] == "hangup"
        for c in (gov, phone, pad):
            await c.close()
        return call_id

    call_id = run(go())
    assert metric(srv.metrics(), "yjt_media_peers") == 0
    rec = srv.http("GET", f"/api/v1/calls/{call_id}", token=srv.token("gov4401"))
    assert rec.json["call"]["mode"] == "sfu"
    assert rec.json["call"]["answered_by"]["device"] == "boss-pad"
    assert "via the sfu" in srv.stderr()


def test_sfu_refusals_the_default_mode_and_the_public_address(server):
    srv = start(server, call_mode="sfu", media_public_ip="203.0.113.7")
    boss = None

    async def go():
        nonlocal boss
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        to = {"user": srv.users["boss"]}
        good = device_sdp("actpass", fingerprint())
        r = await gov.request("call.invite", to=to, sdp=good, mode="relay")
        assert_err(r, "bad_request", "mode")
        # No codec the server forwards (PCMU only): refused, nobody rings.
        pcmu = device_sdp("actpass", fingerprint(), video=False, codecs_audio="0",
                          audio_map="a=rtpmap:0 PCMU/8000\r\n")
        r = await gov.request("call.invite", to=to, sdp=pcmu, mode="sfu")
        assert_err(r, "bad_request", "Opus")
        # No fingerprint: refused.
        nofp = "\r\n".join(l for l in good.split("\r\n") if not l.startswith("a=fingerprint"))
        r = await gov.request("call.invite", to=to, sdp=nofp, mode="sfu")
        assert_err(r, "bad_request")
        await boss.no_event("call.incoming", within=0.3)
        assert metric(srv.metrics(), "yjt_media_peers") == 0

        # call_mode=sfu: an invite naming no mode goes through the SFU ...
        r = await gov.ok("call.invite", to=to, sdp=good)
        assert r["mode"] == "sfu"
        ev = await boss.next_event("call.incoming")
        assert ev["sdp"] != good and "a=setup:actpass" in ev["sdp"]
        # media_public_ip: each host candidate, UDP and TCP, is announced
        # at the public address too, same port.
        cands = [c.split() for c in attr(ev["sdp"], "candidate")]
        local = {(c[2], c[5]) for c in cands if c[4] == "127.0.0.1"}
        public = {(c[2], c[5]) for c in cands if c[4] == "203.0.113.7"}
        assert local and local == public, cands
        assert {p for p, _ in local} == {"UDP", "TCP"}, cands
        await gov.ok("call.cancel", call_id=r["call_id"])
        await boss.next_event("call.ended")
        # ... and one naming p2p does not.
        r = await gov.ok("call.invite", to=to, sdp=good, mode="p2p")
        assert r["mode"] == "p2p"
        ev = await boss.next_event("call.incoming")
        assert ev["sdp"] == good and ev["mode"] == "p2p"
        await gov.ok("call.cancel", call_id=r["call_id"])
        await gov.close()
        await boss.close()

    run(go())
    wait_until(lambda: metric(srv.metrics(), "yjt_media_peers") == 0, timeout=5)


def test_sfu_without_ice_tcp(server):
    """media_ice_tcp = false: the server's SDPs carry UDP candidates only,
    and a device's TCP candidate is accepted but not used."""
    srv = start(server, media_ice_tcp="false")

    async def go():
        gov = await srv.ws_login("gov4401")
        boss = await srv.ws_login("boss")
        r = await gov.ok("call.invite", to={"user": srv.users["boss"]},
                         sdp=device_sdp("actpass", fingerprint()), mode="sfu")
        ev = await boss.next_event("call.incoming")
        assert transports(ev["sdp"]) == {("udp", None)}, ev["sdp"]
        await gov.ok("call.candidate", call_id=r["call_id"], candidate=TCP_CAND)
        await gov.ok("call.cancel", call_id=r["call_id"])
        await gov.close()
        await boss.close()

    run(go())


def test_regulators_join_and_leave_an_sfu_call(server):
    """call.join: a regulator whose jurisdiction covers the plant joins an
    answered SFU call (viewer or speaker) and gets the server's answer; the
    parties and other joiners hear call.participant_joined / _left; a
    joiner leaves by call.leave, call.hangup or going offline, and hears
    call.ended when the call ends. Plant users, regulators elsewhere,
    peer-to-peer and unanswered calls are refused; the record lists who
    joined."""
    srv = server(enterprises=ENTERPRISES,
                 users=USERS + [user("prov", "gov", "44"), user("city", "gov", "4401"),
                                user("far", "gov", "4403"), user("clerk", "corp", "e1")],
                 settings={"call_max_joiners": "2"})

    async def go():
        gov, boss, prov, city, far, clerk = [
            await srv.ws_login(name) for name in ("gov4401", "boss", "prov", "city", "far", "clerk")]
        to = {"user": srv.users["boss"]}
        viewer_offer = device_sdp("actpass", fingerprint(), ufrag="viewU")

        # Not an SFU call: refused.
        r = await gov.ok("call.invite", to=to, sdp=device_sdp("actpass", fingerprint()))
        await boss.next_event("call.incoming")
        assert_err(await prov.request("call.join", call_id=r["call_id"], sdp=viewer_offer),
                   "conflict", "mode sfu")
        await gov.ok("call.cancel", call_id=r["call_id"])
        await boss.next_event("call.ended")

        caller_fp = fingerprint()
        offer = device_sdp("actpass", caller_fp)
        r = await gov.ok("call.invite", to=to, sdp=offer, mode="sfu")
        call_id = r["call_id"]
        await boss.next_event("call.incoming")
        assert_err(await prov.request("call.join", call_id=call_id, sdp=viewer_offer),
                   "conflict", "not answered")
        await boss.ok("call.accept", call_id=call_id, sdp=device_sdp("active", fingerprint()))
        await gov.next_event("call.accepted")

        for who in (far, clerk):
            assert_err(await who.request("call.join", call_id=call_id, sdp=viewer_offer),
                       "forbidden")
        assert_err(await prov.request("call.join", call_id=call_id, sdp=viewer_offer,
                                      role="boss"), "bad_request", "role")
        assert_err(await prov.request("call.join", call_id=call_id, sdp="v=0\r\n"),
                   "bad_request")
        assert_err(await gov.request("call.join", call_id=call_id, sdp=viewer_offer),
                   "conflict", "already")

        j = await prov.ok("call.join", call_id=call_id, sdp=viewer_offer)
        assert "a=sendonly" in j["sdp"] and "a=sendrecv" not in j["sdp"]
        assert attr(j["sdp"], "candidate")
        assert [p["role"] for p in j["participants"]] == ["caller", "callee", "viewer"]
        for c in (gov, boss):
            ev = await c.next_event("call.participant_joined")
            assert ev["user"]["id"] == srv.users["prov"] and ev["role"] == "viewer", ev
        await prov.ok("call.candidate", call_id=call_id, candidate=CAND)
        await gov.no_event("call.candidate", within=0.2)

        s = await city.ok("call.join", call_id=call_id, role="speaker",
                          sdp=device_sdp("actpass", fingerprint(), ufrag="cityU"))
        assert "a=sendrecv" in s["sdp"]
        for c in (gov, boss, prov):
            ev = await c.next_event("call.participant_joined")
            assert ev["role"] == "speaker"
        # Everyone already in is offered one more audio and video section
        # for the speaker; an answer that keeps the connection completes it.
        caller_offer = None
        for c in (gov, boss, prov):
            ev = await c.next_event("call.renegotiate")
            assert ev["sdp_type"] == "offer", ev
            mids = attr(ev["sdp"], "mid")
            assert mids[-2:] == [f"y{len(mids) - 2}", f"y{len(mids) - 1}"], mids
            assert all("a=sendonly" in sec for sec in ev["sdp"].split("m=")[-2:]), ev["sdp"]
            if c is gov:
                caller_offer = ev["sdp"]
        # While the offer waits, the caller's own offer is refused (glare).
        r = await gov.request("call.renegotiate", call_id=call_id, sdp=offer, sdp_type="offer")
        assert_err(r, "conflict", "waiting")
        # An answer from another connection (new credentials) is refused.
        wrong = caller_answer_to(caller_offer, "otherU", caller_fp)
        r = await gov.request("call.renegotiate", call_id=call_id, sdp=wrong, sdp_type="answer")
        assert_err(r, "bad_request", "credentials")
        await gov.ok("call.renegotiate", call_id=call_id, sdp_type="answer",
                     sdp=caller_answer_to(caller_offer, "devU", caller_fp))
        r = await gov.request("call.renegotiate", call_id=call_id, sdp=offer, sdp_type="answer")
        assert_err(r, "bad_request", "no offer")
        assert_err(await far.request("call.join", call_id=call_id, sdp=viewer_offer),
                   "forbidden")
        # A third joiner is over call_max_joiners (2).
        third = await srv.ws_login("prov", device_id="prov-pad")
        assert_err(await third.request("call.join", call_id=call_id, sdp=viewer_offer), "busy")
        assert metric(srv.metrics(), "yjt_media_peers") == 4

        await prov.ok("call.leave", call_id=call_id)
        for c in (gov, boss, city):
            ev = await c.next_event("call.participant_left")
            assert ev["user_id"] == srv.users["prov"] and ev["reason"] == "left", ev
        assert_err(await prov.request("call.leave", call_id=call_id), "forbidden")
        # Going offline takes a joiner out.
        await city.close()
        for c in (gov, boss):
            ev = await c.next_event("call.participant_left")
            assert ev["user_id"] == srv.users["city"] and ev["reason"] == "offline", ev
        # A joiner that hangs up leaves; the call goes on; the end reaches
        # joiners too.
        j = await third.ok("call.join", call_id=call_id, sdp=viewer_offer)
        await third.ok("call.hangup", call_id=call_id)
        ev = await gov.next_event("call.participant_joined")
        ev = await gov.next_event("call.participant_left")
        assert ev["reason"] == "left"
        await prov.ok("call.join", call_id=call_id, sdp=viewer_offer)
        await gov.ok("call.hangup", call_id=call_id)
        ev = await prov.next_event("call.ended")
        assert ev["call_id"] == call_id and ev["reason"] == "hangup"
        for c in (gov, boss, prov, far, clerk, third):
            await c.close()
        return call_id

    call_id = run(go())
    wait_until(lambda: metric(srv.metrics(), "yjt_media_peers") == 0, timeout=5)
    rec = srv.http("GET", f"/api/v1/calls/{call_id}", token=srv.token("gov4401")).json["call"]
    joined = [(e["role"], e.get("left")) for e in rec["joined"]]
    assert joined == [("viewer", "left"), ("speaker", "offline"), ("viewer", "left"),
                      ("viewer", "ended")], rec["joined"]
    assert all(isinstance(e["at"], int) and e["left_at"] >= e["at"] for e in rec["joined"])
    audit = srv.ctl("audit", "list", check=True).stdout
    assert "call.join" in audit
