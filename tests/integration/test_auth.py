"""Authentication: REST login/refresh/logout/me, WebSocket auth, lockout,
address throttling, revocation, multiple devices and replacement."""

import asyncio
import time

from conftest import DEFAULT_PASSWORD, assert_error, metric, run, user, wait_until

ENTERPRISES = [("e1", "Acme Chemicals", "440106")]
USERS = [
    user("alice", "corp", "e1", position="safety officer", display_name="Alice A",
         phone="13800000001"),
    user("bob", "corp", "e1"),
    user("gina", "gov", "4401", position="inspector"),
]


def start(server, **kw):
    return server(enterprises=ENTERPRISES, users=USERS, **kw)


def body_for(username, password=DEFAULT_PASSWORD, device_id="d1", platform="android"):
    return {"username": username, "password": password, "device_id": device_id,
            "platform": platform}


# ---------------------------------------------------------------- REST


def test_rest_login_returns_token_and_user(server):
    srv = start(server)
    r = srv.login("alice")
    assert r.status == 200, r
    j = r.json
    assert isinstance(j["token"], str) and len(j["token"]) >= 16
    assert isinstance(j["expires_at"], (int, float, str))
    u = j["user"]
    assert u["id"] == srv.users["alice"]
    assert u["username"] == "alice"
    assert u["display_name"] == "Alice A"
    assert u["role"] == "corp"
    assert u["org"] == "e1"
    assert u["position"] == "safety officer"
    for k in u:
        assert not any(w in k.lower() for w in ("hash", "salt", "password")), \
            f"secret field {k} leaked"
    assert DEFAULT_PASSWORD not in r.text


def test_rest_login_expires_at_matches_token_ttl(server):
    srv = start(server, settings={"token_ttl_s": "3600"})
    now = time.time()
    exp = srv.login("alice").json["expires_at"]
    if isinstance(exp, (int, float)):
        secs = exp / 1000 if exp > 1e11 else exp  # ms or s since the epoch
        assert abs(secs - (now + 3600)) < 120, f"expires_at {exp} is not now+token_ttl_s"


def test_rest_me_with_token(server):
    srv = start(server)
    tok = srv.token("alice")
    r = srv.http("GET", "/api/v1/me", token=tok)
    assert r.status == 200, r
    assert r.json["user"]["username"] == "alice"
    assert r.json["user"]["id"] == srv.users["alice"]
    assert r.json["user"]["role"] == "corp"


def test_rest_me_without_or_with_bad_token_is_401(server):
    srv = start(server)
    assert_error(srv.http("GET", "/api/v1/me"), 401, "unauthorized")
    assert_error(srv.http("GET", "/api/v1/me", token="garbage"), 401, "unauthorized")
    tok = srv.token("alice")
    assert_error(srv.http("GET", "/api/v1/me", token=tok[:-2] + ("AA" if tok[-2:] != "AA"
                                                                    else "BB")),
                 401, "unauthorized")
    assert_error(srv.http("GET", "/api/v1/me", headers={"Authorization": f"Basic {tok}"}),
                 401, "unauthorized")


def test_rest_login_wrong_password_and_unknown_user_are_401(server):
    srv = start(server)
    assert_error(srv.login("alice", "not-the-password"), 401, "unauthorized")
    assert_error(srv.login("nobody-here", "whatever-123"), 401, "unauthorized")
    # Same message either way: no user enumeration.
    m1 = srv.login("alice", "not-the-password").json["error"]["message"]
    m2 = srv.login("nobody-here", "whatever-123").json["error"]["message"]
    assert m1 == m2, "bad password and unknown user must look the same"


def test_rest_login_bad_request(server):
    srv = start(server)
    path = "/api/v1/auth/login"
    assert_error(srv.http("POST", path, raw="{not json"), 400, "bad_request")
    assert_error(srv.http("POST", path, raw="[1,2]"), 400, "bad_request")
    assert_error(srv.http("POST", path, raw=""), 400, "bad_request")
    for missing in ("username", "password"):
        b = body_for("alice")
        del b[missing]
        r = srv.http("POST", path, body=b)
        assert r.status == 400 and r.error_code() == "bad_request", f"without {missing}: {r!r}"
    b = body_for("alice")
    b["username"] = 5
    assert_error(srv.http("POST", path, body=b), 400, "bad_request")
    # None of that locked the account.
    assert srv.login("alice").status == 200


def test_rest_login_requires_device_id_and_platform(server):
    """The contract's login body is {username, password, device_id, platform};
    a missing field is 400 bad_request."""
    srv = start(server)
    for missing in ("device_id", "platform"):
        b = body_for("alice")
        del b[missing]
        r = srv.http("POST", "/api/v1/auth/login", body=b)
        assert r.status == 400 and r.error_code() == "bad_request", f"without {missing}: {r!r}"


def test_rest_post_with_empty_body_variants(server):
    """refresh/logout carry no body; clients differ in how they say so
    (no Content-Length, Content-Length: 0, or "{}"). Each is one request
    with one effect and one reply."""
    srv = start(server)
    for variant in ({"headers": {"Content-Length": "0"}}, {"raw": "{}"}, {}):
        tok = srv.token("alice", device_id="v")
        r = srv.http("POST", "/api/v1/auth/refresh", token=tok, **variant)
        assert r.status == 200 and "token" in r.json, f"refresh {variant}: {r!r}"
        r2 = srv.http("POST", "/api/v1/auth/logout", token=r.json["token"], **variant)
        assert r2.status == 200 and r2.json == {"ok": True}, f"logout {variant}: {r2!r}"


def test_rest_refresh_revokes_old_token(server):
    srv = start(server)
    old = srv.token("alice")
    r = srv.refresh(old)
    assert r.status == 200, r
    new = r.json["token"]
    assert new != old
    assert "expires_at" in r.json
    assert srv.http("GET", "/api/v1/me", token=new).status == 200
    assert_error(srv.http("GET", "/api/v1/me", token=old), 401, "unauthorized")
    assert_error(srv.refresh(old), 401, "unauthorized")
    assert_error(srv.http("POST", "/api/v1/auth/refresh"), 401, "unauthorized")


def test_rest_logout_revokes_token(server):
    srv = start(server)
    tok = srv.token("alice")
    other = srv.token("alice", device_id="d2")
    r = srv.logout(tok)
    assert r.status == 200, r
    assert r.json == {"ok": True}
    assert_error(srv.http("GET", "/api/v1/me", token=tok), 401, "unauthorized")
    assert_error(srv.logout(tok), 401, "unauthorized")
    # Only that token: the other session of the same user is untouched.
    assert srv.http("GET", "/api/v1/me", token=other).status == 200


# ---------------------------------------------------------------- lockout / throttle


def test_account_lockout_and_unlock(server):
    srv = start(server, settings={"lockout_after": "3", "lockout_s": "2"})
    m0 = srv.metrics()
    for i in range(2):
        assert_error(srv.login("alice", f"wrong-{i}-password"), 401, "unauthorized")
    third = srv.login("alice", "wrong-3-password")
    assert third.status in (401, 429), third
    # Now locked: even the right password is refused.
    assert_error(srv.login("alice"), 429, "rate_limited")
    # Other accounts are not affected.
    assert srv.login("bob").status == 200
    m1 = srv.metrics()
    assert (metric(m1, "yjt_logins_total", result="locked") or 0) > \
        (metric(m0, "yjt_logins_total", result="locked") or 0)
    # The WebSocket login is refused too.

    async def ws_locked():
        c = await srv.ws()
        reply = await c.request("auth.login", **body_for("alice"))
        assert reply["ok"] is False and reply["error"]["code"] == "rate_limited", reply
        await c.close()

    run(ws_locked())
    # After lockout_s the right password works again.
    time.sleep(2.3)
    r = srv.login("alice")
    assert r.status == 200, f"account still locked after lockout_s: {r!r}"


def test_successful_login_resets_failure_count(server):
    srv = start(server, settings={"lockout_after": "3", "lockout_s": "30"})
    for _ in range(2):
        assert srv.login("alice", "wrong-password-x").status == 401
    assert srv.login("alice").status == 200
    for _ in range(2):
        assert srv.login("alice", "wrong-password-x").status == 401
    # Only 2 consecutive failures since the last success: not locked.
    assert srv.login("alice").status == 200


def test_address_throttling(server):
    srv = start(server, settings={"addr_fail_limit": "5", "addr_fail_window_s": "300",
                                  "lockout_after": "100"})
    statuses = [srv.login(f"ghost{i}", "wrong-password-x").status for i in range(5)]
    assert all(s == 401 for s in statuses), statuses
    r = srv.login("ghost-next", "wrong-password-x")
    assert_error(r, 429, "rate_limited")


# ---------------------------------------------------------------- WebSocket auth


def test_ws_subprotocol_negotiated(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        assert c.ws.subprotocol == "yjt.v1"
        await c.close()

    run(body())


def test_ws_login_reply_shape(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        r = await c.request("auth.login", **body_for("gina", device_id="g1", platform="ios"))
        assert r["ok"] is True, r
        assert isinstance(r["token"], str) and r["token"]
        assert "expires_at" in r
        assert r["user"]["id"] == srv.users["gina"]
        assert r["user"]["role"] == "gov"
        assert r["user"]["org"] == "4401"
        assert r["user"]["position"] == "inspector"
        # The token works on REST.
        me = await asyncio.to_thread(srv.http, "GET", "/api/v1/me", token=r["token"])
        assert me.status == 200 and me.json["user"]["username"] == "gina"
        pong = await c.ok("ping")
        assert isinstance(pong["now"], int)
        await c.close()

    run(body())


def test_ws_string_ids_are_echoed(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        r = await c.request_obj({"id": "login-1", "type": "auth.login", **body_for("alice")})
        assert r["re"] == "login-1" and r["ok"] is True
        r = await c.request_obj({"id": "p", "type": "ping"})
        assert r["re"] == "p" and r["ok"] is True
        await c.close()

    run(body())


def test_ws_requests_before_auth_are_unauthorized(server):
    srv = start(server, settings={"auth_timeout_s": "3"})

    async def body():
        c = await srv.ws()
        for t in ("ping", "presence.query", "auth.refresh", "auth.logout"):
            r = await c.request(t, users=[])
            assert r["ok"] is False and r["error"]["code"] == "unauthorized", (t, r)
        # Still open, and a login afterwards works.
        assert not c.is_closed
        await c.login("alice")
        await c.ok("ping")
        await c.close()

    run(body())


def test_ws_wrong_password_keeps_connection_open(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        r = await c.request("auth.login", **body_for("alice", password="nope-nope-nope"))
        assert r["ok"] is False and r["error"]["code"] == "unauthorized", r
        assert isinstance(r["error"]["message"], str)
        await asyncio.sleep(0.3)
        assert not c.is_closed, "a wrong password must not close the connection"
        await c.login("alice")
        await c.ok("ping")
        await c.close()

    run(body())


def test_ws_auth_timeout_closes_4401(server):
    srv = start(server, settings={"auth_timeout_s": "1"})

    async def body():
        idle = await srv.ws()
        authed = await srv.ws_login("alice")
        t0 = time.monotonic()
        code = await idle.wait_closed(6)
        assert code == 4401, f"unauthenticated connection closed with {code}, want 4401"
        assert time.monotonic() - t0 < 5
        # An authenticated connection is not affected by the auth timeout.
        await asyncio.sleep(1.0)
        await authed.ok("ping")
        await authed.close()

    run(body())


def test_ws_auth_timeout_default_is_not_immediate(server):
    srv = start(server, settings={"auth_timeout_s": "3"})

    async def body():
        c = await srv.ws()
        await asyncio.sleep(1.5)
        assert not c.is_closed, "closed long before auth_timeout_s"
        await c.login("alice")
        await asyncio.sleep(2.5)
        await c.ok("ping")
        await c.close()

    run(body())


def test_ws_auth_token(server):
    srv = start(server)
    tok = srv.token("alice", device_id="phone")

    async def body():
        c = await srv.ws()
        r = await c.request("auth.token", token=tok, device_id="phone", platform="android")
        assert r["ok"] is True, r
        assert r["user"]["username"] == "alice"
        await c.ok("ping")
        # Without the optional fields too.
        c2 = await srv.ws()
        r = await c2.request("auth.token", token=tok)
        assert r["ok"] is True, r
        await c2.ok("ping")
        await c.close()
        await c2.close()

    run(body())


def test_ws_auth_token_invalid_closes_4401(server):
    srv = start(server)

    async def body():
        c = await srv.ws()
        r = await c.request("auth.token", token="definitely-not-a-token")
        assert r["ok"] is False and r["error"]["code"] == "unauthorized", r
        assert await c.wait_closed(5) == 4401

    run(body())


def test_ws_refresh(server):
    srv = start(server)

    async def body():
        c = await srv.ws_login("alice")
        old = (await asyncio.to_thread(srv.login, "alice", DEFAULT_PASSWORD, "other")).json
        first = c.all_messages[0]["token"]
        r = await c.ok("auth.refresh")
        assert r["token"] != first and "expires_at" in r
        me_old = await asyncio.to_thread(srv.http, "GET", "/api/v1/me", token=first)
        assert_error(me_old, 401, "unauthorized")
        me_new = await asyncio.to_thread(srv.http, "GET", "/api/v1/me", token=r["token"])
        assert me_new.status == 200
        # The connection itself keeps working, and other tokens are untouched.
        await c.ok("ping")
        me_other = await asyncio.to_thread(srv.http, "GET", "/api/v1/me", token=old["token"])
        assert me_other.status == 200
        await c.close()

    run(body())


def test_ws_logout_closes_1000_and_4403_for_same_token(server):
    srv = start(server)

    async def body():
        a = await srv.ws_login("alice", device_id="a")
        tok = a.all_messages[0]["token"]
        b = await srv.ws()
        r = await b.request("auth.token", token=tok, device_id="b", platform="web")
        assert r["ok"] is True, r
        # A different token of the same user must survive.
        c = await srv.ws_login("alice", device_id="c")

        r = await a.request("auth.logout")
        assert r["ok"] is True, r
        assert await a.wait_closed(5) == 1000
        assert await b.wait_closed(5) == 4403
        await c.ok("ping")
        me = await asyncio.to_thread(srv.http, "GET", "/api/v1/me", token=tok)
        assert_error(me, 401, "unauthorized")
        await c.close()

    run(body())


def test_rest_logout_closes_ws_sessions_of_that_token(server):
    srv = start(server)
    tok = srv.token("alice", device_id="a")

    async def body():
        c = await srv.ws()
        assert (await c.request("auth.token", token=tok, device_id="a"))["ok"] is True
        r = await asyncio.to_thread(srv.logout, tok)
        assert r.status == 200
        assert await c.wait_closed(6) == 4403

    run(body())


def test_disable_user_closes_connections_and_revokes_tokens(server):
    srv = start(server)
    rest_tok = srv.token("alice", device_id="rest")

    async def body():
        c1 = await srv.ws_login("alice", device_id="p1")
        c2 = await srv.ws_login("alice", device_id="p2")
        other = await srv.ws_login("bob", device_id="b1")
        cp = await asyncio.to_thread(srv.ctl, "user", "disable", "--username", "alice")
        assert cp.returncode == 0, cp.stderr
        t0 = time.monotonic()
        assert await c1.wait_closed(7) == 4403
        assert await c2.wait_closed(7) == 4403
        assert time.monotonic() - t0 < 6.5
        await other.ok("ping")
        await other.close()

    run(body())
    assert_error(srv.http("GET", "/api/v1/me", token=rest_tok), 401, "unauthorized")
    r = srv.login("alice")
    assert r.status in (401, 403) and r.error_code() in ("unauthorized", "forbidden"), r

    async def ws_disabled():
        c = await srv.ws()
        r = await c.request("auth.login", **body_for("alice"))
        assert r["ok"] is False and r["error"]["code"] in ("unauthorized", "forbidden"), r
        await c.close()

    run(ws_disabled())
    srv.ctl("user", "enable", "--username", "alice", check=True)
    assert srv.login("alice").status == 200
    # Enabling does not resurrect the revoked token.
    assert_error(srv.http("GET", "/api/v1/me", token=rest_tok), 401, "unauthorized")


def test_passwd_revokes_tokens(server):
    srv = start(server)
    tok = srv.token("alice")
    srv.ctl("user", "passwd", "--username", "alice", "--password", "new-password-9",
            check=True)
    wait_until(lambda: srv.http("GET", "/api/v1/me", token=tok).status == 401, 6,
               what="old token revoked after user passwd")
    assert_error(srv.login("alice"), 401, "unauthorized")
    assert srv.login("alice", "new-password-9").status == 200


def test_passwd_closes_live_connections(server):
    srv = start(server)

    async def body():
        c = await srv.ws_login("alice")
        cp = await asyncio.to_thread(srv.ctl, "user", "passwd", "--username", "alice",
                                     "--password", "new-password-9")
        assert cp.returncode == 0, cp.stderr
        code = await c.wait_closed(7)
        assert code == 4403, f"revoked session closed with {code}"

    run(body())


def test_same_user_several_devices_all_stay(server):
    srv = start(server)

    async def body():
        conns = [await srv.ws_login("alice", device_id=f"dev{i}",
                                    platform=("android", "ios", "web")[i]) for i in range(3)]
        await asyncio.sleep(0.3)
        for c in conns:
            assert not c.is_closed
            await c.ok("ping")
        for c in conns:
            await c.close()

    run(body())


def test_same_device_replaces_older_connection_4409(server):
    srv = start(server)

    async def body():
        old = await srv.ws_login("alice", device_id="same")
        other = await srv.ws_login("alice", device_id="different")
        new = await srv.ws_login("alice", device_id="same")
        assert await old.wait_closed(5) == 4409
        await new.ok("ping")
        await other.ok("ping")
        # Same device id of ANOTHER user is not a replacement.
        bob = await srv.ws_login("bob", device_id="same")
        await asyncio.sleep(0.3)
        assert not new.is_closed
        await new.ok("ping")
        await bob.ok("ping")
        for c in (new, other, bob):
            await c.close()

    run(body())


def test_lockout_survives_restart_and_enable_or_passwd_lifts_it(server):
    """The lock is stored, so a restart does not lift it; an administrator
    can lift it at once with `user enable` (or by setting a new password),
    and a failed login never undoes an administrator's change."""
    srv = start(server, settings={"lockout_after": "2", "lockout_s": "600"})
    for i in range(2):
        srv.login("alice", f"wrong-{i}-password")
    assert_error(srv.login("alice"), 429, "rate_limited")
    srv.restart()
    assert_error(srv.login("alice"), 429, "rate_limited")
    srv.ctl("user", "enable", "--username", "alice", check=True)
    assert srv.login("alice").status == 200
    # Lock again, then disable: failed logins must not flip it back.
    for i in range(2):
        srv.login("alice", f"wrong-{i}-password")
    srv.ctl("user", "disable", "--username", "alice", check=True)
    srv.login("alice", "wrong-9-password")
    listing = srv.ctl("user", "list", check=True).stdout
    line = next(l for l in listing.splitlines() if "\talice\t" in l)
    assert line.endswith("disabled"), line


def test_token_expiry_closes_socket_and_refresh_extends(server):
    """A socket lives as long as its token: at expires_at it is closed 4401
    unless the client refreshed; an expired token is refused everywhere."""
    srv = start(server, settings={"token_ttl_s": "5"})

    async def body():
        stale = await srv.ws_login("alice", device_id="stale")
        fresh = await srv.ws_login("alice", device_id="fresh")
        await asyncio.sleep(3)
        r = await fresh.request("auth.refresh")
        assert r["ok"] is True and r["expires_at"] > int(time.time() * 1000) + 3000, r
        # The unrefreshed one goes at its expiry (plus the 1 s check).
        assert await stale.wait_closed(5) == 4401
        await fresh.ok("ping")
        await fresh.close()

    run(body())
    old = srv.token("alice", device_id="rest")
    time.sleep(5.5)
    assert_error(srv.http("GET", "/api/v1/me", token=old), 401, "unauthorized")
