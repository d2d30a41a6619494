"""Video patrols: the queue, patrol calls, notes, the report, and the daily
coverage of key-supervised enterprises that regulators are assessed on."""

import asyncio
import datetime

from calllib import answered_call, hang_up
from conftest import run, user

ENTERPRISES = [
    ("k1", "Key Plant One", "440106", True),
    ("k2", "Key Plant Two", "440106", True),
    ("k3", "Key Plant Three", "440113", True),
    ("n1", "Ordinary Plant", "440106"),
    ("far", "Far Key Plant", "440305", True),
]
USERS = [
    user("insp", "gov", "4401"),
    user("district", "gov", "440106"),
    user("other", "gov", "4403"),
    user("k1boss", "corp", "k1", position="principal"),
    user("k2boss", "corp", "k2", position="principal"),
    user("k3boss", "corp", "k3", position="principal"),
]
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SETTINGS = {"patrol_min_call_s": "1", "ring_timeout_s": "5"}


def start(server):
    return server(enterprises=ENTERPRISES, users=USERS, settings=SETTINGS)


def today():
    tz = datetime.timezone(datetime.timedelta(hours=8))  # Asia/Shanghai has no DST
    return datetime.datetime.now(tz).strftime("%Y-%m-%d")


def assert_err(reply, code):
    assert reply["ok"] is False and reply["error"]["code"] == code, f"want {code}: {reply}"


async def patrol_call(gov, plant, enterprise, patrol_id, hold_s):
    to = {"enterprise": enterprise, "positions": ["principal"]}
    call_id, ev = await answered_call(gov, plant, to, OFFER, OFFER, patrol_id=patrol_id)
    assert ev["patrol_id"] == patrol_id
    await asyncio.sleep(hold_s)
    await hang_up(gov, plant, call_id)
    return call_id


def test_patrol_of_key_enterprises_report_and_coverage(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("insp")
        k1 = await srv.ws_login("k1boss")
        k2 = await srv.ws_login("k2boss")
        r = await gov.ok("patrol.start", scope="key")
        pid = r["patrol_id"]
        assert r["date"] == today()
        assert [i["enterprise"] for i in r["items"]] == ["k1", "k2", "k3"]
        long_call = await patrol_call(gov, k1, "k1", pid, 1.3)
        short_call = await patrol_call(gov, k2, "k2", pid, 0)
        # k3's leader is offline: the call ends offline and counts for nothing
        r = await gov.ok("call.invite", to={"enterprise": "k3"}, sdp=OFFER, patrol_id=pid)
        ev = await gov.next_event("call.ended")
        assert ev["reason"] == "offline"
        # a patrol call must stay within the patrol
        r = await gov.request("call.invite", to={"enterprise": "n1"}, sdp=OFFER, patrol_id=pid)
        assert_err(r, "bad_request")
        r = await gov.request("call.invite", to={"enterprise": "k1"}, sdp=OFFER,
                              patrol_id="p_nope")
        assert_err(r, "not_found")
        await gov.ok("patrol.note", patrol_id=pid, enterprise="k1", result="normal",
                     findings="alarms tested, duty roster posted")
        await gov.ok("patrol.note", patrol_id=pid, enterprise="k2", result="issue",
                     findings="tank farm camera offline")
        assert_err(await gov.request("patrol.note", patrol_id=pid, enterprise="n1",
                                     result="normal"), "not_found")
        assert_err(await gov.request("patrol.note", patrol_id=pid, enterprise="k1",
                                     result="fine"), "bad_request")
        rep = (await gov.ok("patrol.finish", patrol_id=pid, summary="two of three"))["report"]
        assert rep["status"] == "finished" and rep["summary"] == "two of three"
        items = {i["enterprise"]: i for i in rep["items"]}
        assert items["k1"]["reached"] is True and items["k1"]["result"] == "normal"
        assert items["k1"]["calls"][0]["call_id"] == long_call
        assert items["k2"]["reached"] is False and items["k2"]["result"] == "issue"
        assert items["k2"]["calls"][0]["call_id"] == short_call
        assert items["k3"]["reached"] is False
        assert items["k3"]["calls"][0]["end_reason"] == "offline"
        assert rep["totals"] == {"enterprises": 3, "reached": 1, "normal": 1, "issue": 1,
                                 "calls": 3, "min_call_s": 1}
        # finished: no more notes or calls
        assert_err(await gov.request("patrol.note", patrol_id=pid, enterprise="k1",
                                     result="normal"), "conflict")
        r = await gov.request("call.invite", to={"enterprise": "k1"}, sdp=OFFER, patrol_id=pid)
        assert_err(r, "conflict")
        for c in (gov, k1, k2):
            await c.close()
        return pid

    pid = run(go())
    tok = srv.token("insp")
    rep = srv.http("GET", f"/api/v1/patrols/{pid}", token=tok)
    assert rep.status == 200 and rep.json["report"]["totals"]["reached"] == 1
    mine = srv.http("GET", "/api/v1/patrols", token=tok).json["patrols"]
    assert [p["id"] for p in mine] == [pid]
    # the district regulator sees it (its plants), another city does not
    assert srv.http("GET", f"/api/v1/patrols/{pid}", token=srv.token("district")).status == 403
    assert srv.http("GET", f"/api/v1/patrols/{pid}", token=srv.token("other")).status == 403
    cov = srv.http("GET", f"/api/v1/patrols/coverage?date={today()}&division=4401", token=tok)
    assert cov.status == 200, cov
    body = cov.json
    assert body["total"] == 3 and body["patrolled"] == 1
    assert abs(body["rate"] - 1 / 3) < 1e-6
    got = {e["enterprise"]: e["patrolled"] for e in body["enterprises"]}
    assert got == {"k1": True, "k2": False, "k3": False}
    # a district below sees its own part
    cov = srv.http("GET", f"/api/v1/patrols/coverage?date={today()}&division=440106",
                   token=srv.token("district")).json
    assert {e["enterprise"] for e in cov["enterprises"]} == {"k1", "k2"}
    assert cov["patrolled"] == 1
    # another day: nothing patrolled
    cov = srv.http("GET", "/api/v1/patrols/coverage?date=2020-01-01&division=4401", token=tok)
    assert cov.json["patrolled"] == 0 and cov.json["total"] == 3
    # out of jurisdiction and bad input
    assert srv.http("GET", f"/api/v1/patrols/coverage?date={today()}&division=4403",
                    token=tok).status == 403
    assert srv.http("GET", "/api/v1/patrols/coverage?date=2020-02-30&division=4401",
                    token=tok).status == 400
    assert srv.http("GET", "/api/v1/patrols/coverage?date=today&division=4401",
                    token=tok).status == 400
    assert srv.http("GET", "/api/v1/patrols/p_none", token=tok).status == 404
    # the coverage survives a restart (it is computed from stored records)
    srv.restart()
    cov = srv.http("GET", f"/api/v1/patrols/coverage?date={today()}&division=4401",
                   token=srv.token("insp"))
    assert cov.json["patrolled"] == 1


def test_notes_and_finish_sent_back_to_back_all_count(server):
    """Two notes and the finish sent without waiting for each other's
    answers are taken in order, each reading what the one before wrote
    (on several nodes the patrol is read ahead without waiting): the report
    has both notes."""
    srv = start(server)

    async def go():
        gov = await srv.ws_login("insp")
        pid = (await gov.ok("patrol.start", scope="key"))["patrol_id"]
        await asyncio.sleep(2.5)  # past what the node remembers of its own write
        replies = await gov.requests_at_once(
            ("patrol.note", {"patrol_id": pid, "enterprise": "k1", "result": "normal"}),
            ("patrol.note", {"patrol_id": pid, "enterprise": "k2", "result": "issue",
                             "findings": "camera offline"}),
            ("patrol.finish", {"patrol_id": pid}))
        assert all(r["ok"] is True for r in replies), replies
        items = {i["enterprise"]: i for i in replies[2]["report"]["items"]}
        assert items["k1"]["result"] == "normal" and items["k2"]["result"] == "issue", items
        await gov.close()

    run(go())


def test_patrol_start_rules(server):
    srv = start(server)

    async def go():
        gov = await srv.ws_login("district")
        plant = await srv.ws_login("k1boss")
        r = await gov.ok("patrol.start", enterprises=["k2", "k1", "k2"])
        assert [i["enterprise"] for i in r["items"]] == ["k2", "k1"]
        assert_err(await gov.request("patrol.start", enterprises=["k3"]), "forbidden")
        assert_err(await gov.request("patrol.start", enterprises=["nope"]), "not_found")
        assert_err(await gov.request("patrol.start", enterprises=[]), "bad_request")
        assert_err(await gov.request("patrol.start", enterprises=[1]), "bad_request")
        assert_err(await gov.request("patrol.start", scope="all"), "bad_request")
        assert_err(await gov.request("patrol.start"), "bad_request")
        assert_err(await plant.request("patrol.start", scope="key"), "forbidden")
        r2 = await gov.ok("patrol.start", scope="key")
        assert [i["enterprise"] for i in r2["items"]] == ["k1", "k2"]
        # someone else's patrol
        other = await srv.ws_login("insp")
        assert_err(await other.request("patrol.note", patrol_id=r["patrol_id"], enterprise="k1",
                                       result="normal"), "forbidden")
        r3 = await other.request("call.invite", to={"enterprise": "k1"}, sdp=OFFER,
                                 patrol_id=r["patrol_id"])
        assert_err(r3, "forbidden")
        for c in (gov, plant, other):
            await c.close()

    run(go())
