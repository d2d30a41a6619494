"""The duty console's files served at / from web_root: content types,
cache headers, 404s, and paths that try to leave the directory."""

import http.client
import socket
import time

from conftest import assert_error


def _site(tmp_path):
    root = tmp_path / "site"
    (root / "sdk").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "app.js").write_text("export const x = 1;\n")
    (root / "sdk" / "yjt.mjs").write_text("export default 2;\n")
    (root / "style.css").write_text("body{}\n")
    (root / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "i.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / "m.json").write_text('{"a": 1}')
    (root / ".hidden.js").write_text("secret")
    (root / "notes.bin").write_bytes(b"\x00\x01")
    (tmp_path / "outside.js").write_text("outside")
    (root / "link.js").symlink_to(tmp_path / "outside.js")
    return root


def _ctype(r):
    return {k.lower(): v for k, v in r.headers.items()}.get("content-type", "")


def _header(r, name):
    return {k.lower(): v for k, v in r.headers.items()}.get(name, "")


def _raw_get(port, target):
    """Sends a request line exactly as given (no client-side normalising)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_files_are_served_with_their_content_types(server, tmp_path):
    root = _site(tmp_path)
    srv = server(settings={"web_root": str(root)})
    r = srv.http("GET", "/")
    assert r.status == 200 and r.text == (root / "index.html").read_text()
    assert _ctype(r) == "text/html; charset=utf-8"
    assert _header(r, "cache-control") == "no-cache"
    assert _header(r, "x-content-type-options") == "nosniff"
    want = {"/index.html": "text/html; charset=utf-8",
            "/app.js": "text/javascript; charset=utf-8",
            "/sdk/yjt.mjs": "text/javascript; charset=utf-8",
            "/style.css": "text/css; charset=utf-8",
            "/logo.svg": "image/svg+xml",
            "/i.png": "image/png",
            "/m.json": "application/json"}
    for path, ctype in want.items():
        r = srv.http("GET", path)
        assert r.status == 200, (path, r)
        assert _ctype(r) == ctype, (path, r.headers)
        assert r.body == (root / path.lstrip("/")).read_bytes(), path
    # a query string does not change the file
    assert srv.http("GET", "/app.js?v=3").body == b"export const x = 1;\n"


def test_missing_hidden_and_unknown_files_are_404(server, tmp_path):
    root = _site(tmp_path)
    srv = server(settings={"web_root": str(root)})
    assert_error(srv.http("GET", "/nope.js"), 404, "not_found")
    assert_error(srv.http("GET", "/sdk/"), 404, "not_found")
    assert_error(srv.http("GET", "/sdk"), 404, "not_found")
    assert_error(srv.http("GET", "/notes.bin"), 404, "not_found")
    r = srv.http("GET", "/.hidden.js")
    assert r.status in (400, 404) and b"secret" not in r.body
    # a symlink that leads out of web_root is not followed out
    r = srv.http("GET", "/link.js")
    assert r.status in (400, 404) and b"outside" not in r.body
    # only GET serves files
    assert_error(srv.http("POST", "/app.js", body={}), 404, "not_found")


def test_traversal_is_refused(server, tmp_path):
    root = _site(tmp_path)
    srv = server(settings={"web_root": str(root)})
    for target in ("/../outside.js", "/sdk/../../outside.js", "/%2e%2e/outside.js",
                   "/sdk/%2e%2e/%2e%2e/outside.js", "/..%2foutside.js", "//etc/passwd",
                   "/sdk/..%5c..%5coutside.js", "/%00index.html", "/../../../../etc/passwd"):
        data = _raw_get(srv.port, target)
        status = data.split(b"\r\n", 1)[0]
        assert b" 200 " not in status, (target, data[:300])
        assert b"outside" not in data.split(b"\r\n\r\n", 1)[-1], (target, data[:300])
        assert b"root:" not in data, target
    assert srv.http("GET", "/healthz").status == 200  # still serving


def test_api_health_and_ws_routes_are_untouched(server, tmp_path):
    root = _site(tmp_path)
    (root / "api").mkdir()
    (root / "api" / "v1.js").write_text("x")
    srv = server(settings={"web_root": str(root)})
    assert srv.http("GET", "/healthz").json == {"status": "ok"}
    assert srv.http("GET", "/metrics").status == 200
    assert_error(srv.http("GET", "/api/v1/nope"), 404, "not_found")
    assert_error(srv.http("GET", "/api/v1/me"), 401, "unauthorized")
    assert_error(srv.http("GET", "/ws"), 400, "bad_request")


def test_default_root_is_the_source_trees_web_directory(server):
    """Without web_root, the web/ directory next to the build is served."""
    srv = server()
    r = srv.http("GET", "/")
    assert r.status == 200, r
    assert _ctype(r) == "text/html; charset=utf-8"
    assert b"sdk/yjt.js" in r.body or b"app.js" in r.body


def test_a_missing_web_root_serves_nothing_but_keeps_running(server, tmp_path):
    srv = server(settings={"web_root": str(tmp_path / "no-such-dir")})
    assert_error(srv.http("GET", "/"), 404, "not_found")
    assert srv.http("GET", "/healthz").status == 200


def test_a_current_copy_is_revalidated_with_304(server, tmp_path):
    """Files carry an ETag; a browser that sends it back gets 304 and no body
    until the file changes."""
    root = _site(tmp_path)
    srv = server(settings={"web_root": str(root)})
    r = srv.http("GET", "/app.js")
    etag = _header(r, "etag")
    assert r.status == 200 and etag.startswith('"') and etag.endswith('"'), r.headers
    r = srv.http("GET", "/app.js", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"", r
    assert _header(r, "etag") == etag
    r = srv.http("GET", "/app.js", headers={"If-None-Match": f'"x", W/{etag}'})
    assert r.status == 304
    # another file's tag, or a changed file: the whole file again
    other = _header(srv.http("GET", "/style.css"), "etag")
    assert other != etag
    assert srv.http("GET", "/app.js", headers={"If-None-Match": other}).status == 200
    time.sleep(0.01)
    (root / "app.js").write_text("export const x = 22;\n")
    r = srv.http("GET", "/app.js", headers={"If-None-Match": etag})
    assert r.status == 200 and r.body == b"export const x = 22;\n"
    assert _header(r, "etag") != etag
    # one kept-alive connection goes on after a 304 (no body was expected)
    etag = _header(r, "etag")
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        for want in (304, 200, 304):
            hdrs = {"If-None-Match": etag} if want == 304 else {}
            conn.request("GET", "/app.js", headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == want, (want, resp.status)
            assert body == (b"" if want == 304 else b"export const x = 22;\n")
    finally:
        conn.close()
