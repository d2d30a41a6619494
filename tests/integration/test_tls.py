"""TLS: HTTPS and WSS on the same port; plain HTTP/WS on that port fails."""

import http.client
import socket
import ssl

import pytest
import websockets

from conftest import DEFAULT_PASSWORD, WsClient, http_request, run, user

ENTERPRISES = [("e1", "Acme Chemicals", "440106")]
USERS = [user("alice", "corp", "e1")]


@pytest.fixture
def tls_server(server):
    return server(enterprises=ENTERPRISES, users=USERS, tls=True)


def test_https_healthz_and_certificate(tls_server):
    srv = tls_server
    r = srv.http("GET", "/healthz")  # verifies against the self-signed cert
    assert r.status == 200 and r.json == {"status": "ok"}
    # The server presents exactly the certificate it was given.
    pem = open(srv.tls[0]).read()
    der = ssl.PEM_cert_to_DER_cert(pem)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        ctx = srv.tls_context
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.getpeercert(binary_form=True) == der


def test_https_rest_login_and_me(tls_server):
    srv = tls_server
    r = srv.login("alice")
    assert r.status == 200, r
    me = srv.http("GET", "/api/v1/me", token=r.json["token"])
    assert me.status == 200 and me.json["user"]["username"] == "alice"


def test_wss_login_and_ping(tls_server):
    srv = tls_server

    async def body():
        c = await srv.ws()
        assert c.ws.subprotocol == "yjt.v1"
        r = await c.request("auth.login", username="alice", password=DEFAULT_PASSWORD,
                            device_id="d", platform="android")
        assert r["ok"] is True, r
        await c.ok("ping")
        await c.close()

    run(body())


def test_plain_http_to_tls_port_fails(tls_server):
    srv = tls_server
    try:
        r = http_request(srv.port, "GET", "/healthz", timeout=5)
    except (OSError, http.client.HTTPException):
        pass  # refused / reset / garbage: all fine
    else:
        assert not (r.status == 200 and r.json == {"status": "ok"}), \
            "plain HTTP must not be served on the TLS port"
    # The server survives the plain-text attempt.
    assert srv.http("GET", "/healthz").status == 200


def test_plain_ws_to_tls_port_fails(tls_server):
    srv = tls_server

    async def body():
        url = f"ws://127.0.0.1:{srv.port}/ws"
        with pytest.raises((OSError, websockets.InvalidHandshake, websockets.ConnectionClosed,
                            EOFError, TimeoutError, ConnectionError)):
            c = await WsClient.connect(url, open_timeout=5)
            await c.close()

    run(body())
    assert srv.http("GET", "/healthz").status == 200


def test_tls_handshake_garbage_does_not_hurt(tls_server):
    srv = tls_server
    for junk in (b"\x16\x03\x01\x00\x05hello", b"\x00" * 100, b"GET / HTTP/1.0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(junk)
            s.settimeout(3)
            try:
                s.recv(100)
            except OSError:
                pass
    assert srv.http("GET", "/healthz").status == 200


def test_bad_tls_files_refuse_to_start(server, tmp_path):
    from conftest import free_port, run_refused
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    rc, _ = run_refused(["--listen", f"127.0.0.1:{free_port()}", "--data-dir", tmp_path / "d",
                         "--tls-cert", bogus, "--tls-key", bogus], 10,
                        "yjtd started with an unusable certificate")
    assert rc != 0
