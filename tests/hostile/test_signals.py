"""Signals to a real `python -m preview`: SIGINT, SIGTERM and SIGHUP stop the policy pack and exit quietly with
130, 143 and 129; after SIGKILL the kernel stops the pack (PR_SET_PDEATHSIG). Every case is a real subprocess,
bounded by a timeout; the pack is found by its working directory, each case's own scratch policy directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.hostile.conftest import REPO, new_project

CASES = [(signum, phase) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) for phase in ("starting", "pack-running")]
CASES.append((signal.SIGKILL, "pack-running"))
LIMIT = 60.0


@dataclass
class Outcome:
    code: int
    err: str
    pack_seen: bool
    pack_left: list[int]


def _packs(policy_dir: Path) -> list[int]:
    """Live processes working in `policy_dir`: the pack (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == str(policy_dir) and (entry / "stat").read_text().split()[2] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _handles_hangup(pid: int) -> bool:
    """Our handlers are installed (SIGHUP is caught: Python itself only catches SIGINT)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signal.SIGHUP - 1) & 1)


def _case(signum: int, phase: str, root: Path) -> Outcome:
    project = new_project(root)
    policy_dir = project.root / "policy"
    process = subprocess.Popen([sys.executable, "-m", "preview", *project.argv("prod")], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if phase == "starting":  # as soon as the handlers are in: the rest of the imports are still to come
            _wait(lambda: _handles_hangup(process.pid), LIMIT / 2)
        else:
            _wait(lambda: bool(_packs(policy_dir)), LIMIT / 2)
        seen = bool(_packs(policy_dir))
        process.send_signal(signum)
        _, err = process.communicate(timeout=LIMIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    _wait(lambda: not _packs(policy_dir), 5)
    return Outcome(process.returncode, err, seen, _packs(policy_dir))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], Outcome]:
    """All cases at once (each waits for its own moment), so the module costs about one preview."""
    base = tmp_path_factory.mktemp("signals")
    with ThreadPoolExecutor(len(CASES)) as workers:
        futures = {case: workers.submit(_case, *case, base / f"{case[0]}-{case[1]}") for case in CASES}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("signum,phase", CASES, ids=[f"{signal.Signals(s).name}-{p}" for s, p in CASES])
def test_a_signal_stops_the_pack_and_exits_quietly(signum: int, phase: str, outcomes: dict[tuple[int, str], Outcome]) -> None:
    outcome = outcomes[(signum, phase)]
    if phase == "pack-running":
        assert outcome.pack_seen, "the pack never started"
    assert outcome.pack_left == [], f"the policy pack outlived the preview: {outcome.pack_left}"
    if signum == signal.SIGKILL:
        assert outcome.code == -signal.SIGKILL
    else:
        assert outcome.code == 128 + signum, outcome.err[-2000:]
        assert outcome.err == "", outcome.err[-2000:]
