#!/usr/bin/python3
"""SFU forwarding benchmark: one publisher's video through yjtd to N
receivers, measured in yjtd's CPU time per forwarded stream and in losses,
and the same load through Janus (Debian's janus package, its VideoRoom
plugin) in the same run for comparison (--janus).

A throwaway yjtd (SQLite, loopback) serves one SFU call: a gov user calls a
plant user with mode "sfu"; the caller publishes --kbps of VP8-like RTP
(1,200-byte packets, not real video: the SFU does not decode); the callee
and N-1 viewers (gov users joining with call.join) receive it. All the
endpoints are one yjt-sfupeer process (yjt's own ICE/DTLS/SRTP client
side, driven over stdin/stdout). For each N in --receivers the media runs
--seconds; yjtd's CPU time (from /proc) over that window gives its CPU
share, the endpoints' sequence numbers give the loss.

    tools/bench-sfu.py --build build --receivers 10,25,50 --seconds 10 [--janus]

With --janus the same steps run against a Janus started here (its own
configuration in a temporary directory: HTTP API on loopback, VideoRoom
only); the publisher joins room 1234 and each receiver subscribes to it.
Janus gathers no loopback candidates, so with --janus the whole run
happens inside a network namespace made for it (root needed), with a
veth interface 10.77.0.1/24 for Janus's ICE; nothing leaves the machine. Each server is pinned to CPU 1 and the endpoints to
CPU 0 (--no-pin to leave them free), so "CPU %" is of one core.

Prints one JSON line per step and a table on stderr. Loopback only.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import PASSWORD, Yjtd, http  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Peer:
    """The yjt-sfupeer process: one JSON command, one JSON reply."""

    def __init__(self, path, addrs, check_every=1):
        self.p = subprocess.Popen([path, addrs, str(check_every)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

    def do(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        if "error" in out:
            raise SystemExit(f"yjt-sfupeer {cmd.get('op')}: {out['error']}")
        return out

    def close(self):
        try:
            self.do(op="quit")
        except (BrokenPipeError, ValueError, SystemExit):
            pass
        self.p.wait(10)


class Ws:
    def __init__(self, ws):
        self.ws, self.n, self.events = ws, 0, []

    @classmethod
    async def login(cls, port, username, device):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["yjt.v1"],
                                      max_size=None)
        c = cls(ws)
        await c.ok("auth.login", username=username, password=PASSWORD, device_id=device,
                   platform="cli")
        return c

    async def ok(self, type_, **fields):
        self.n += 1
        await self.ws.send(json.dumps({"id": self.n, "type": type_, **fields}))
        while True:
            m = json.loads(await self.ws.recv())
            if m.get("re") == self.n:
                if not m.get("ok"):
                    raise SystemExit(f"{type_}: {m}")
                return m
            self.events.append(m)

    async def event(self, type_):
        for i, e in enumerate(self.events):
            if e.get("type") == type_:
                return self.events.pop(i)
        while True:
            m = json.loads(await self.ws.recv())
            if m.get("type") == type_:
                return m
            self.events.append(m)


async def step(a, srv, peer, n, base):
    """One call with n receivers; returns the measured numbers."""
    gov = await Ws.login(srv.port, "bench-gov", f"g{base}")
    corp = await Ws.login(srv.port, "bench-corp", f"c{base}")
    pub = peer.do(op="offer", id=base, send=True)
    r = await gov.ok("call.invite", to={"user": srv.corp_id}, sdp=pub["sdp"], mode="sfu")
    call_id = r["call_id"]
    inc = await corp.event("call.incoming")
    ans = peer.do(op="answer", id=base + 1, sdp=inc["sdp"])
    await corp.ok("call.accept", call_id=call_id, sdp=ans["sdp"])
    acc = await gov.event("call.accepted")
    peer.do(op="remote", id=base, sdp=acc["sdp"])
    viewers = []
    for i in range(n - 1):
        v = await Ws.login(srv.port, f"bench-view{i}", f"v{base}-{i}")
        off = peer.do(op="offer", id=base + 2 + i, send=False)
        j = await v.ok("call.join", call_id=call_id, sdp=off["sdp"], role="viewer")
        peer.do(op="remote", id=base + 2 + i, sdp=j["sdp"])
        viewers.append(v)
    row = await measure(a, srv.proc.pid, peer, n, base)
    await gov.ok("call.hangup", call_id=call_id)
    for c in [gov, corp, *viewers]:
        await c.ws.close()
    return row


JANUS_CFG = """general: {
  configs_folder = "%(dir)s"
  plugins_folder = "/usr/lib/x86_64-linux-gnu/janus/plugins"
  transports_folder = "/usr/lib/x86_64-linux-gnu/janus/transports"
  events_folder = "/usr/lib/x86_64-linux-gnu/janus/events"
  loggers_folder = "/usr/lib/x86_64-linux-gnu/janus/loggers"
  debug_level = 3
  event_loops = %(loops)d
}
plugins: {
  disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,\
libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,\
libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
  disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,\
libjanus_websockets.so"
}
events: {
  broadcast = false
}
media: {
  rtp_port_range = "30000-40000"
}
nat: {
  ice_enforce_list = "yjtb0"
}
"""
JANUS_HTTP = """general: {
  json = "compact"
  base_path = "/janus"
  http = true
  port = %(port)d
  ip = "127.0.0.1"
  https = false
}
admin: {
  admin_http = false
}
"""
JANUS_ROOM = """general: {
}
room-1234: {
  description = "bench"
  publishers = 6
  bitrate = 0
  fir_freq = 10
  videocodec = "vp8"
}
"""


class Janus:
    """A Janus of Debian's package on loopback, and its HTTP API (long
    polls for events, matched by transaction)."""

    def __init__(self, port, pin, loops):
        if not shutil.which("janus"):
            print("bench-sfu: installing Debian's janus package", file=sys.stderr)
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "janus"],
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), check=True,
                           stdout=subprocess.DEVNULL)
        self.dir = tempfile.mkdtemp(prefix="yjt-bench-janus-")
        self.port, self.tx, self.events = port, 0, []
        for name, text in (("janus.jcfg", JANUS_CFG), ("janus.transport.http.jcfg", JANUS_HTTP),
                           ("janus.plugin.videoroom.jcfg", JANUS_ROOM)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text % {"dir": self.dir, "port": port, "loops": loops})
        cmd = ["janus", "-F", self.dir, "-C", os.path.join(self.dir, "janus.jcfg")]
        self.proc = subprocess.Popen((["taskset", "-c", "1"] if pin else []) + cmd,
                                     stdout=open(os.path.join(self.dir, "janus.log"), "w"),
                                     stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                self.sid = self.post("", {"janus": "create"})["data"]["id"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("janus did not start")
        self.last_keepalive = time.time()
        # One session for the whole run: Janus drops it after 60 s without
        # a request, and a yjtd step in between can take longer than that.
        self.stopping = threading.Event()
        self.pinger = threading.Thread(target=self._ping, daemon=True)
        self.pinger.start()

    def _ping(self):
        n = 0
        while not self.stopping.wait(15):
            n += 1
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/janus/{self.sid}", method="POST",
                data=json.dumps({"janus": "keepalive", "transaction": f"k{n}"}).encode())
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except OSError:
                pass

    def post(self, path, body):
        self.tx += 1
        body = dict(body, transaction=f"t{self.tx}")
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/janus{path}",
                                     data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())
        if out.get("janus") == "error":
            raise SystemExit(f"janus: {out}")
        return out

    def attach(self):
        return self.post(f"/{self.sid}", {"janus": "attach",
                                          "plugin": "janus.plugin.videoroom"})["data"]["id"]

    def message(self, handle, body, jsep=None):
        """Sends a plugin request and returns its asynchronous event."""
        msg = {"janus": "message", "body": body}
        if jsep:
            msg["jsep"] = jsep
        ack = self.post(f"/{self.sid}/{handle}", msg)
        tx = f"t{self.tx}"
        if ack.get("janus") == "success":
            return ack
        deadline = time.time() + 30
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e.get("transaction") == tx:
                    return self.events.pop(i)
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/janus/{self.sid}"
                                        f"?maxev=10", timeout=40) as r:
                got = json.loads(r.read())
            self.events += got if isinstance(got, list) else [got]
        raise SystemExit(f"no janus event for {body}")

    def keepalive(self):
        if time.time() - self.last_keepalive > 20:
            self.post(f"/{self.sid}", {"janus": "keepalive"})
            self.last_keepalive = time.time()

    def stop(self):
        self.stopping.set()
        self.proc.terminate()
        self.proc.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


async def janus_step(a, j, peer, n, base):
    """The same load through Janus: a publisher and n subscribers."""
    pub = peer.do(op="offer", id=base, send=True)
    h = j.attach()
    ev = j.message(h, {"request": "joinandconfigure", "ptype": "publisher", "room": 1234,
                       "audio": False, "video": True},
                   {"type": "offer", "sdp": pub["sdp"]})
    feed = ev["plugindata"]["data"]["id"]
    peer.do(op="remote", id=base, sdp=ev["jsep"]["sdp"])
    # Janus takes subscribers once the publisher's connection is up.
    deadline = time.time() + 20
    while not any(p["id"] == base and p["state"] == 1 for p in peer.do(op="stats")["peers"]):
        if time.time() > deadline:
            raise SystemExit("the Janus publisher did not connect")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    handles = [h]
    for i in range(n):
        hs = j.attach()
        ev = j.message(hs, {"request": "join", "ptype": "subscriber", "room": 1234,
                            "streams": [{"feed": feed}]})
        if "jsep" not in ev:
            raise SystemExit(f"janus subscriber join: {ev}")
        ans = peer.do(op="answer", id=base + 1 + i, sdp=ev["jsep"]["sdp"])
        j.message(hs, {"request": "start", "room": 1234}, {"type": "answer", "sdp": ans["sdp"]})
        handles.append(hs)
    row = await measure(a, j.proc.pid, peer, n, base, keepalive=j.keepalive)
    for hnd in handles:
        j.post(f"/{j.sid}/{hnd}", {"janus": "detach"})
    return row


async def measure(a, pid, peer, n, base, keepalive=lambda: None):
    """Waits for every endpoint, sends for --seconds, and measures."""
    ids = set(range(base, base + n + 1))
    deadline = time.time() + 30
    while time.time() < deadline:
        st = [p for p in peer.do(op="stats")["peers"] if p["id"] in ids]
        if all(p["state"] == 1 for p in st):
            break
        await asyncio.sleep(0.2)
    else:
        raise SystemExit(f"not every endpoint connected: {st}")
    peer.do(op="start", kbps=a.kbps)
    await asyncio.sleep(2)  # warm up: key frames, bindings
    keepalive()
    before = {p["id"]: p for p in peer.do(op="stats")["peers"] if p["id"] in ids}
    c0, t0, p0 = cpu_s(pid), time.monotonic(), cpu_s(peer.p.pid)
    await asyncio.sleep(a.seconds)
    c1, t1 = cpu_s(pid), time.monotonic()
    after = {p["id"]: p for p in peer.do(op="stats")["peers"] if p["id"] in ids}
    peer.do(op="start", kbps=0)
    keepalive()
    sent = after[base]["sent"] - before[base]["sent"]
    recv = sum(after[i]["received"] - before[i]["received"] for i in ids if i != base)
    checked = [i for i in ids if i != base and after[i]["checked"]]
    checked_recv = sum(after[i]["received"] - before[i]["received"] for i in checked)
    lost = sum(after[i]["lost"] - before[i]["lost"] for i in ids if i != base)
    expected = sent * n
    cpu = (c1 - c0) / (t1 - t0)
    return {"receivers": n, "kbps": a.kbps, "seconds": round(t1 - t0, 2),
            "packets_sent": sent, "packets_expected": expected, "packets_received": recv,
            # Lost: gaps in each receiver's sequence numbers (packets in
            # flight at the window's edges are not losses).
            "loss_pct": round(100.0 * lost / (recv + lost), 3) if recv + lost else None,
            "gaps": lost, "cpu_pct": round(100 * cpu, 1),
            "cpu_pct_per_stream": round(100 * cpu / n, 3),
            "forwarded_mbps": round(recv * 1200 * 8 / (t1 - t0) / 1e6, 1),
            # receivers that decrypted (the others counted clear headers)
            "checked_receivers": len(checked), "checked_received": checked_recv,
            "peer_cpu_pct": round(100 * (cpu_s(peer.p.pid) - p0) / (t1 - t0), 1)}


def pin(pid, cpu):
    """Every thread of pid onto one CPU."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


async def main(a):
    data = tempfile.mkdtemp(prefix="yjt-bench-sfu-")
    settings = [f"call_max_joiners={max(a.receivers)}", "invites_per_min=100000"]
    if a.udp_only:
        settings.append("media_ice_tcp=false")
    srv = Yjtd(a.build, data, a.port, settings=settings)
    srv.ctl("enterprise", "add", "--id", "E1", "--name", "Bench Chemicals", "--division", "440106")
    srv.ctl("user", "add", "--username", "bench-gov", "--password", PASSWORD, "--role", "gov",
            "--org", "4401")
    srv.ctl("user", "add", "--username", "bench-corp", "--password", PASSWORD, "--role", "corp",
            "--org", "E1", "--position", "principal")
    srv.ctl("user", "add", "--username", "bench-view", "--password", PASSWORD, "--role", "gov",
            "--org", "44", "--count", str(max(a.receivers)))
    srv.start()
    peer = Peer(os.path.join(a.build, "yjt-sfupeer"),
                "127.0.0.1,10.77.0.1" if a.janus else "127.0.0.1", a.check_every)
    janus = Janus(a.port + 1, a.pin, a.janus_loops) if a.janus else None
    if a.pin:
        pin(srv.proc.pid, 1)
        pin(peer.p.pid, 0)
    try:
        srv.corp_id = srv_user_id(srv, "bench-corp")
        rows = []
        base = 1000
        for n in a.receivers:
            for run in range(a.runs):
                row = dict(server="yjtd", run=run, **await step(a, srv, peer, n, base))
                peer.do(op="clear")  # the step's endpoints, closed by the server
                base += 1000
                rows.append(row)
                print(json.dumps(row), flush=True)
                await asyncio.sleep(1)
                if janus:
                    row = dict(server="janus", run=run,
                               **await janus_step(a, janus, peer, n, base))
                    peer.do(op="clear")
                    base += 1000
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    await asyncio.sleep(1)
        print(f"{'server':>6} {'receivers':>9} {'Mbps out':>9} {'CPU %':>6} {'% / stream':>10} "
              f"{'loss %':>7} {'peers CPU %':>11}", file=sys.stderr)
        for r in rows:
            print(f"{r['server']:>6} {r['receivers']:>9} {r['forwarded_mbps']:>9} "
                  f"{r['cpu_pct']:>6} {r['cpu_pct_per_stream']:>10} {r['loss_pct']:>7} "
                  f"{r['peer_cpu_pct']:>11}", file=sys.stderr)
    finally:
        peer.close()
        srv.stop()
        if janus:
            janus.stop()
        shutil.rmtree(data, ignore_errors=True)


def srv_user_id(srv, username):
    _, body = http(srv.port, "POST", "/api/v1/auth/login",
                   {"username": username, "password": PASSWORD, "device_id": "id",
                    "platform": "cli"})
    return json.loads(body)["user"]["id"]


def in_namespace(argv):
    """Runs this script again inside a network namespace of its own with a
    veth interface (for Janus), and removes the namespace after."""
    ns = f"yjtbench{os.getpid()}"
    sh = lambda *c: subprocess.run(c, check=True)  # noqa: E731
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # A veth pair with both ends inside (this kernel has no dummy
        # interfaces): one end carries Janus's address.
        sh("ip", "netns", "exec", ns, "ip", "link", "add", "yjtb0", "type", "veth", "peer", "name",
           "yjtb1")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", "10.77.0.1/24", "dev", "yjtb0")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "yjtb0", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "yjtb1", "up")
        env = dict(os.environ, YJT_BENCH_NETNS=ns)
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                               os.path.abspath(__file__), *argv], env=env).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", ns])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--port", type=int, default=18480)
    ap.add_argument("--receivers", default="10,25,50")
    ap.add_argument("--kbps", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=1, help="runs of each step (alternating servers)")
    ap.add_argument("--janus", action="store_true", help="the same steps through Janus")
    ap.add_argument("--check-every", type=int, default=1, metavar="K",
                    help="only every K-th receiver decrypts; the others count clear RTP "
                         "headers, so the endpoints' process is not the first to saturate")
    ap.add_argument("--janus-loops", type=int, default=0,
                    help="Janus event_loops (0, its default: a thread per handle)")
    ap.add_argument("--udp-only", action="store_true",
                    help="yjtd without ICE-TCP candidates (media_ice_tcp=false), as Janus "
                         "runs by default (its ice_tcp is off)")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="leave the servers and the endpoints on any CPU")
    args = ap.parse_args()
    args.receivers = [int(x) for x in args.receivers.split(",")]
    if args.janus and not os.environ.get("YJT_BENCH_NETNS"):
        sys.exit(in_namespace(sys.argv[1:]))
    asyncio.run(main(args))
