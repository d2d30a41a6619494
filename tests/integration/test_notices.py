"""Notices: publication by regulators to an audience inside their
jurisdiction, the pushes, read receipts and who sees them."""

import json
import sqlite3

from conftest import assert_error, run, sqlite_only, user
from pushlib import OPS, push_seqs, resume_all

ENTERPRISES = [
    ("e1", "Tianhe Chemicals", "440106"),
    ("e2", "Huangpu Gas", "440113"),
    ("e3", "Futian Solvents", "440305"),
]
USERS = [
    user("gov44", "gov", "44"),
    user("gov4401", "gov", "4401", display_name="Guangzhou duty officer"),
    user("gov440106", "gov", "440106"),
    user("gov440113", "gov", "440113"),
    user("gov4403", "gov", "4403"),
    user("alice", "corp", "e1", position="principal", display_name="Alice"),
    user("amy", "corp", "e1"),
    user("carl", "corp", "e2"),
    user("dave", "corp", "e3"),
]
NOTICE = {"title": "关于开展汛期安全检查的通知", "body": "各企业于本周五前完成自查。",
          "attachments": [{"name": "检查表.pdf", "url": "https://files.example.org/a.pdf"}],
          "require_read": True}


def start(server):
    return server(enterprises=ENTERPRISES, users=USERS)


def names(srv, users):
    ids = {v: k for k, v in srv.users.items()}
    return sorted(ids[u["id"]] for u in users)


def test_division_audience_pushes_and_receipts(server):
    srv = start(server)

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        a = await srv.ws_login("alice", device_id="a")
        d = await srv.ws_login("dave", device_id="d")
        r = await g.ok("notice.publish", audience={"type": "division", "division": "4401"},
                       **NOTICE)
        nid = r["notice_id"]
        assert r["recipients"] == 3
        ev = await a.next_event("push")
        assert ev["kind"] == "notice" and ev["title"] == NOTICE["title"]
        assert ev["body"] == NOTICE["body"]
        assert ev["payload"] == {"notice_id": nid, "require_read": True,
                                 "attachments": NOTICE["attachments"]}
        await d.no_event("push", within=0.3)
        # Offline recipients find it in their inbox.
        amy = await srv.ws_login("amy", device_id="m")
        await resume_all(amy, after_seq=0)
        assert push_seqs(amy) == [1]

        r1 = await a.ok("notice.read", notice_id=nid)
        r2 = await a.ok("notice.read", notice_id=nid)
        assert r1["read_at"] == r2["read_at"]
        r = await d.request("notice.read", notice_id=nid)
        assert r["error"]["code"] == "not_found", r
        r = await a.request("notice.read", notice_id="n-unknown")
        assert r["error"]["code"] == "not_found", r
        r = await a.request("notice.read")
        assert r["error"]["code"] == "bad_request", r
        for c in (g, a, d, amy):
            await c.close()
        return nid

    nid = run(body())
    r = srv.http("GET", f"/api/v1/notices/{nid}/receipts", token=srv.token("gov4401"))
    assert r.status == 200, r
    assert r.json["total"] == 3 and r.json["require_read"] is True
    assert names(srv, r.json["read"]) == ["alice"]
    assert names(srv, r.json["unread"]) == ["amy", "carl"]
    alice = r.json["read"][0]
    assert alice["display_name"] == "Alice" and alice["org"] == "e1" and alice["read_at"] > 0
    assert_error(srv.http("GET", f"/api/v1/notices/{nid}/receipts",
                          token=srv.token("gov440106")), 403, "forbidden")
    assert_error(srv.http("GET", f"/api/v1/notices/{nid}/receipts",
                          token=srv.token("alice")), 403, "forbidden")
    assert_error(srv.http("GET", "/api/v1/notices/n-nope/receipts",
                          token=srv.token("gov4401")), 404, "not_found")
    assert_error(srv.http("GET", f"/api/v1/notices/{nid}/receipts"), 401, "unauthorized")


def test_a_long_notice_is_pushed_cut_and_read_whole(server):
    """A notice body longer than a push carries (4000 bytes) is published;
    the push carries its start, cut at a character and marked, and the
    recipients, the publisher and operators read it whole with notice.get
    or GET /api/v1/notices/{id}. Others learn nothing of it."""
    srv = server(enterprises=ENTERPRISES, users=USERS + [OPS])
    long_body = "各企业应当立即开展安全隐患排查。" * 400  # 6,400 characters, 19,200 bytes

    async def body():
        g = await srv.ws_login("gov4401", device_id="g")
        a = await srv.ws_login("alice", device_id="a")
        d = await srv.ws_login("dave", device_id="d")
        r = await g.ok("notice.publish", audience={"type": "enterprises", "enterprises": ["e1"]},
                       **dict(NOTICE, body=long_body))
        nid = r["notice_id"]
        ev = await a.next_event("push")
        assert ev["payload"]["body_cut"] is True and ev["payload"]["notice_id"] == nid
        cut = ev["body"]
        assert cut.endswith("\u2026") and len(cut.encode()) <= 4000
        assert long_body.startswith(cut[:-1]) and len(cut.encode()) > 3900
        whole = await a.ok("notice.get", notice_id=nid)
        assert whole["body"] == long_body and whole["title"] == NOTICE["title"]
        assert whole["attachments"] == NOTICE["attachments"] and whole["require_read"] is True
        assert (await g.ok("notice.get", notice_id=nid))["body"] == long_body
        for c, ask in ((d, nid), (a, "n-unknown")):
            r = await c.request("notice.get", notice_id=ask)
            assert r["error"]["code"] == "not_found", r
        r = await a.request("notice.get")
        assert r["error"]["code"] == "bad_request", r
        # A short one is pushed whole, with no mark.
        r = await g.ok("notice.publish", audience={"type": "enterprises", "enterprises": ["e1"]},
                       **NOTICE)
        ev = await a.next_event("push")
        assert ev["body"] == NOTICE["body"] and "body_cut" not in ev["payload"]
        for c in (g, a, d):
            await c.close()
        return nid

    nid = run(body())
    for who in ("amy", "gov4401", "ops"):
        r = srv.http("GET", f"/api/v1/notices/{nid}", token=srv.token(who))
        assert r.status == 200 and r.json["body"] == long_body, (who, r)
    for who in ("dave", "gov440106"):
        assert_error(srv.http("GET", f"/api/v1/notices/{nid}", token=srv.token(who)),
                     404, "not_found")
    assert_error(srv.http("GET", f"/api/v1/notices/{nid}"), 401, "unauthorized")
    r = srv.http("GET", f"/api/v1/notices/{nid}/receipts", token=srv.token("gov4401"))
    assert r.status == 200 and r.json["total"] == 2, r


def test_enterprise_list_and_gov_sub_divisions(server):
    srv = start(server)
    tok = srv.token("gov4401")
    r = srv.http("POST", "/api/v1/notices", token=tok,
                 body=dict(NOTICE, audience={"type": "enterprises", "enterprises": ["e2"]}))
    assert r.status == 201 and r.json["recipients"] == 1, r
    r2 = srv.http("GET", f"/api/v1/notices/{r.json['notice_id']}/receipts", token=tok)
    assert names(srv, r2.json["unread"]) == ["carl"]

    r = srv.http("POST", "/api/v1/notices", token=tok,
                 body=dict(NOTICE, audience={"type": "gov"}))
    assert r.status == 201, r
    r2 = srv.http("GET", f"/api/v1/notices/{r.json['notice_id']}/receipts", token=tok)
    assert names(srv, r2.json["unread"]) == ["gov440106", "gov440113"]
    # A province publisher reaching one city's regulators.
    p = srv.token("gov44")
    r = srv.http("POST", "/api/v1/notices", token=p,
                 body=dict(NOTICE, audience={"type": "gov", "division": "4403"}))
    assert r.status == 201, r
    r2 = srv.http("GET", f"/api/v1/notices/{r.json['notice_id']}/receipts", token=p)
    assert names(srv, r2.json["unread"]) == ["gov4403"]


def test_jurisdiction_and_validation(server):
    srv = start(server)
    tok = srv.token("gov4401")

    def publish(token, **kw):
        return srv.http("POST", "/api/v1/notices", token=token, body=dict(NOTICE, **kw))

    assert_error(publish(tok, audience={"type": "division", "division": "4403"}), 403,
                 "forbidden")
    assert_error(publish(tok, audience={"type": "division", "division": "44"}), 403, "forbidden")
    assert_error(publish(tok, audience={"type": "enterprises", "enterprises": ["e1", "e3"]}),
                 403, "forbidden")
    assert_error(publish(tok, audience={"type": "enterprises", "enterprises": ["zz"]}), 404,
                 "not_found")
    assert_error(publish(srv.token("alice"), audience={"type": "enterprises",
                                                       "enterprises": ["e1"]}),
                 403, "forbidden")
    for bad in ({"audience": {"type": "everyone"}}, {"audience": "4401"},
                {"audience": {"type": "division", "division": "12x"}},
                {"audience": {"type": "enterprises", "enterprises": []}},
                {"audience": {"type": "division"}, "title": ""},
                {"audience": {"type": "division", "division": "4401"}, "require_read": "yes"},
                {"audience": {"type": "division", "division": "4401"},
                 "attachments": [{"name": "x", "url": "file:///etc/passwd"}]},
                {"audience": {"type": "division", "division": "4401"},
                 "attachments": [{"name": "x", "url": "https://a"}] * 11}):
        assert_error(publish(tok, **bad), 400, "bad_request")
    r = srv.http("POST", "/api/v1/notices", token=tok,
                 body={"audience": {"type": "division", "division": "4401"}})
    assert_error(r, 400, "bad_request")


def test_a_large_notice_survives_kill9_and_reads_in_order(server):
    """A notice to many users is stored whole and its inbox rows settle
    later: killed right after the publish, yjtd still has every user's
    push after the restart, in order with what comes next."""
    many = [user(f"w{i:02d}", "corp", "e2") for i in range(40)]
    srv = server(enterprises=ENTERPRISES, users=USERS + [OPS] + many)
    ids = [srv.users[u["username"]] for u in many]

    async def body():
        w0 = await srv.ws_login("w00", device_id="w0")
        r = srv.http("POST", "/api/v1/notices", token=srv.token("gov4401"),
                     body=dict(NOTICE, audience={"type": "enterprises", "enterprises": ["e2"]}))
        assert r.status == 201 and r.json["recipients"] == 41, r  # carl and the 40
        ev = await w0.next_event("push")
        assert ev["seq"] == 1 and ev["kind"] == "notice"
        srv.kill9()
        await w0.wait_closed()
        srv.start()
        for name in ("w00", "w17", "w39", "carl"):
            c = await srv.ws_login(name, device_id="after")
            await resume_all(c, after_seq=0)
            assert push_seqs(c) == [1], (name, push_seqs(c))
            await c.close()
        # What follows, a second notice and a single push, goes after it.
        r = srv.http("POST", "/api/v1/notices", token=srv.token("gov4401"),
                     body=dict(NOTICE, audience={"type": "enterprises", "enterprises": ["e2"]}))
        assert r.status == 201, r
        r = srv.http("POST", "/api/v1/pushes", token=srv.token("ops"),
                     body={"user": ids[5], "kind": "alarm", "priority": "high", "ttl_s": 600,
                           "title": "t", "body": "b"})
        assert r.status == 201 and r.json["seq"] == 3, r
        r = srv.http("GET", "/api/v1/inbox", token=srv.token("w05"))
        assert r.status == 200, r
        assert [i["seq"] for i in r.json["items"]] == [1, 2, 3], r.json
        c = await srv.ws_login("w38", device_id="late")
        await resume_all(c, after_seq=1)
        assert push_seqs(c) == [2]
        await c.close()

    run(body())


@sqlite_only
def test_recipients_stored_as_an_array_read_the_same(server):
    """A notice's recipients are stored as one newline-ended string of
    ids; notices stored before hold an array of ids, and read the same:
    the receipts, notice.get for a recipient only, and notice.read."""
    srv = start(server)

    async def publish():
        g = await srv.ws_login("gov4401", device_id="g")
        r = await g.ok("notice.publish", audience={"type": "division", "division": "4401"},
                       **NOTICE)
        await g.close()
        return r["notice_id"]

    nid = run(publish())
    srv.stop()
    db = sqlite3.connect(srv.data_dir / "yjt.db")
    (text,) = db.execute("SELECT body FROM docs WHERE coll='notices' AND id=?", (nid,)).fetchone()
    doc = json.loads(text)
    ids = {v: k for k, v in srv.users.items()}
    assert sorted(ids[u] for u in doc["recipients"].splitlines()) == ["alice", "amy", "carl"]
    doc["recipients"] = doc["recipients"].splitlines()
    db.execute("UPDATE docs SET body=? WHERE coll='notices' AND id=?", (json.dumps(doc), nid))
    db.commit()
    db.close()
    srv.start()

    async def read():
        a = await srv.ws_login("alice", device_id="a")
        d = await srv.ws_login("dave", device_id="d")
        assert (await a.ok("notice.get", notice_id=nid))["title"] == NOTICE["title"]
        await a.ok("notice.read", notice_id=nid)
        for verb in ("notice.get", "notice.read"):
            r = await d.request(verb, notice_id=nid)
            assert r["error"]["code"] == "not_found", r
        for c in (a, d):
            await c.close()

    run(read())
    r = srv.http("GET", f"/api/v1/notices/{nid}/receipts", token=srv.token("gov4401"))
    assert r.status == 200 and r.json["total"] == 3, r
    assert names(srv, r.json["read"]) == ["alice"]
    assert names(srv, r.json["unread"]) == ["amy", "carl"]
