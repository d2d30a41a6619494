"""Fixtures and helpers for the yjtd integration suite.

Everything here talks to the real yjtd / yjtctl binaries over real sockets on
127.0.0.1. Binaries come from $YJTD / $YJTCTL, else <repo>/build/yjtd and
<repo>/build/yjtctl. Run with Debian's interpreter:

    /usr/bin/python3 -m pytest tests/integration

No pytest-asyncio and no pytest-timeout: async tests call run(coro), and every
wait in this file is bounded.
"""

import asyncio
import http.client
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import websockets

REPO = Path(__file__).resolve().parents[2]
YJTD = os.environ.get("YJTD") or str(REPO / "build" / "yjtd")
YJTCTL = os.environ.get("YJTCTL") or str(REPO / "build" / "yjtctl")

SUBPROTOCOL = "yjt.v1"
DEFAULT_PASSWORD = "correct-horse-1"
# Cheap password hashing and short lockouts keep the suite fast.
DEFAULT_SETTINGS = {"hash_iterations": "1000", "lockout_s": "2"}
SANITIZER_MARKERS = ("ERROR: LeakSanitizer", "runtime error:", "AddressSanitizer")
START_TIMEOUT = 30.0  # generous: sanitizer builds on a loaded machine start slowly
STOP_TIMEOUT = 10.0
CTL_TIMEOUT = 60.0
# yjtctl reads its PBKDF2 iteration count from the environment.
CTL_HASH_ITERATIONS = "1000"
# With YJT_TEST_REDIS set (tests/unit/with_redis.sh sets it), every server
# keeps its store on that Redis server, under a key prefix of its own data
# directory, and yjtctl writes there too.
REDIS_URL = os.environ.get("YJT_TEST_REDIS") or None
# With YJT_TEST_NODES=N as well, every server of a test is N nodes on that
# Redis: REST goes to the first, and WebSocket clients connect to each node
# in turn, so every flow crosses nodes.
NODES = int(os.environ.get("YJT_TEST_NODES") or "1") if REDIS_URL else 1


# Tests that look into the SQLite file, or at what only its group commit does.
sqlite_only = pytest.mark.skipif(REDIS_URL is not None, reason="about the SQLite store")
# Tests about one process as such: its metrics, logs, clock or shutdown.
single_node = pytest.mark.skipif(NODES > 1, reason="about one process")
# Tests of what one node still holds alone (docs/operations.md, "Several
# nodes"): open alarms, feeds, sensors registered a moment ago, glare.
node_local = pytest.mark.skipif(NODES > 1, reason="state held by one node")


def redis_prefix(data_dir):
    """The Redis key prefix of the server whose data directory this is."""
    import hashlib
    return "t" + hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:16] + ":"


# --------------------------------------------------------------------------
# small utilities


def _ephemeral_range():
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def run_refused(args, timeout, why):
    """Runs yjtd with args, which must make it exit by itself within
    timeout seconds (else the test fails with why). Returns (exit code,
    stderr text)."""
    proc = subprocess.Popen([YJTD, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        pytest.fail(why)
    return proc.returncode, err.decode(errors="replace")


def free_port():
    """A port that is free now. It is taken from outside the kernel's
    ephemeral range when possible, so that the many client sockets of the
    suite cannot land on it between this check and yjtd's bind (or between a
    stop and a restart on the same port)."""
    lo, hi = _ephemeral_range()
    candidates = [p for p in range(20000, 32000) if not lo <= p <= hi]
    for _ in range(50):
        port = random.choice(candidates) if candidates else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; returns it, or fails."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last={last!r})")
        time.sleep(interval)


def run(coro, timeout=90):
    """Runs an async test body with an overall bound."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def sanitizer_findings(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def make_self_signed(dirpath):
    dirpath = Path(dirpath)
    cert = dirpath / "cert.pem"
    key = dirpath / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def client_ssl_context(cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def error_code(self):
        """The contract's error code of an error reply, or None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


def http_request(port, method, path, body=None, token=None, headers=None, raw=None,
                 tls_context=None, timeout=10):
    """One HTTP request to 127.0.0.1:port. body is JSON-encoded; raw is sent as is."""
    if tls_context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           context=tls_context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    data = None
    if raw is not None:
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = json.dumps(body).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return Response(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


def assert_error(resp, status, code):
    """An HTTP error reply: the status and {"error":{"code","message"}}."""
    assert resp.status == status, f"expected HTTP {status}, got {resp!r}"
    assert isinstance(resp.json, dict) and isinstance(resp.json.get("error"), dict), \
        f"error body must be {{'error': {{...}}}}: {resp!r}"
    assert resp.json["error"].get("code") == code, f"expected code {code}: {resp!r}"
    assert isinstance(resp.json["error"].get("message"), str), f"error.message missing: {resp!r}"


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)(\s+\d+)?$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(label_re.findall(m.group(3) or ""))
        value = float(m.group(4))
        out[(m.group(1), labels)] = value
    return out


def metric(samples, name, **labels):
    """Sum of the samples of name whose labels include the given ones, or None
    if there is none."""
    want = set(labels.items())
    vals = [v for (n, lbl), v in samples.items() if n == name and want <= set(lbl)]
    return sum(vals) if vals else None


# --------------------------------------------------------------------------
# WebSocket client


class Closed(Exception):
    def __init__(self, code, reason=""):
        super().__init__(f"connection closed with code {code} {reason!r}")
        self.code = code


class WsClient:
    """A yjt.v1 client: request() matches replies by "re"; events and replies
    that match no pending request are queued for next_event()/next_unmatched()."""

    def __init__(self, ws):
        self.ws = ws
        self._next_id = 0
        self._pending = {}
        self._events = []
        self._unmatched = []
        self.all_messages = []
        self._signal = asyncio.Event()
        self.close_code = None
        self.close_reason = ""
        self._closed = asyncio.Event()
        self._go = asyncio.Event()  # cleared by pause(): stop reading
        self._go.set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url, ssl_context=None, **kw):
        opts = dict(subprotocols=[SUBPROTOCOL], max_size=2 ** 26, ping_interval=None,
                    open_timeout=10, close_timeout=3, max_queue=None)
        opts.update(kw)
        if ssl_context is not None:
            opts["ssl"] = ssl_context
        ws = await websockets.connect(url, **opts)
        return cls(ws)

    @staticmethod
    def _key(rid):
        return json.dumps(rid, sort_keys=True)

    async def _read(self):
        try:
            async for msg in self.ws:
                if isinstance(msg, bytes):
                    try:
                        msg = msg.decode("utf-8")
                    except UnicodeDecodeError:
                        self.all_messages.append(msg)
                        self._unmatched.append({"_binary": msg})
                        self._signal.set()
                        continue
                try:
                    obj = json.loads(msg)
                except ValueError:
                    obj = {"_unparsable": msg}
                self.all_messages.append(obj)
                if isinstance(obj, dict) and "re" in obj:
                    fut = self._pending.pop(self._key(obj["re"]), None)
                    if fut is not None and not fut.done():
                        fut.set_result(obj)
                    else:
                        self._unmatched.append(obj)
                elif isinstance(obj, dict) and "type" in obj:
                    self._events.append(obj)
                else:
                    self._unmatched.append(obj)
                self._signal.set()
                await self._go.wait()
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - record and end
            self._unmatched.append({"_reader_error": repr(e)})
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(Closed(self.close_code, self.close_reason))
            self._pending.clear()
            self._closed.set()
            self._signal.set()

    def pause(self):
        """Stops reading from the socket after the current message (with a
        bounded max_queue the server's writes then back up)."""
        self._go.clear()

    def resume(self):
        self._go.set()

    def new_id(self):
        self._next_id += 1
        return self._next_id

    async def send_obj(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_raw(self, data):
        await self.ws.send(data)

    def expect_reply(self, rid):
        """Registers a pending reply for id rid; returns its future."""
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._key(rid)] = fut
        return fut

    async def request_obj(self, obj, timeout=10):
        """Sends obj (which carries its own "id") and returns the reply."""
        fut = self.expect_reply(obj["id"])
        await self.send_obj(obj)
        return await self._await_reply(fut, obj, timeout)

    async def _await_reply(self, fut, obj, timeout):
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no reply within {timeout}s to {str(obj)[:200]}") from None

    async def requests_at_once(self, *msgs, timeout=10):
        """Sends each (type, fields) without waiting for the replies before,
        then returns the replies in order: requests that overlap."""
        objs = [{"id": self.new_id(), "type": t, **f} for t, f in msgs]
        futs = [self.expect_reply(o["id"]) for o in objs]
        for o in objs:
            await self.send_obj(o)
        return await asyncio.wait_for(asyncio.gather(*futs), timeout)

    async def request(self, type_, timeout=10, **fields):
        obj = {"id": self.new_id(), "type": type_}
        obj.update(fields)
        return await self.request_obj(obj, timeout)

    async def ok(self, type_, timeout=10, **fields):
        """request() that asserts ok:true and returns the reply."""
        reply = await self.request(type_, timeout=timeout, **fields)
        assert reply.get("ok") is True, f"{type_} failed: {reply}"
        return reply

    async def _wait_in(self, bucket, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(bucket):
                if pred(m):
                    return bucket.pop(i)
            if self._closed.is_set():
                raise Closed(self.close_code, self.close_reason)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            self._signal.clear()
            try:
                await asyncio.wait_for(self._signal.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def next_event(self, type_=None, timeout=5):
        return await self._wait_in(
            self._events, lambda m: type_ is None or m.get("type") == type_, timeout,
            f"event {type_!r}")

    async def next_unmatched(self, timeout=5):
        """Next reply whose "re" matched no pending request (e.g. re:null)."""
        return await self._wait_in(self._unmatched, lambda m: True, timeout, "unmatched reply")

    async def no_event(self, type_=None, within=1.0):
        """Asserts no such event arrives within the given time."""
        try:
            ev = await self.next_event(type_, timeout=within)
        except (AssertionError, Closed):
            return
        raise AssertionError(f"unexpected event: {ev}")

    async def wait_closed(self, timeout=10):
        """Waits for the server to close the connection; returns the close code."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"connection not closed within {timeout}s") from None
        return self.close_code

    @property
    def is_closed(self):
        return self._closed.is_set()

    async def login(self, username, password=DEFAULT_PASSWORD, device_id=None,
                    platform="android", timeout=15):
        reply = await self.request("auth.login", timeout=timeout, username=username,
                                   password=password,
                                   device_id=device_id or f"dev-{username}",
                                   platform=platform)
        assert reply.get("ok") is True, f"auth.login {username} failed: {reply}"
        return reply

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:  # noqa: BLE001 - best effort
            pass
        try:
            await asyncio.wait_for(self._reader, 5)
        except Exception:  # noqa: BLE001
            self._reader.cancel()


# --------------------------------------------------------------------------
# the server under test


class PortTaken(Exception):
    """yjtd could not bind the port picked for it."""


class Server:
    def __init__(self, data_dir, port=None, settings=None, tls=None, demo=False,
                 config_text=None, cli_listen=True, extra_args=(), peer=False):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # A port picked here can still be taken by another test's server
        # before yjtd binds it; yjtd then stops, and start() tries another.
        self.port_picked = port is None and cli_listen
        self.settings = dict(DEFAULT_SETTINGS)
        self.settings.update({k: str(v) for k, v in (settings or {}).items()})
        if REDIS_URL:
            # the nodes of a cluster share a prefix (given in settings)
            self.settings.setdefault("redis", REDIS_URL)
            self.settings.setdefault("redis_prefix", redis_prefix(data_dir))
        self.settings.update({k: str(v) for k, v in (settings or {}).items()})
        self.tls = tls  # (cert, key) or None
        self.demo = demo
        self.config_text = config_text
        self.cli_listen = cli_listen
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0
        self.log_files = []  # (stdout path, stderr path) per start
        self.ctl_stderr = []  # stderr of every yjtctl run, for sanitizer checks
        self.users = {}  # username -> id (from yjtctl user add)
        self.returncodes = []
        # the other nodes of this server (YJT_TEST_NODES), on the same Redis
        # keys; a test that names its own prefix builds its own cluster
        self.peers = []
        self.next_node = 0
        if NODES > 1 and not peer and cli_listen and config_text is None and \
                "redis_prefix" not in (settings or {}):
            for k in range(1, NODES):
                self.peers.append(Server(self.data_dir / f"node{k}", settings=self.settings,
                                         tls=tls, extra_args=extra_args, peer=True))

    # -- addresses
    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def tls_context(self):
        return client_ssl_context(self.tls[0]) if self.tls else None

    # -- process control
    def command(self):
        cmd = [YJTD]
        if self.cli_listen:
            cmd += ["--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        if self.config_text is not None:
            cfg = self.data_dir / "yjtd.conf"
            cfg.write_text(self.config_text)
            cmd += ["--config", str(cfg)]
        for k, v in self.settings.items():
            cmd += ["--set", f"{k}={v}"]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        if self.demo:
            cmd.append("--demo")
        cmd += self.extra_args
        return cmd

    def start(self, wait=True):
        self._start_one(wait)
        # a test that starts without waiting watches the first process
        # alone (a start that must fail): the other nodes stay down
        if wait:
            for p in self.peers:
                p._start_one(wait)
        return self

    def _start_one(self, wait=True):
        for attempt in range(3):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_healthy()
                return self
            except PortTaken:
                if attempt == 2:
                    raise
                self.port = free_port()
        return self

    def _spawn(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        n = self.starts
        self.starts += 1
        out = self.data_dir / f"yjtd.{n}.stdout"
        err = self.data_dir / f"yjtd.{n}.stderr"
        self.log_files.append((out, err))
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(self.command(), stdout=fo, stderr=fe,
                                         stdin=subprocess.DEVNULL, cwd=str(self.data_dir))

    def wait_healthy(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self.port_picked and "cannot listen" in self.stderr():
                    raise PortTaken(self.port)
                pytest.fail(f"yjtd exited with {self.proc.returncode} during start-up:\n"
                            f"{self.stderr()[-4000:]}")
            try:
                r = http_request(self.port, "GET", "/healthz", tls_context=self.tls_context,
                                 timeout=2)
                # Another server may answer on a port yjtd failed to take:
                # yjtd's own "serving" line proves the port is its (or, at a
                # log level without it, yjtd still running a moment later,
                # as it stops at once when it cannot listen).
                if r.status == 200:
                    if "yjtd serving" in self.stderr():
                        return
                    time.sleep(0.3)
                    if self.proc.poll() is None:
                        return
                    continue
                last = r
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                last = e
            time.sleep(0.05)
        pytest.fail(f"yjtd did not answer /healthz within {timeout}s (last: {last!r})\n"
                    f"{self.stderr()[-4000:]}")

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        """SIGTERM, wait, and (by default) assert a clean exit 0."""
        for p in self.peers:
            p.stop(timeout, check)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.returncodes.append(self.proc.returncode)
                pytest.fail(f"yjtd did not exit within {timeout}s of SIGTERM")
        rc = self.proc.returncode
        self.returncodes.append(rc)
        self.proc = None
        if check:
            assert rc == 0, f"yjtd exited with {rc} after SIGTERM:\n{self.stderr()[-4000:]}"
        return rc

    def kill9(self):
        for p in self.peers:
            p.kill9()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    # -- output
    def stdout(self, which=-1):
        return self.log_files[which][0].read_text(errors="replace") if self.log_files else ""

    def stderr(self, which=-1):
        return self.log_files[which][1].read_text(errors="replace") if self.log_files else ""

    def all_stderr(self):
        """Every start's stderr, of every node."""
        return "".join(p[1].read_text(errors="replace") for p in self.log_files
                       if p[1].exists()) + "".join(n.all_stderr() for n in self.peers)

    # -- yjtctl
    def ctl(self, *args, check=False, timeout=CTL_TIMEOUT):
        cmd = [YJTCTL, "--data-dir", str(self.data_dir)]
        if REDIS_URL:
            cmd += ["--redis", self.settings["redis"], "--redis-prefix",
                    self.settings["redis_prefix"]]
        cmd += [str(a) for a in args]
        env = dict(os.environ)
        env.setdefault("YJT_HASH_ITERATIONS", CTL_HASH_ITERATIONS)
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        self.ctl_stderr.append(cp.stderr)
        if check:
            assert cp.returncode == 0, (f"yjtctl {' '.join(map(str, args))} failed "
                                        f"({cp.returncode}): {cp.stderr}")
        return cp

    def add_user(self, username, role, org, password=DEFAULT_PASSWORD, position=None,
                 display_name=None, phone=None):
        args = ["user", "add", "--username", username, "--password", password, "--role", role,
                "--org", org]
        if position is not None:
            args += ["--position", position]
        if display_name is not None:
            args += ["--display-name", display_name]
        if phone is not None:
            args += ["--phone", phone]
        cp = self.ctl(*args, check=True)
        uid = cp.stdout.strip()
        assert uid, f"yjtctl user add printed no id (stdout={cp.stdout!r})"
        self.users[username] = uid
        return uid

    def add_enterprise(self, eid, name, division, key=False):
        args = ["enterprise", "add", "--id", eid, "--name", name, "--division", division]
        if key:
            args.append("--key")
        self.ctl(*args, check=True)

    def add_carrier(self, cid, name, division):
        self.ctl("carrier", "add", "--id", cid, "--name", name, "--division", division,
                 check=True)

    # -- client helpers
    def http(self, method, path, **kw):
        kw.setdefault("tls_context", self.tls_context)
        return http_request(self.port, method, path, **kw)

    def login(self, username, password=DEFAULT_PASSWORD, device_id="rest-dev",
              platform="android"):
        return self.http("POST", "/api/v1/auth/login",
                         body={"username": username, "password": password,
                               "device_id": device_id, "platform": platform})

    def token(self, username, password=DEFAULT_PASSWORD, device_id="rest-dev"):
        r = self.login(username, password, device_id)
        assert r.status == 200, f"login {username} failed: {r!r}"
        return r.json["token"]

    def refresh(self, tok):
        """POST /api/v1/auth/refresh with an explicit "{}" body (the empty-body
        forms are covered by test_auth.test_rest_post_with_empty_body_variants)."""
        return self.http("POST", "/api/v1/auth/refresh", token=tok, raw="{}")

    def logout(self, tok):
        return self.http("POST", "/api/v1/auth/logout", token=tok, raw="{}")

    def metrics(self):
        r = self.http("GET", "/metrics")
        assert r.status == 200, r
        return parse_metrics(r.text)

    async def ws(self, **kw):
        nodes = [self] + self.peers
        node = nodes[self.next_node % len(nodes)]
        self.next_node += 1
        return await WsClient.connect(node.ws_url, ssl_context=self.tls_context, **kw)

    async def ws_login(self, username, password=DEFAULT_PASSWORD, device_id=None,
                       platform="android"):
        c = await self.ws()
        await c.login(username, password, device_id=device_id, platform=platform)
        return c


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """One self-signed certificate for the whole session (RSA keygen is slow)."""
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tmp_path, request):
    """Factory: server(users=[...], enterprises=[...], carriers=[...], settings={...},
    tls=bool|(cert,key), demo=bool, start=True, ...) -> running Server.

    users: dicts with username, role, org and optional password, position,
    display_name, phone. enterprises: (id, name, division[, key]).
    carriers: (id, name, division). All are created with yjtctl before start."""
    created = []

    def make(users=(), enterprises=(), carriers=(), settings=None, tls=False, demo=False,
             start=True, config_text=None, cli_listen=True, extra_args=(), port=None):
        d = tmp_path / f"srv{len(created)}"
        if tls is True:
            tls = request.getfixturevalue("tls_files")
        srv = Server(d, port=port, settings=settings, tls=tls or None, demo=demo,
                     config_text=config_text, cli_listen=cli_listen, extra_args=extra_args)
        created.append(srv)
        for e in enterprises:
            srv.add_enterprise(*e)
        for c in carriers:
            srv.add_carrier(*c)
        for u in users:
            srv.add_user(**u)
        if start:
            srv.start()
        return srv

    yield make

    problems = []
    for srv in created + [p for s in created for p in s.peers]:
        if srv.running:
            srv.stop(check=False)
        bad_rc = [rc for rc in srv.returncodes if rc not in (0, -signal.SIGKILL)]
        text = srv.all_stderr()
        found = sanitizer_findings(text)
        if found:
            problems.append(f"yjtd stderr ({srv.data_dir}) contains {found}:\n{text[-6000:]}")
        ctl_text = "".join(srv.ctl_stderr)
        found = sanitizer_findings(ctl_text)
        if found:
            problems.append(f"yjtctl stderr contains {found}:\n{ctl_text[-6000:]}")
        if bad_rc:
            problems.append(f"yjtd exit codes {srv.returncodes} ({srv.data_dir}):\n{text[-3000:]}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def user(username, role, org, **kw):
    """Shorthand for a users=[...] entry of the server fixture."""
    d = {"username": username, "role": role, "org": org}
    d.update(kw)
    return d
