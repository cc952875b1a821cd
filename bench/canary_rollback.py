"""Time from a detected breach to a completed rollback: `canary watch --rollback-on-breach` against moto.

Each run builds the prod stack in a fresh moto account at 50%, with a healthy soak in CloudWatch and one of the
stack's alarms in ALARM, and runs the watch with --rollback-on-breach --yes: its first poll sees the breach, it
rolls back as `rollback` does (listener rule to monolith 100 / service 0, with --scale-to-zero also autoscaling
and the desired count) and reports the time from detection to completion. Goal: under 2 s after detection
(seed 001 allows 5 minutes for the whole rollback). moto on loopback answers in milliseconds; AWS adds its own
API latency per call (three calls, five with --scale-to-zero), which this cannot show.

    .venv/bin/python bench/canary_rollback.py [-n 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402  (its MonkeyPatch sets the env moto_stack needs, and undoes it)

from runbook import watch  # noqa: E402
from runbook.aws import Aws  # noqa: E402
from runbook.output import Invocation  # noqa: E402
from runbook.outputs import Outputs  # noqa: E402
from tests.moto_server import serving  # noqa: E402
from tests.runbook import canary_story, moto_stack  # noqa: E402

ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "ap-northeast-1",
       "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}


def one_run(endpoint: str, scale_to_zero: bool) -> tuple[float, float]:
    """(detection -> rollback completed, whole watch) in seconds, as the watch itself reports and as timed here."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    with pytest.MonkeyPatch.context() as patch:
        stack = moto_stack.build(patch, canary_weight=50)
    canary_story.telemetry(stack).soaked(50)
    canary_story.alarm(stack, "task-service-api-5xx-rate-high")
    lines: list[str] = []
    options = watch.WatchOptions(minutes=1.0, interval=5.0, rollback_on_breach=True, scale_to_zero=scale_to_zero,
                                 yes=True)
    started = time.perf_counter()
    code = watch.run(Outputs(stack.outputs, "bench"), Aws(stack.region), Invocation(None, "prod"), options, emit=lines.append,
                     tty=lambda: False)
    whole = time.perf_counter() - started
    reported = [line for line in lines if line.startswith("rollback completed ")]
    if code != 1 or not reported:
        raise SystemExit("the watch did not roll back:\n" + "\n".join(lines))
    return float(reported[0].split()[2]), whole


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.update(ENV)
    with serving() as endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        one_run(endpoint, False)  # warm: moto loads each backend on its first request
        for scale in (False, True):
            figures = [one_run(endpoint, scale) for _ in range(args.runs)]
            rollback = [f[0] for f in figures]
            whole = [f[1] for f in figures]
            print(f"{'--scale-to-zero' if scale else 'route only':>16}: breach detected -> rollback completed "
                  f"median {statistics.median(rollback):.3f} s, max {max(rollback):.3f} s (goal < 2 s); "
                  f"whole watch median {statistics.median(whole):.3f} s ({args.runs} runs)")


if __name__ == "__main__":
    main()
