#!/usr/bin/python3
"""Event-loop latency probe: one authenticated WebSocket that sends `ping`
every INTERVAL seconds for DURATION seconds and prints one JSON line with
the round-trip percentiles. Run it while something else loads the server
(a login storm from yjt-load, say) to see whether live traffic stalls.

    tools/latency-probe.py --port P --user U --password PW [--duration 10] [--interval 0.02]

Uses Debian's python3-websockets; loopback only."""
import argparse
import asyncio
import json
import statistics
import time

import websockets


async def probe(args):
    url = f"ws://127.0.0.1:{args.port}/ws"
    async with websockets.connect(url, subprotocols=["yjt.v1"], ping_interval=None) as ws:
        await ws.send(json.dumps({"id": 0, "type": "auth.login", "username": args.user,
                                  "password": args.password, "device_id": "latency-probe",
                                  "platform": "probe"}))
        reply = json.loads(await ws.recv())
        if not reply.get("ok"):
            raise SystemExit(f"login failed: {reply}")
        rtts = []
        end = time.monotonic() + args.duration
        n = 0
        while time.monotonic() < end:
            n += 1
            t0 = time.monotonic()
            await ws.send(json.dumps({"id": n, "type": "ping"}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("re") == n:
                    break
            rtts.append((time.monotonic() - t0) * 1000)
            await asyncio.sleep(args.interval)
    rtts.sort()
    q = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))]
    print(json.dumps({"pings": len(rtts), "p50_ms": round(statistics.median(rtts), 3),
                      "p99_ms": round(q(0.99), 3), "max_ms": round(rtts[-1], 3)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--interval", type=float, default=0.02)
    asyncio.run(probe(ap.parse_args()))


if __name__ == "__main__":
    main()
