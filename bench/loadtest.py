"""Benchmark the load generator itself: can `runbook loadtest` hold seed 001's 50 RPS on this machine, with margin?

    .venv/bin/python bench/loadtest.py [--seconds 30] [--probe-rps 5000]

Serves a trivial JSON answer from a separate process (asyncio, one core's worth at most), then runs locust exactly as
`runbook loadtest` does (`runbook.loadtest.run_locust`, its own process): first the seed's load, 100 users at 50 RPS,
then a probe at `--probe-rps` with the same 100 users to find the most the generator (and this server) sustain.
Reported per run: requests, achieved RPS, p50/p95/p99 and the locust process's CPU time as a share of one core
(getrusage of the waited child: its own work, not the server's). Goal (issue "The seeds' remaining operations"):
50 RPS sustained on this 2-core machine with margin, i.e. the probe reaches several times 50 RPS and the seed's
load costs locust a small share of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook.loadtest import Plan, run_locust  # noqa: E402
from tests.pgserver import free_port  # noqa: E402

SERVER = r"""
import asyncio, sys
BODY = b'{"tasks": []}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
async def client(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(client, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def measure(url: str, users: int, rps: float, seconds: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = run_locust(Plan(url=url, users=users, rps=rps, duration_seconds=seconds), {}, lambda line: None)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "users": users, "askedRps": rps, "seconds": seconds, "requests": result["requests"], "failures": result["failures"],
        "achievedRps": round(result["rps"], 1), "p50Ms": result["p50Ms"], "p95Ms": result["p95Ms"], "p99Ms": result["p99Ms"],
        "locustCpuSeconds": round(cpu, 2), "locustCpuShareOfOneCore": round(cpu / wall, 3), "wallSeconds": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--probe-rps", type=float, default=5000.0)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}"
        runs = [measure(url, 100, 50.0, args.seconds), measure(url, 100, args.probe_rps, max(args.seconds // 2, 10))]
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"cpus": os.cpu_count(), "runs": runs}, indent=2))
    seed, probe = runs
    print(f"seed load: {seed['achievedRps']} RPS of 50 asked, p95 {seed['p95Ms']} ms, locust {seed['locustCpuShareOfOneCore']:.0%} of one core")
    print(f"probe: {probe['achievedRps']} RPS at most ({probe['achievedRps'] / 50:.0f}x the seed's 50 RPS), "
          f"locust {probe['locustCpuShareOfOneCore']:.0%} of one core")


if __name__ == "__main__":
    main()
