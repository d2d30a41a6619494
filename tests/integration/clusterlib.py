"""What the cluster tests share (test_cluster.py, test_cluster_calls.py):
nodes on one Redis, a look into that Redis, and the accounts and SDPs the
tests use."""

import asyncio
import subprocess
import uuid

from conftest import REDIS_URL, user
from pushlib import OPS


ENTERPRISES = [("e1", "Tianhe Chemicals", "440106")]


USERS = [OPS, user("alice", "corp", "e1"), user("bob", "corp", "e1")]


GOV = [user("gov4401", "gov", "4401")]


def redis_cli(*args):
    """Runs redis-cli on the tests' Redis; its output."""
    return subprocess.run(["redis-cli", "-u", REDIS_URL, *args], capture_output=True, text=True,
                          check=True).stdout


def cut_bus_readers():
    """Closes, in Redis, every connection blocked reading the bus (the
    nodes read it again on a new one)."""
    clients = redis_cli("CLIENT", "LIST")
    readers = [f["id"] for f in (dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                                 for line in clients.splitlines()) if f.get("cmd") == "xread"]
    assert readers, clients
    for rid in readers:
        redis_cli("CLIENT", "KILL", "ID", rid)


def cluster(server, n=3, users=USERS, enterprises=ENTERPRISES, **settings):
    """n nodes sharing one key prefix; the first creates the accounts."""
    shared = {"redis_prefix": f"c{uuid.uuid4().hex[:12]}:", **settings}
    first = server(enterprises=enterprises, users=users, settings=shared)
    nodes = [first] + [server(settings=shared) for _ in range(n - 1)]
    for node in nodes[1:]:
        node.users = first.users
    return nodes


async def wait_until_async(ask, good, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await ask()
        if good(r):
            return r
        assert asyncio.get_running_loop().time() < deadline, r
        await asyncio.sleep(0.1)


OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


ANSWER = OFFER.replace("o=- 1 2", "o=- 3 4")


CALL_USERS = USERS + GOV + [user("boss", "corp", "e1", position="principal")]
