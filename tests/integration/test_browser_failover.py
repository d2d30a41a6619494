"""A call through the SFU survives the death of the node that carries it,
with real media: two headless Chromium pages on a two-node cluster (one
Redis, started by ctest's with_redis.sh), the caller on the node that
holds the call, the callee on the other. Once both decode, the caller's
node is killed with SIGKILL; the surviving node takes the call over and
opens a room of its own; the callee hears call.media_lost and restarts ICE
(its offer answered with the new node's certificate, so Chromium restarts
DTLS as well), the caller reconnects to the surviving node, resumes and
does the same, and both decode each other's video again through it. The
same when the node dies while the call still rings.

The work is done by tests/browser/call.mjs --failover (see its header).
Needs what test_browser_call.py needs, and Redis."""

import pytest

from clusterlib import cluster
from conftest import REDIS_URL
from test_browser_call import ENTERPRISES, USERS, _require, diagnostics, run_driver

pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="needs Redis (YJT_TEST_REDIS)")


def test_browser_sfu_call_survives_its_node(server):
    _require("chromium", "node", "playwright")
    n1, n2 = cluster(server, n=2, users=USERS, enterprises=ENTERPRISES, cluster_beat_s=1,
                     cluster_dead_s=2, call_grace_s=30)
    pid = n1.proc.pid
    res = run_driver("--ws", n1.ws_url, "--failover", n2.ws_url, "--kill-pid", str(pid),
                     "--caller", "gina", "--callee", "alice", "--sfu",
                     "--decode-timeout-s", "20", context=diagnostics(n2))
    fo = res["failover"]
    print(f"failover: {fo}")
    # the media stopped with the node, and came back through the other
    assert min(fo["frames_per_s_before"]) >= 10, fo
    assert max(fo["frames_per_s_after"]) >= 10 and min(fo["frames_per_s_after"]) >= 10, fo
    resumed = fo["resumed"]
    assert (resumed["state"], resumed["role"], resumed["has_sdp"]) == ("active", "caller", False), fo
    assert fo["fingerprints"][0] != fo["fingerprints"][1], fo
    assert res["ended"]["caller"]["reason"] == "hangup", res["ended"]
    log = n2.stderr()
    assert "taken over, answered, its media to start again here" in log, log[-3000:]
    assert "media of the callee set up again on this server" in log
    assert "media of the caller set up again on this server" in log
    rec = n2.http("GET", f"/api/v1/calls/{res['call_id']}", token=n2.token("gina")).json["call"]
    assert rec["media_restarts"] == 1 and rec["end_reason"] == "hangup", rec


def test_browser_sfu_call_ringing_survives_its_node(server):
    """The caller's node dies while the call still rings: the surviving
    node answers the caller's kept offer in a room of its own and rings
    the callee again with its own offer; the callee answers that one, the
    caller reconnects and resumes (the answer is the new node's), and both
    decode, though the caller's candidates died with its node."""
    _require("chromium", "node", "playwright")
    n1, n2 = cluster(server, n=2, users=USERS, enterprises=ENTERPRISES, cluster_beat_s=1,
                     cluster_dead_s=2, call_grace_s=30)
    res = run_driver("--ws", n1.ws_url, "--failover", n2.ws_url, "--kill-pid", str(n1.proc.pid),
                     "--failover-ringing", "--caller", "gina", "--callee", "alice", "--sfu",
                     context=diagnostics(n2))
    fo = res["failover_ringing"]
    print(f"failover while ringing: {fo}")
    assert min(fo["frames_per_s"]) >= 10, fo
    assert fo["fingerprints"][0] != fo["fingerprints"][1], fo
    if fo["resumed"]["state"] == "active":
        assert fo["resumed"]["answer_fingerprint"] == fo["fingerprints"][1], fo
    assert "taken over, ringing" in n2.stderr()
    rec = n2.http("GET", f"/api/v1/calls/{res['call_id']}", token=n2.token("gina")).json["call"]
    assert rec["media_restarts"] == 1 and rec["end_reason"] == "hangup", rec
