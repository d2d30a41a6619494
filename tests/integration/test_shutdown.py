"""SIGTERM: open connections get 1001, the process exits 0, and the port and
data can be used again."""

import asyncio
import signal
import time

from conftest import run, single_node, user

ENTERPRISES = [("e1", "Acme Chemicals", "440106")]
USERS = [user("alice", "corp", "e1"), user("gina", "gov", "4401")]


def test_sigterm_idle_exits_zero(server):
    srv = server()
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < 5, "shutting down an idle server should be quick"


@single_node
def test_sigterm_closes_connections_with_1001(server):
    srv = server(enterprises=ENTERPRISES, users=USERS)

    async def body():
        authed = [await srv.ws_login("alice", device_id=f"d{i}") for i in range(3)]
        g = await srv.ws_login("gina")
        await g.ok("presence.subscribe", users=[srv.users["alice"]])
        unauth = await srv.ws()
        srv.proc.send_signal(signal.SIGTERM)
        for c in authed + [g, unauth]:
            code = await c.wait_closed(8)
            assert code == 1001, f"close code {code}, want 1001 (going away)"
        rc = await asyncio.to_thread(srv.proc.wait, 10)
        assert rc == 0, f"exit code {rc}"

    run(body())
    srv.stop()  # records the exit code; asserts 0


@single_node
def test_sigterm_while_requests_in_flight(server):
    srv = server(enterprises=ENTERPRISES, users=USERS)

    async def body():
        c = await srv.ws_login("alice")
        for i in range(50):
            await c.send_obj({"id": i, "type": "ping"})
        srv.proc.send_signal(signal.SIGTERM)
        code = await c.wait_closed(8)
        assert code == 1001, code
        # Every reply we got is well formed; none is an internal error.
        for m in c.all_messages[1:]:
            assert m.get("ok") is True or m["error"]["code"] != "internal", m

    run(body())
    assert srv.stop() == 0


def test_restart_on_same_port_after_shutdown(server):
    srv = server(enterprises=ENTERPRISES, users=USERS)

    async def body():
        c = await srv.ws_login("alice")
        return c

    async def connect_then_stop():
        c = await body()
        await asyncio.to_thread(srv.stop)
        assert await c.wait_closed(5) == 1001

    run(connect_then_stop())
    srv.start()  # same port, same data dir
    assert srv.login("alice").status == 200


def test_no_new_connections_after_shutdown(server):
    srv = server()
    port = srv.port
    srv.stop()
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            raise AssertionError("the port still accepts connections after exit")
    except OSError:
        pass
