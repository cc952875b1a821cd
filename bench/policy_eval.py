"""Time one policy evaluation of the whole prod stack through the Analyzer protocol, once the pack is up.

One evaluation is what a preview does with the pack: Analyze for every resource, then AnalyzeStack. Resources come
from the real program run under mocks (preview/engine.py). Live state is read from a local moto server (an
HTTP round trip per listener rule, as in a real preview; the program's listener is not in moto, so the answer is
ListenerNotFound -> not applicable), or not at all with --no-live.

    .venv/bin/python bench/policy_eval.py [-n 20] [--stack prod] [--no-live]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from preview.analyzer_client import PolicyPackServer  # noqa: E402
from preview.analyzer_requests import Resource, resources_from_recording  # noqa: E402

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def program_resources(stack: str) -> list[Resource]:
    from preview.engine import run_program

    recording = run_program(ROOT, stack)
    return resources_from_recording(recording.resources, project=recording.project, stack=stack)


@contextlib.contextmanager
def moto_endpoint(live: bool) -> Iterator[Optional[str]]:
    """moto's server on loopback for the duration of the bench (None when live reads are off)."""
    if not live:
        yield None
        return
    from tests.moto_server import serving

    with serving() as endpoint:
        _warm(endpoint)
        yield endpoint


def _warm(endpoint: str) -> None:
    """moto loads its ELBv2 backend on the first request; keep that out of the pack's figures."""
    import boto3

    client = boto3.client("elbv2", endpoint_url=endpoint, region_name=FAKE_AWS["AWS_DEFAULT_REGION"],
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    client.describe_load_balancers()


def run(stack: str, runs: int, live: bool) -> None:
    resources = program_resources(stack)
    env: dict[str, Optional[str]] = dict(FAKE_AWS)
    with moto_endpoint(live) as endpoint:
        if endpoint:
            env["AWS_ENDPOINT_URL"] = endpoint
        started = time.perf_counter()
        with PolicyPackServer(ROOT / "policy", project="task-service", stack=stack, env=env) as pack:
            up = time.perf_counter() - started
            config: dict[str, dict[str, Any]] = {}
            if not live:
                config = {"alb-canary-progression": {"readLiveState": False}}
            pack.configure(_merged(ROOT / "policy" / "config" / f"{stack}.json", config))
            times = []
            result = None
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                result = pack.preview(resources)
                times.append(time.perf_counter() - t0)
    assert result is not None
    cold, warm = times[0], times[1:]
    print(f"stack={stack} resources={len(resources)} policies={len(pack.config)} live={'moto' if live else 'off'}")
    print(f"pack start-up: {up * 1000:.0f} ms (not counted below)")
    print(f"first evaluation: {cold * 1000:.1f} ms")
    print(f"median of {len(warm)}: {statistics.median(warm) * 1000:.1f} ms "
          f"(min {min(warm) * 1000:.1f}, max {max(warm) * 1000:.1f})")
    print(f"findings: {len(result.mandatory)} mandatory, {len(result.advisory)} advisory, "
          f"{len(result.not_applicable)} not applicable")


def _merged(path: Path, extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())
    for name, value in extra.items():
        base = config.get(name, {})
        base = {"enforcementLevel": base} if isinstance(base, str) else dict(base)
        base.update(value)
        config[name] = base
    return config


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--stack", default="prod", choices=["prod", "dev"])
    parser.add_argument("--no-live", action="store_true", help="switch live state reading off")
    args = parser.parse_args(argv)
    run(args.stack, args.runs, live=not args.no_live)
    return 0


if __name__ == "__main__":
    sys.exit(main())
