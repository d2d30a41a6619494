"""The reminders scheduler: daily commitment reminders at 08:30 and 09:30 and
the monthly self-evaluation reminder, each sent once, caught up once after a
restart on the same business day before the 10:00 cut-off, never repeated.
The scheduler's clock is moved with the test-only test_clock switch."""

import json
import sqlite3
import time

from conftest import assert_error, metric, sqlite_only, user
from pushlib import OPS
from test_commitments import filing

ENTERPRISES = [("e1", "Tianhe Chemicals", "440106"), ("e2", "Huangpu Gas", "440113")]
USERS = [
    OPS,
    user("p1", "corp", "e1", position="principal"),
    user("s1", "corp", "e1", position="safety_manager"),
    user("w1", "corp", "e1", position="operator"),
    user("p2", "corp", "e2", position="principal"),
    user("g1", "gov", "4401"),
    user("g2", "gov", "440106"),
    user("d1", "gov", "440106", position="duty"),
    user("d2", "gov", "4401", position="duty"),
]
DAY = "2026-12-01"  # a Tuesday, and the 1st of a month


def at(hhmm_ss, day=DAY):
    return f"{day}T{hhmm_ss}+08:00"


def start(server, clock, **settings):
    s = {"test_clock": at(clock)}
    s.update(settings)
    return server(enterprises=ENTERPRISES, users=USERS, settings=s)


def set_clock(srv, when):
    r = srv.http("POST", "/api/v1/test/clock", token=srv.token("ops"), body={"now": when})
    assert r.status == 200, r


def reminders(srv, name, job_prefix="commitment"):
    """(job, date) of every reminder push in name's inbox, oldest first."""
    r = srv.http("GET", "/api/v1/inbox?limit=200", token=srv.token(name))
    assert r.status == 200, r
    return [(i["payload"]["job"], i["payload"]["date"]) for i in r.json["items"]
            if i["kind"] == "reminder" and i["payload"].get("job", "").startswith(job_prefix)]


def summaries(srv, name):
    """The commitment summaries in name's inbox, oldest first."""
    r = srv.http("GET", "/api/v1/inbox?limit=200", token=srv.token(name))
    assert r.status == 200, r
    return [i["payload"] for i in r.json["items"]
            if i["kind"] == "reminder" and i["payload"].get("type") == "commitment.summary"]


def test_commitment_reminders_fire_once_each(server):
    srv = start(server, "08:00:00")
    set_clock(srv, at("08:29:50"))
    assert reminders(srv, "p1") == []
    set_clock(srv, at("08:30:01"))
    want = [("commitment.0830", DAY)]
    for name in ("p1", "s1", "p2"):
        assert reminders(srv, name) == want, name
    assert reminders(srv, "w1") == [] and reminders(srv, "g1") == []
    r = srv.http("GET", "/api/v1/inbox", token=srv.token("p1")).json["items"][0]
    assert r["title"] and "10:00" in r["body"]
    set_clock(srv, at("08:45:00"))
    time.sleep(1.2)  # a tick or two: nothing is sent again
    assert reminders(srv, "p1") == want
    r = srv.http("POST", "/api/v1/commitments", token=srv.token("p2"), body=filing())
    assert r.status in (200, 201), r
    set_clock(srv, at("09:30:00"))
    assert reminders(srv, "p1") == want + [("commitment.0930", DAY)]
    assert reminders(srv, "p2") == want  # e2 has filed today
    # at the deadline: one summary per district to its duty regulators, or
    # to those of the nearest division above (440113 has none: 4401's)
    assert summaries(srv, "d1") == []
    set_clock(srv, at("10:00:01"))
    d1 = summaries(srv, "d1")
    assert len(d1) == 1 and d1[0]["division"] == "440106" and d1[0]["date"] == DAY
    assert [m["enterprise"] for m in d1[0]["missing"]] == ["e1"]
    d2 = summaries(srv, "d2")
    assert [s["division"] for s in d2] == ["440113"]
    assert d2[0]["missing"] == [] and d2[0]["filed"] == 1
    assert summaries(srv, "g1") == [] and summaries(srv, "g2") == []
    set_clock(srv, at("10:30:00"))
    time.sleep(1.2)
    assert len(summaries(srv, "d1")) == 1  # once


def test_runs_do_not_hold_the_loop(server):
    """A run is taken by moving its stored deadline to a lease, answered
    later; its reads (the journal, who filed, the accounts) go through a
    replay and its pushes and journal entry are one write sent without
    waiting: on Redis no node's loop waits for the store while the day's
    runs are sent (08:30, 09:00, 09:30, 10:00), and each is sent once."""
    srv = start(server, "08:00:00")
    nodes = [srv] + srv.peers

    def waits():
        return sum(metric(n.metrics(), "yjt_redis_loop_waits_total") or 0 for n in nodes)

    r = srv.http("POST", "/api/v1/commitments", token=srv.token("p2"), body=filing())
    assert r.status in (200, 201), r
    before = waits()
    for t in ("08:30:01", "09:00:01", "09:30:01", "10:00:01"):
        set_clock(srv, at(t))
    assert waits() - before == 0
    assert reminders(srv, "p1") == [("commitment.0830", DAY), ("commitment.0930", DAY)]
    assert reminders(srv, "p2") == []
    assert reminders(srv, "g1", "selfeval") == [("selfeval", DAY)]
    assert [s["division"] for s in summaries(srv, "d1")] == ["440106"]


def test_restart_after_0830_catches_up_once(server):
    srv = start(server, "08:29:00")
    srv.stop()
    srv.settings["test_clock"] = at("08:35:00")  # down across 08:30
    srv.start()
    deadline = time.monotonic() + 5
    while reminders(srv, "p1") == []:
        assert time.monotonic() < deadline, "no catch-up after the restart"
        time.sleep(0.1)
    assert reminders(srv, "p1") == [("commitment.0830", DAY)]
    assert "catching up" in srv.stderr()
    srv.stop()
    srv.settings["test_clock"] = at("08:40:00")
    srv.start()
    time.sleep(1.5)
    assert reminders(srv, "p1") == [("commitment.0830", DAY)]  # not again


def test_down_past_the_cutoff_skips_and_goes_on_tomorrow(server):
    srv = start(server, "08:00:00")
    srv.stop()
    srv.settings["test_clock"] = at("10:05:00")  # down through 08:30, 09:30 and 10:00
    srv.start()
    time.sleep(1.5)
    assert reminders(srv, "p1") == []
    assert "missed" in srv.stderr()
    set_clock(srv, at("08:30:01", "2026-12-02"))
    assert reminders(srv, "p1") == [("commitment.0830", "2026-12-02")]


@sqlite_only
def test_crash_after_sending_never_sends_twice(server):
    srv = start(server, "08:29:58")
    deadline = time.monotonic() + 8
    while reminders(srv, "p1") == []:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # As if the process died after the pushes were stored but before the
    # next run was: the old run is due again at the next start.
    srv.kill9()
    db = sqlite3.connect(str(srv.data_dir / "yjt.db"), timeout=10)
    with db:
        n = db.execute("UPDATE deadlines SET due=due-86400000 WHERE id='rem/commitment.0830'")
        assert n.rowcount == 1
        db.execute("UPDATE deadlines SET body=? WHERE id='rem/commitment.0830'",
                   (json.dumps({"job": "commitment.0830", "date": DAY}),))
    db.close()
    srv.settings["test_clock"] = at("08:31:00")
    srv.start()
    time.sleep(1.5)
    assert reminders(srv, "p1") == [("commitment.0830", DAY)]
    assert "was already sent" in srv.stderr()


@sqlite_only
def test_a_run_held_when_the_node_died_is_run_at_its_restart(server):
    """A node takes a run by moving its deadline to a lease that names the
    node. Had it died during the run, the run would wait for the lease to
    end (10 minutes) on any other node, but the same node, restarted, runs
    it at once."""
    import socket
    srv = start(server, "08:29:00")
    srv.kill9()
    db = sqlite3.connect(str(srv.data_dir / "yjt.db"), timeout=10)
    with db:
        due = db.execute("SELECT due FROM deadlines WHERE id='rem/commitment.0830'").fetchone()[0]
        lease = {"job": "commitment.0830", "date": DAY, "due": due,
                 "holder": f"{socket.gethostname()}:{srv.port}"}
        n = db.execute("UPDATE deadlines SET due=?, body=? WHERE id='rem/commitment.0830'",
                       (due + 600_000, json.dumps(lease)))
        assert n.rowcount == 1
    db.close()
    srv.settings["test_clock"] = at("08:31:00")
    srv.start()
    deadline = time.monotonic() + 5
    while reminders(srv, "p1") == []:
        assert time.monotonic() < deadline, "the run held at the crash was not run"
        time.sleep(0.1)
    assert "was held by this node" in srv.stderr()
    assert reminders(srv, "p1") == [("commitment.0830", DAY)]


def test_selfevaluation_from_the_1st_to_the_5th(server):
    srv = start(server, "08:59:00")
    set_clock(srv, at("09:00:01"))
    for name in ("g1", "g2"):
        assert reminders(srv, name, "selfeval") == [("selfeval", DAY)], name
    assert reminders(srv, "p1", "selfeval") == []
    r = srv.http("POST", "/api/v1/self-evaluations", token=srv.token("g2"),
                 body={"summary": "11月：视频巡查重点企业 23 家，覆盖率 100%。"})
    assert r.status == 201, r
    ev = r.json["self_evaluation"]
    assert ev["period"] == "2026-12" and ev["covers"] == "2026-11"
    # who filed, who has not: the city regulator sees its district's
    got = srv.http("GET", "/api/v1/self-evaluations?period=2026-12&division=4401",
                   token=srv.token("g1")).json
    assert [f["user"] for f in got["filed"]] == [srv.users["g2"]]
    assert srv.users["g1"] in [m["id"] for m in got["missing"]]
    assert srv.http("POST", "/api/v1/self-evaluations", token=srv.token("p1"),
                    body={"summary": "x"}).status == 403
    assert srv.http("POST", "/api/v1/self-evaluations", token=srv.token("g1"),
                    body={"summary": ""}).status == 400
    assert srv.http("GET", "/api/v1/self-evaluations?division=4403",
                    token=srv.token("g2")).status == 403
    set_clock(srv, at("09:00:01", "2026-12-02"))
    assert reminders(srv, "g1", "selfeval") == [("selfeval", DAY), ("selfeval", "2026-12-02")]
    assert reminders(srv, "g2", "selfeval") == [("selfeval", DAY)]
    set_clock(srv, at("09:00:01", "2026-12-06"))  # the 6th: none
    time.sleep(1.2)
    assert len(reminders(srv, "g1", "selfeval")) == 2


def test_clock_switch_is_off_by_default(server):
    srv = server(users=[OPS])
    r = srv.http("POST", "/api/v1/test/clock", token=srv.token("ops"),
                 body={"now": at("08:30:00")})
    assert_error(r, 404, "not_found")


def test_changed_reminder_times(server):
    srv = start(server, "08:00:00")
    srv.stop()
    srv.settings["test_clock"] = at("08:40:00")
    srv.settings["commitment_reminder_times"] = "08:45"
    srv.start()
    assert "dropping the schedule of rem/commitment.0830" in srv.stderr()
    set_clock(srv, at("08:45:01"))
    assert reminders(srv, "p1") == [("commitment.0845", DAY)]
    r = srv.http("GET", "/api/v1/inbox", token=srv.token("p1")).json["items"][0]
    assert "10:00" in r["body"]


def test_bad_reminder_settings_stop_the_start(server):
    for key, value in (("business_tz", "Mars/Olympus"), ("commitment_reminder_times", "8h30"),
                       ("commitment_deadline", "25:00"), ("test_clock", "yesterday")):
        srv = server(users=[OPS], settings={key: value}, start=False)
        srv.start(wait=False)
        rc = srv.proc.wait(10)
        srv.proc = None
        assert rc != 0, (key, value)


def test_monthly_confirmation_reminder_on_its_day(server):
    srv = start(server, "08:00:00", confirm_reminder_day="3")
    set_clock(srv, at("09:00:01", "2026-12-02"))
    time.sleep(1.2)

    def confirms(name):
        r = srv.http("GET", "/api/v1/inbox?limit=200", token=srv.token(name)).json["items"]
        return [i["payload"] for i in r if i["payload"].get("type") == "enterprise.confirm"]

    assert confirms("p1") == []
    set_clock(srv, at("09:00:01", "2026-12-03"))
    got = confirms("p1")
    assert len(got) == 1 and got[0]["month"] == "2026-12", got
    assert "e1" in got[0]["enterprises"]
    assert len(confirms("s1")) == 1 and len(confirms("p2")) == 1
    assert confirms("w1") == [] and confirms("g1") == []
    set_clock(srv, at("12:00:00", "2026-12-03"))
    time.sleep(1.2)
    assert len(confirms("p1")) == 1
