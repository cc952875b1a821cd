"""The load test's simulated user, run by locust in a process of its own (`runbook loadtest` starts it).

Importing locust monkey-patches the standard library for gevent, so nothing else may import this module. The
parent hands the plan over in `TASK_SERVICE_LOADTEST` (JSON) and the request headers in
`TASK_SERVICE_LOADTEST_HEADERS` (environment variables, never arguments: `ps` would show those). When locust quits,
the totals it measured are written as JSON to the plan's `resultPath`; the parent judges them.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import signal
import sys
import time
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

def _die_with_parent() -> None:
    """Linux sends this process SIGTERM when `runbook loadtest` dies, however it dies (and if it is gone already, quit)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(os.environ["TASK_SERVICE_LOADTEST_PARENT"]):
        sys.exit("runbook loadtest is gone")


_die_with_parent()
PLAN: dict[str, Any] = json.loads(os.environ["TASK_SERVICE_LOADTEST"])
HEADERS: dict[str, str] = json.loads(os.environ.get("TASK_SERVICE_LOADTEST_HEADERS", "{}"))
WRITE_BODY: Any = PLAN.get("writeBody")
READS = itertools.cycle(PLAN["paths"])
MOMENTS = {"started": time.time()}


class ApiUser(FastHttpUser):
    """One client of the API: reads the configured paths in turn at a constant pace (and writes 1 in 10, if asked)."""

    wait_time = constant_throughput(float(PLAN["perUserRps"]))
    network_timeout = connection_timeout = float(PLAN["timeoutSeconds"])
    insecure = False  # the headers carry credentials: only to a host whose certificate checks out

    @task(9)
    def read(self) -> None:
        path = next(READS)
        self.client.get(path, headers=HEADERS, name=f"GET {path}")

    @task(1 if WRITE_BODY is not None else 0)
    def write(self) -> None:
        self.client.post(PLAN["paths"][0], json=WRITE_BODY, headers=HEADERS, name=f"POST {PLAN['paths'][0]}")


@events.spawning_complete.add_listener
def _all_running(**_: Any) -> None:
    """Every user runs from here on; the statistics restart now (--reset-stats), so the window does too."""
    MOMENTS["measuring"] = time.time()


@events.test_stop.add_listener
def _stopped(**_: Any) -> None:
    MOMENTS["stopped"] = time.time()


@events.quitting.add_listener
def _write_result(environment: Environment, **_: Any) -> None:
    """Locust's own totals and percentiles (from its histogram, rounded as locust rounds them)."""
    total = environment.stats.total
    errors = sorted(environment.stats.errors.values(), key=lambda e: -e.occurrences)[:5]
    stopped = MOMENTS.get("stopped", time.time())
    window = stopped - MOMENTS.get("measuring", MOMENTS["started"])
    result = {
        "startedAt": MOMENTS["started"],
        "finishedAt": stopped,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": total.num_requests / window if window > 0 else 0.0,
        "p50Ms": total.get_response_time_percentile(0.5),
        "p95Ms": total.get_response_time_percentile(0.95),
        "p99Ms": total.get_response_time_percentile(0.99),
        "maxMs": total.max_response_time,
        "errors": [{"request": e.name, "error": str(e.error)[:200], "count": e.occurrences} for e in errors],
    }
    with open(PLAN["resultPath"], "w", encoding="utf-8") as handle:
        json.dump(result, handle)
