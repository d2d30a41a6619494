"""Helpers shared by the push, gateway, notice and reminder tests."""

import asyncio
import base64
import http.server
import json
import os
import socket
import ssl
import struct
import threading
import time

from conftest import user

OPS = user("ops", "admin", "-")


def send_push(srv, admin_token, user_id, kind="alarm", priority="normal", ttl_s=3600,
              title="t", body="b", payload=None, expect=201):
    """POST /api/v1/pushes as an operator; returns the new seq."""
    req = {"user": user_id, "kind": kind, "priority": priority, "ttl_s": ttl_s,
           "title": title, "body": body}
    if payload is not None:
        req["payload"] = payload
    r = srv.http("POST", "/api/v1/pushes", token=admin_token, body=req)
    assert r.status == expect, r
    return r.json.get("seq") if expect == 201 else r


def push_seqs(c):
    """Every push seq this client has received so far, in arrival order."""
    return [m["seq"] for m in c.all_messages
            if isinstance(m, dict) and m.get("type") == "push"]


async def wait_pushes(c, n, timeout=5):
    """Waits until the client has received n push events in all; returns their seqs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(push_seqs(c)) < n:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"got pushes {push_seqs(c)}, wanted {n}")
        await asyncio.sleep(0.02)
    return push_seqs(c)


async def resume_all(c, after_seq=None):
    """push.resume until more is false; returns the last reply."""
    while True:
        fields = {} if after_seq is None else {"after_seq": after_seq}
        r = await c.ok("push.resume", **fields)
        if not r["more"]:
            return r
        after_seq = r["last_seq"]


class StalledWs:
    """A device that logs in over a bare WebSocket and then never reads again,
    with a tiny receive buffer, so the server's send queue for it fills up."""

    def __init__(self, port, username, password, device_id):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: yjt.v1\r\n\r\n")
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed during the handshake"
            buf += chunk
        assert b" 101 " in buf.split(b"\r\n", 1)[0] + b" ", buf
        self.send_text(json.dumps({"id": 1, "type": "auth.login", "username": username,
                                   "password": password, "device_id": device_id,
                                   "platform": "android"}))
        buf = buf.split(b"\r\n\r\n", 1)[1]
        while b'"ok":true' not in buf:
            chunk = self.sock.recv(4096)
            assert chunk and b'"ok":false' not in buf, f"login failed: {buf!r}"
            buf += chunk
        self.rx = buf  # from the first frame (the login's reply) on

    def send_text(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else \
            struct.pack("!BBH", 0x81, 0x80 | 126, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_frames(self, pushes, timeout=30):
        """Reads (at last) until `pushes` push events are in; returns the
        text of every message from the login's reply on."""
        self.sock.settimeout(timeout)
        texts, buf = [], self.rx
        while sum(1 for t in texts if '"type":"push"' in t) < pushes:
            if len(buf) >= 2:
                op, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
                if n == 126:
                    n, at = (struct.unpack("!H", buf[2:4])[0], 4) if len(buf) >= 4 else (-1, 0)
                elif n == 127:
                    n, at = (struct.unpack("!Q", buf[2:10])[0], 10) if len(buf) >= 10 else (-1, 0)
                if n >= 0 and len(buf) >= at + n:
                    assert buf[0] & 0x80 and op in (0x1, 0x9), f"frame {buf[:2]!r}"
                    if op == 0x1:
                        texts.append(buf[at:at + n].decode())
                    buf = buf[at + n:]
                    continue
            chunk = self.sock.recv(65536)
            assert chunk, f"closed after {len(texts)} messages"
            buf += chunk
        self.rx = buf
        return texts

    def close(self):
        self.sock.close()


class GatewayReceiver:
    """A real HTTP push gateway stand-in on 127.0.0.1: records every POST
    (arrival time and JSON body) and answers as policy(body, n) says, where n
    counts the posts of that push id so far (1 for the first): an int status,
    or ("hang", seconds) to answer 200 only after that long."""

    def __init__(self, policy=lambda body, n: 200, port=None, tls=None):
        self.posts = []
        self.policy = policy
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with outer.lock:
                    outer.posts.append((time.monotonic(), body, dict(self.headers)))
                    count = sum(1 for _, b, _ in outer.posts
                                if b.get("push_id") == body.get("push_id"))
                answer = outer.policy(body, count)
                if isinstance(answer, tuple) and answer[0] == "hang":
                    time.sleep(answer[1])
                    answer = 200
                out = b'{"ok":true}'
                self.send_response(answer)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/push"
        if tls:  # (cert, key): HTTPS, addressed by name as a real gateway is
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.url = f"https://localhost:{self.port}/push"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def for_push(self, push_id):
        with self.lock:
            return [(t, b) for t, b, _ in self.posts if b.get("push_id") == push_id]

    def wait_posts(self, push_id, n, timeout=5):
        deadline = time.monotonic() + timeout
        while len(self.for_push(push_id)) < n:
            assert time.monotonic() < deadline, \
                f"{push_id}: {len(self.for_push(push_id))} posts, wanted {n}"
            time.sleep(0.02)
        return self.for_push(push_id)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
