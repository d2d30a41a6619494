"""The daily commitment announcement through one business day on the test
clock: on-time filings over WebSocket and REST, a same-day correction that
keeps the earlier version, the regulators' view with the non-filers and the
roll-up per district, a restart past the deadline and a late filing."""

import datetime
import json

from conftest import assert_error, run, single_node, user
from test_enterprises import RECORD, TANKS, credit_code

ENTERPRISES = [
    ("e1", "Plant One", "440106"),
    ("e2", "Plant Two", "440106"),
    ("e3", "Plant Three", "440113"),
    ("far", "Far Plant", "440305"),
]
USERS = [
    user("insp", "gov", "4401"),
    user("dist", "gov", "440106"),
    user("other", "gov", "4403"),
    user("e1boss", "corp", "e1", position="principal"),
    user("e2boss", "corp", "e2", position="principal"),
    user("e3boss", "corp", "e3", position="principal"),
]
SH = datetime.timezone(datetime.timedelta(hours=8))  # Asia/Shanghai has no DST


def filing(**over):
    c = {
        "units": {"total": 4, "running": 3, "stopped": 1},
        "hazard_sources": [],
        "special_ops": {"hot_work_1": 1, "confined_space": 2, "height": 1},
        "trial_production": False, "pilot_test": False, "startup_shutdown": False,
        "units_maintenance": 1, "contractors_on_site": 12, "major_hidden_danger": False,
        "risk_grade": 3, "committer": "Li Ming",
        "statement": "今日已进行安全风险研判，各项风险管控措施已落实，承诺安全生产。",
    }
    c.update(over)
    return c


def test_a_business_day(server):
    day = datetime.datetime.now(SH).date() + datetime.timedelta(days=1)
    date = day.isoformat()
    srv = server(enterprises=ENTERPRISES, users=USERS, start=False,
                 settings={"test_clock": f"{date}T08:00:00+08:00"})
    # e1's approved file has one major hazard source, which it must report
    path = srv.data_dir / "e1.json"
    path.write_text(json.dumps([dict(RECORD, id="e1", hazard_sources=[dict(TANKS, id="tanks")],
                                     credit_code=credit_code("91440106MA5CCCCC1"))]))
    srv.ctl("import", "enterprises", "--file", path, check=True)
    srv.start()

    async def morning():
        e1 = await srv.ws_login("e1boss")
        r = await e1.request("commitment.submit", **filing())
        assert r["ok"] is False and r["error"]["code"] == "bad_request"
        assert "every major hazard source" in r["error"]["message"]
        ok = await e1.ok("commitment.submit",
                         **filing(hazard_sources=[{"id": "tanks", "controlled": True}]))
        c = ok["commitment"]
        assert c["date"] == date and c["late"] is False and c["version"] == 1
        assert c["hazard_sources"] == [{"id": "tanks", "name": "液氨罐区", "controlled": True}]
        assert c["special_ops"]["hot_work_1"] == 1 and c["special_ops"]["lifting"] == 0
        assert c["filed_by"] == srv.users["e1boss"] and c["division"] == "440106"
        for bad in (filing(units={"total": 4, "running": 3, "stopped": 2}),
                    filing(risk_grade=5), filing(statement=""),
                    filing(special_ops={"welding": 1}), filing(colour="red"),
                    filing(hazard_sources=[{"id": "nope", "controlled": True}]),
                    filing(date="2020-01-01"), filing(major_hidden_danger="no")):
            r = await e1.request("commitment.submit", **bad)
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
        r = await e1.request("commitment.submit", enterprise="e2", **filing())
        assert r["error"]["code"] == "forbidden"
        gov = await srv.ws_login("dist")
        r = await gov.request("commitment.submit", enterprise="e1", **filing())
        assert r["error"]["code"] == "forbidden"
        await e1.close()
        await gov.close()

    run(morning())
    # e2 files over REST, then corrects the same day: the first version is kept
    e2 = srv.token("e2boss")
    r = srv.http("POST", "/api/v1/commitments", token=e2, body=filing(risk_grade=2))
    assert r.status == 200 and r.json["commitment"]["late"] is False, r
    r = srv.http("POST", "/api/v1/commitments", token=e2, body=filing(risk_grade=4))
    assert r.status == 200 and r.json["commitment"]["version"] == 2
    r = srv.http("GET", f"/api/v1/commitments/e2?date={date}", token=srv.token("dist"))
    assert r.status == 200
    c = r.json["commitment"]
    assert c["risk_grade"] == 4 and [p["risk_grade"] for p in c["previous"]] == [2]
    assert c["first_filed_at"] == c["previous"][0]["filed_at"]

    insp = srv.token("insp")
    day_view = srv.http("GET", f"/api/v1/commitments?date={date}&division=4401", token=insp)
    assert day_view.status == 200, day_view
    v = day_view.json
    assert v["deadline"] == "10:00" and [m["enterprise"] for m in v["missing"]] == ["e3"]
    assert [c["enterprise"] for c in v["commitments"]] == ["e1", "e2"]
    assert v["commitments"][1]["versions"] == 2 and "previous" not in v["commitments"][1]
    assert v["totals"]["should_file"] == 3 and v["totals"]["filed"] == 2
    assert v["totals"]["by_grade"] == {"1": 0, "2": 0, "3": 1, "4": 1}

    # past the deadline, after a restart
    srv.settings["test_clock"] = f"{date}T10:30:00+08:00"
    srv.restart()
    r = srv.http("POST", "/api/v1/commitments", token=srv.token("e3boss"),
                 body=filing(risk_grade=1))
    assert r.status == 200 and r.json["commitment"]["late"] is True, r
    # a late correction of an on-time commitment leaves it on time
    r = srv.http("POST", "/api/v1/commitments", token=srv.token("e2boss"), body=filing())
    c = r.json["commitment"]
    assert c["late"] is False and c["version_late"] is True and c["version"] == 3
    v = srv.http("GET", f"/api/v1/commitments?date={date}", token=srv.token("insp")).json
    assert v["division"] == "4401" and v["missing"] == []
    assert v["districts"] == [
        {"division": "440106", "should_file": 2, "filed": 2, "late": 0, "missing": 0,
         "by_grade": {"1": 0, "2": 0, "3": 2, "4": 0}},
        {"division": "440113", "should_file": 1, "filed": 1, "late": 1, "missing": 0,
         "by_grade": {"1": 1, "2": 0, "3": 0, "4": 0}},
    ]
    # today (no date) is the test clock's business date
    assert srv.http("GET", "/api/v1/commitments", token=srv.token("dist")).json["date"] == date
    # a plant sees only its own day
    v = srv.http("GET", f"/api/v1/commitments?date={date}&division=44",
                 token=srv.token("e1boss")).json
    assert [c["enterprise"] for c in v["commitments"]] == ["e1"] and v["missing"] == []
    # the previous day: nobody filed
    prev = (day - datetime.timedelta(days=1)).isoformat()
    v = srv.http("GET", f"/api/v1/commitments?date={prev}&division=440106",
                 token=srv.token("dist")).json
    assert [m["enterprise"] for m in v["missing"]] == ["e1", "e2"]

    # jurisdiction and input
    other, dist = srv.token("other"), srv.token("dist")
    assert_error(srv.http("GET", f"/api/v1/commitments?date={date}&division=4401", token=other),
                 403, "forbidden")
    assert_error(srv.http("GET", f"/api/v1/commitments?division=4401", token=dist), 403,
                 "forbidden")
    assert_error(srv.http("GET", f"/api/v1/commitments/e1?date={date}", token=other), 403,
                 "forbidden")
    assert_error(srv.http("GET", f"/api/v1/commitments/e3?date={date}",
                          token=srv.token("e1boss")), 403, "forbidden")
    assert_error(srv.http("GET", f"/api/v1/commitments/nope?date={date}", token=dist), 404,
                 "not_found")
    assert_error(srv.http("GET", f"/api/v1/commitments/e1?date={prev}", token=dist), 404,
                 "not_found")
    assert_error(srv.http("GET", "/api/v1/commitments?date=2026-02-30", token=dist), 400,
                 "bad_request")
    assert_error(srv.http("POST", "/api/v1/commitments", token=dist, body=filing()), 403,
                 "forbidden")
    assert_error(srv.http("POST", "/api/v1/commitments", body=filing()), 401, "unauthorized")


def test_filings_sent_back_to_back_are_versions_in_order(server):
    """Two filings of one enterprise sent without waiting for the first's
    answer are taken one after the other: the second is version 2 and
    keeps the first (on several nodes each reads what the one before
    wrote, its reads sent without waiting)."""
    srv = server(enterprises=ENTERPRISES, users=USERS)

    async def body():
        e3 = await srv.ws_login("e3boss")
        r1, r2 = await e3.requests_at_once(("commitment.submit", filing(risk_grade=2)),
                                           ("commitment.submit", filing(risk_grade=4)))
        assert r1.get("ok") and r2.get("ok"), (r1, r2)
        assert r1["commitment"]["version"] == 1 and r2["commitment"]["version"] == 2, (r1, r2)
        c = srv.http("GET", "/api/v1/commitments/e3", token=srv.token("insp")).json
        await e3.close()
        return c

    c = run(body())
    assert [p["risk_grade"] for p in c["commitment"]["previous"]] == [2], c


@single_node
def test_settings_are_checked(server):
    srv = server(start=False, settings={"commitment_deadline": "25:00"})
    cp = srv.start(wait=False)
    assert cp.proc.wait(10) == 2
    assert "commitment_deadline" in srv.stderr()
    srv.proc = None
    srv.settings = {"test_clock": "2026-11-30 at eight"}
    srv.start(wait=False)
    assert srv.proc.wait(10) == 2
    assert "test_clock" in srv.stderr()
    srv.proc = None
