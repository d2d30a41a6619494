"""The load client's own frame reader (yjt-load --raw-rx), which the push
benchmark measures with: it reads the login replies, every push reaches
every connection's log (also frames longer than 125 bytes: 16-bit
lengths), the connections close with the closing handshake, and a
connection the server closes is reported as dropped, not lost silently."""

import json
import os
import signal
import subprocess
import time

from conftest import DEFAULT_PASSWORD, metric, parse_metrics, run, user, wait_until

N = 40
ENTERPRISES = [("e1", "Tianhe Chemicals", "440106")]
USERS = [user("gov4401", "gov", "4401")] + [user(f"load{i}", "corp", "e1") for i in range(N)]


def corp_conns(srv):
    return metric(parse_metrics(srv.http("GET", "/metrics").text), "yjt_connections",
                  role="corp") or 0


def test_raw_reader_logs_every_push(server, tmp_path):
    load = os.environ.get("YJT_LOAD")
    assert load, "YJT_LOAD names the yjt-load binary"
    srv = server(enterprises=ENTERPRISES, users=USERS)
    prefix = str(tmp_path / "pushlog")
    cl = subprocess.Popen([load, "--port", str(srv.port), "-n", str(N), "--user", "load",
                           "--users", str(N), "--password", DEFAULT_PASSWORD, "--hold", "60",
                           "--timeout", "90", "--push-log", prefix, "--raw-rx"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: corp_conns(srv) == N, 30, what="the load client's logins")
        notices = 12

        async def publish():
            g = await srv.ws_login("gov4401", device_id="g")
            for k in range(notices):
                # a long body: frames with 16-bit lengths
                await g.ok("notice.publish", audience={"type": "division", "division": "4401"},
                           title=f"notice {k}", body="检查" * (40 + 20 * k))

        t0 = time.time()
        run(publish())
        time.sleep(3.0)  # the last deliveries in flight
    finally:
        cl.send_signal(signal.SIGINT)
        out, err = cl.communicate(timeout=60)
    report = json.loads(next(x for x in out.splitlines() if x.startswith("{")))
    assert report["logged_in"] == N and report["closed_clean"] == N, report
    rows = []
    for f in os.listdir(tmp_path):
        if f.startswith("pushlog."):
            with open(tmp_path / f) as fh:
                rows += [tuple(map(int, line.split())) for line in fh if line.strip()]
    assert len(rows) == N * notices, (len(rows), err)
    created = sorted({c for c, _ in rows})
    assert len(created) <= notices
    assert all(c >= t0 * 1000 - 1000 for c in created)
    assert "frames passed over" not in err


def test_raw_reader_reports_a_server_close(server, tmp_path):
    load = os.environ.get("YJT_LOAD")
    assert load, "YJT_LOAD names the yjt-load binary"
    srv = server(enterprises=ENTERPRISES, users=USERS[:3])
    cl = subprocess.Popen([load, "--port", str(srv.port), "-n", "2", "--user", "load",
                           "--users", "2", "--password", DEFAULT_PASSWORD, "--hold", "60",
                           "--timeout", "90", "--push-log", str(tmp_path / "pl"), "--raw-rx"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: corp_conns(srv) == 2, 30, what="the load client's logins")
        srv.stop()
        time.sleep(1.0)  # the client hears the close
    finally:
        cl.send_signal(signal.SIGINT)
        out, _ = cl.communicate(timeout=60)
    report = json.loads(next(x for x in out.splitlines() if x.startswith("{")))
    assert report["dropped"] == 2 and report["closed_clean"] == 0, report
    assert any("closed by server while idle: close 1001" in e for e in report["errors"]), report
