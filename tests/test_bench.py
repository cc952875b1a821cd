"""The benchmark scripts still run against today's code (their figures are read by people, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,args,expect", [
    ("canary_rollback.py", ["--runs", "1"], "breach detected -> rollback completed median"),
    ("policy_eval.py", ["--runs", "1"], "findings: 0 mandatory"),
])
def test_a_bench_runs_once(script: str, args: list[str], expect: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout
