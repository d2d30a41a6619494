"""yjtctl: users, enterprises, carriers, audit; error handling; use while
yjtd runs."""

import asyncio

import pytest

from conftest import DEFAULT_PASSWORD, assert_error, run, user

ENTERPRISES = [("e1", "Acme Chemicals", "440106")]


def rows(cp):
    assert cp.returncode == 0, cp.stderr
    return [line.split("\t") for line in cp.stdout.splitlines() if line.strip()]


def users_by_name(srv):
    out = {}
    for r in rows(srv.ctl("user", "list")):
        assert len(r) == 6, f"user list row needs 6 tab-separated fields: {r}"
        out[r[1]] = r
    return out


def assert_fails(cp, what):
    assert cp.returncode == 1, f"{what}: exit {cp.returncode}, want 1 (stderr {cp.stderr!r})"
    assert cp.stderr.strip(), f"{what}: no message on stderr"


@pytest.fixture
def offline(server):
    """A data dir with one enterprise, yjtd not running."""
    return server(enterprises=ENTERPRISES, start=False)


def test_user_add_prints_id_and_list_shows_it(offline):
    srv = offline
    uid = srv.add_user("alice", "corp", "e1", position="safety officer",
                       display_name="Alice A", phone="13800000001")
    assert "\n" not in uid and " " not in uid and uid
    gid = srv.add_user("gina", "gov", "4401")
    assert gid != uid
    listed = users_by_name(srv)
    assert listed["alice"][0] == uid
    assert listed["alice"][2] == "corp" and listed["alice"][3] == "e1"
    assert listed["alice"][4] == "safety officer"
    assert listed["gina"][0] == gid and listed["gina"][2] == "gov" and listed["gina"][3] == "4401"
    assert listed["alice"][5] == listed["gina"][5], "both enabled"
    assert DEFAULT_PASSWORD not in srv.ctl("user", "list").stdout


def test_user_add_all_roles(offline):
    srv = offline
    srv.add_carrier("c1", "Haulage", "440106")
    srv.add_user("g", "gov", "44")
    srv.add_user("c", "corp", "e1")
    srv.add_user("t", "trs", "c1")
    srv.add_user("a", "admin", "ops")
    roles = {n: r[2] for n, r in users_by_name(srv).items()}
    assert roles == {"g": "gov", "c": "corp", "t": "trs", "a": "admin"}


def test_user_add_errors(offline):
    srv = offline
    srv.add_user("alice", "corp", "e1")
    base = ["user", "add", "--org", "e1", "--role", "corp"]
    assert_fails(srv.ctl(*base, "--username", "alice", "--password", "another-pass-1"),
                 "duplicate username")
    assert_fails(srv.ctl("user", "add", "--username", "x1", "--password", "long-enough-1",
                         "--role", "emperor", "--org", "e1"), "bad role")
    assert_fails(srv.ctl(*base, "--username", "x2", "--password", "short7!"),
                 "7-character password")
    cp = srv.ctl(*base, "--username", "x3", "--password", "eight888")
    assert cp.returncode == 0, f"an 8-character password is long enough: {cp.stderr}"
    cp = srv.ctl("user", "add", "--username", "x4", "--role", "corp", "--org", "e1")
    assert cp.returncode != 0, "missing --password must fail"
    cp = srv.ctl("user", "add", "--password", "long-enough-1", "--role", "corp", "--org", "e1")
    assert cp.returncode != 0, "missing --username must fail"
    names = set(users_by_name(srv))
    assert names == {"alice", "x3"}, names


def test_duplicate_add_keeps_original_password(server):
    srv = server(enterprises=ENTERPRISES, users=[user("alice", "corp", "e1")])
    cp = srv.ctl("user", "add", "--username", "alice", "--password", "other-password",
                 "--role", "gov", "--org", "44")
    assert_fails(cp, "duplicate username")
    r = srv.login("alice")
    assert r.status == 200 and r.json["user"]["role"] == "corp"
    assert srv.login("alice", "other-password").status == 401


def test_enterprise_add_and_list(offline):
    srv = offline
    srv.add_enterprise("e2", "Big Gas", "44", key=True)
    srv.add_enterprise("e3", "Small Paint", "4403")
    listed = {r[0]: r for r in rows(srv.ctl("enterprise", "list"))}
    assert set(listed) == {"e1", "e2", "e3"}
    for r in listed.values():
        assert len(r) == 4, f"enterprise list row needs 4 fields: {r}"
    assert listed["e2"][1] == "Big Gas" and listed["e2"][2] == "44"
    assert listed["e3"][1] == "Small Paint" and listed["e3"][2] == "4403"
    assert listed["e1"][2] == "440106"
    assert listed["e2"][3] != listed["e3"][3], "--key must show in the key column"
    assert listed["e1"][3] == listed["e3"][3]


def test_division_codes_are_validated(offline):
    srv = offline
    for bad in ("4", "440", "44010", "4401066", "44a1", "", "-44", "44 01"):
        assert_fails(srv.ctl("enterprise", "add", "--id", f"x{len(bad)}", "--name", "X",
                             "--division", bad), f"enterprise division {bad!r}")
        assert_fails(srv.ctl("carrier", "add", "--id", f"y{len(bad)}", "--name", "Y",
                             "--division", bad), f"carrier division {bad!r}")
    assert {r[0] for r in rows(srv.ctl("enterprise", "list"))} == {"e1"}
    assert rows(srv.ctl("carrier", "list")) == []


def test_enterprise_and_carrier_duplicates(offline):
    srv = offline
    assert_fails(srv.ctl("enterprise", "add", "--id", "e1", "--name", "Again", "--division",
                         "4401"), "duplicate enterprise id")
    srv.add_carrier("c1", "Haulage", "440305")
    assert_fails(srv.ctl("carrier", "add", "--id", "c1", "--name", "Again", "--division",
                         "4403"), "duplicate carrier id")
    listed = rows(srv.ctl("carrier", "list"))
    assert len(listed) == 1 and listed[0][0] == "c1" and listed[0][1] == "Haulage" \
        and listed[0][2] == "440305", listed
    assert [r[1] for r in rows(srv.ctl("enterprise", "list"))] == ["Acme Chemicals"]


def test_names_with_spaces_and_unicode(offline):
    srv = offline
    srv.add_enterprise("e-uni", "广州化工 有限公司", "440113")
    listed = {r[0]: r for r in rows(srv.ctl("enterprise", "list"))}
    assert listed["e-uni"][1] == "广州化工 有限公司"
    srv.add_user("wang", "corp", "e-uni", position="安全主任", display_name="王 五")
    assert users_by_name(srv)["wang"][4] == "安全主任"


def test_passwd_disable_enable(server):
    srv = server(enterprises=ENTERPRISES, users=[user("alice", "corp", "e1")])
    enabled_flag = users_by_name(srv)["alice"][5]
    srv.ctl("user", "disable", "--username", "alice", check=True)
    disabled_flag = users_by_name(srv)["alice"][5]
    assert disabled_flag != enabled_flag, "the disabled column must change"
    assert srv.login("alice").status in (401, 403)
    srv.ctl("user", "enable", "--username", "alice", check=True)
    assert users_by_name(srv)["alice"][5] == enabled_flag
    assert srv.login("alice").status == 200

    assert_fails(srv.ctl("user", "passwd", "--username", "alice", "--password", "short"),
                 "short password")
    assert srv.login("alice").status == 200, "a refused passwd must not change anything"
    srv.ctl("user", "passwd", "--username", "alice", "--password", "brand-new-pw", check=True)
    assert srv.login("alice", "brand-new-pw").status == 200
    assert_error(srv.login("alice"), 401, "unauthorized")


def test_unknown_user_operations_fail(offline):
    srv = offline
    assert_fails(srv.ctl("user", "passwd", "--username", "ghost", "--password", "long-enough"),
                 "passwd of unknown user")
    assert_fails(srv.ctl("user", "disable", "--username", "ghost"), "disable unknown user")
    assert_fails(srv.ctl("user", "enable", "--username", "ghost"), "enable unknown user")


def test_usage_errors(offline):
    srv = offline
    assert srv.ctl().returncode != 0
    assert srv.ctl("frobnicate").returncode != 0
    assert srv.ctl("user", "frobnicate").returncode != 0
    assert srv.ctl("user", "add", "--username").returncode != 0


def test_works_while_yjtd_runs(server):
    srv = server(enterprises=ENTERPRISES)

    async def body():
        observer = None
        for i in range(3):
            cp = await asyncio.to_thread(
                srv.ctl, "user", "add", "--username", f"u{i}", "--password", "pass-word-1",
                "--role", "corp", "--org", "e1")
            assert cp.returncode == 0, cp.stderr
            srv.users[f"u{i}"] = cp.stdout.strip()
        observer = await srv.ws_login("u0", password="pass-word-1")
        # The new enterprise and its user are visible to the running server.
        cp = await asyncio.to_thread(srv.ctl, "enterprise", "add", "--id", "e9", "--name",
                                     "Late Arrival", "--division", "440106")
        assert cp.returncode == 0, cp.stderr
        r = await observer.request("presence.query", users=[srv.users["u1"]])
        assert r["ok"] is True, r
        r = await observer.request("presence.query", enterprise="e9")
        assert r["ok"] is False and r["error"]["code"] == "forbidden", r
        await observer.close()

    run(body())
    assert srv.login("u2", "pass-word-1").status == 200
    assert len(rows(srv.ctl("enterprise", "list"))) == 2


def test_audit_list(server):
    srv = server(enterprises=ENTERPRISES, users=[user("alice", "corp", "e1"),
                                                 user("bob", "corp", "e1")])
    assert srv.login("alice").status == 200
    assert srv.login("alice", "wrong-password").status == 401
    srv.ctl("user", "disable", "--username", "bob", check=True)
    lines = rows(srv.ctl("audit", "list"))
    for r in lines:
        assert len(r) == 5, f"audit row needs 5 fields (ts actor action target result): {r}"
    alice = (srv.users["alice"], "alice")
    bob = (srv.users["bob"], "bob")

    def has(action_word, who, result_pred):
        return any(action_word in r[2] and (r[3] in who or r[1] in who) and result_pred(r[4])
                   for r in lines)

    assert has("login", alice, lambda res: res == "ok"), lines
    assert has("login", alice, lambda res: res not in ("ok", "")), "no failed-login row"
    assert has("add", alice, lambda res: True), "no user-added row for alice"
    assert has("disable", bob, lambda res: True), "no user-disabled row for bob"

    limited = rows(srv.ctl("audit", "list", "--limit", "2"))
    assert len(limited) == 2, limited
    assert set(map(tuple, limited)) <= set(map(tuple, lines))
    # The newest events are the ones kept: the disable is among them.
    assert any("disable" in r[2] for r in limited), limited
