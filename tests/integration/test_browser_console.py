"""The duty console (web/, served by yjtd at /) end to end in headless
Chromium: a regulator at a desk-sized window and an enterprise principal at
a phone-sized one. The regulator calls the enterprise from a patrol queue,
the principal answers, both screens play the other's fake camera; the
patrol is noted, finished and counted in today's coverage; an alarm from
the sensor API reaches the duty screen within a second and the plant
acknowledges it; yjtd restarts while the consoles are cut off and they show
every push made meanwhile once back; receipts, the daily commitment,
English and the carrier's "not available yet" screen.

tests/browser/console.mjs does the work (see its header); this file starts
yjtd, makes the plant's sensors and gateway key, restarts yjtd when the
driver asks, and checks what it reports. Screenshots go to the test's
output directory (under the build tree), or $YJT_SCREENSHOTS.
"""

import json
import os
import subprocess
import time
from pathlib import Path

from conftest import DEFAULT_PASSWORD, user
from pushlib import OPS
from test_browser_call import BROWSER_DIR, CHROMIUM, NODE, _require

DRIVER = BROWSER_DIR / "console.mjs"
DRIVER_TIMEOUT = 240

ENTERPRISES = [("E1", "天河精细化工", "440106", True), ("E2", "番禺燃气", "440113", True),
               ("E3", "黄埔涂料", "440112")]
USERS = [
    OPS,
    user("gina", "gov", "4401", position="duty", display_name="广州市应急管理局 值班员"),
    user("alice", "corp", "E1", position="principal", display_name="李明（主要负责人）"),
    user("bob", "corp", "E2", position="principal", display_name="王强"),
    user("tom", "trs", "C1", position="dispatcher", display_name="车队调度"),
]
SENSOR = {"enterprise": "E1", "kind": "level", "unit": "m", "name": "1# 储罐液位",
          "thresholds": {"high": 80, "high_high": 90}, "deadband": 2,
          "interrupt_after_s": 604800}


def test_duty_console(server, tmp_path_factory):
    _require("chromium", "node", "playwright")
    srv = server(enterprises=ENTERPRISES, carriers=[("C1", "广州危运车队", "4401")], users=USERS,
                 settings={"patrol_min_call_s": "1"})
    tok = srv.token("ops")
    for sid in ("LT-101", "PT-102"):
        r = srv.http("PUT", f"/api/v1/sensors/{sid}", token=tok, body=SENSOR)
        assert r.status in (200, 201), r
    key = srv.ctl("apikey", "create", "--enterprise", "E1", check=True).stdout.strip()
    shots = Path(os.environ.get("YJT_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")

    cmd = [NODE, str(DRIVER), "--url", srv.url, "--gov", "gina", "--corp", "alice", "--trs", "tom",
           "--enterprise", "E1", "--sensor", "LT-101", "--sensor2", "PT-102", "--shots", str(shots)]
    env = dict(os.environ, YJT_PASSWORD=DEFAULT_PASSWORD, YJT_API_KEY=key, CHROMIUM=CHROMIUM,
               PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(BROWSER_DIR),
                            start_new_session=True)
    result, fails, restarts = None, [], 0
    try:
        # The driver's stdout: CONTROL requests, then RESULT and FAIL lines.
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line == "CONTROL restart":
                srv.restart()
                restarts += 1
                proc.stdin.write("ok\n")
                proc.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
            elif line.startswith("FAIL:"):
                fails.append(line)
            if time.monotonic() - t0 > DRIVER_TIMEOUT:
                break
        proc.wait(timeout=max(1, DRIVER_TIMEOUT - (time.monotonic() - t0)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        stderr = proc.stderr.read()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    print(stderr)
    assert proc.returncode == 0 and result is not None, (
        f"console.mjs exited with {proc.returncode}: {' '.join(fails) or '(no FAIL line)'}\n"
        f"--- stderr:\n{stderr[-8000:]}\n--- yjtd stderr:\n{srv.stderr()[-3000:]}")
    assert restarts == 1
    assert result["frames"]["gov"] > 0 and result["frames"]["corp"] > 0, result
    assert result["timings"]["alarm_gov_ms"] < 1000, result["timings"]
    assert result["missed_shown"] == 3, result
    assert not result.get("blocked"), result
    # the server saw what the screens showed: the call answered and filed
    # under the patrol, the alarm acknowledged by the principal
    r = srv.http("GET", "/api/v1/calls?enterprise=E1", token=srv.token("gina"))
    calls = r.json["calls"]
    assert len(calls) == 1 and calls[0]["end_reason"] == "hangup" and calls[0]["patrol_id"], calls
    r = srv.http("GET", "/api/v1/alarms?enterprise=E1", token=srv.token("gina"))
    states = {a["sensor"]: a["state"] for a in r.json["alarms"]}
    assert states == {"LT-101": "acknowledged", "PT-102": "raised"}, states
    assert len(result["shots"]) >= 15
    for f in result["shots"]:
        assert Path(f).stat().st_size > 1000, f  # a picture, not an empty file
    print(f"console: video both ways {result['timings']['video_ms']} ms after the call; "
          f"alarm on the duty screen in {result['timings']['alarm_gov_ms']} ms; "
          f"screenshots in {shots}")
