"""One bounded, visible wait for every command that waits on AWS: a line per poll, and a clear end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class WaitTimedOut(Exception):
    """The deadline passed; the message says what was awaited, for how long, and the last status seen."""


class WaitFailed(Exception):
    """What was awaited reached a state it will not come back from (e.g. a snapshot in `failed`)."""


def wait_for(
    what: str,
    poll: Callable[[], tuple[bool, str]],
    *,
    timeout_seconds: float,
    poll_seconds: float,
    emit: Callable[[str], Any],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> float:
    """Call `poll` (-> done, status text) until done or `timeout_seconds`; returns the seconds waited.

    `poll` raises WaitFailed for a state that will never become done. Each poll prints one line, so a person
    watching knows what is awaited, the current status and how long is left.
    """
    started = clock()
    while True:
        done, status = poll()
        waited = clock() - started
        if done:
            emit(f"{what}: {status} after {waited:.0f} s")
            return waited
        if waited >= timeout_seconds:
            raise WaitTimedOut(f"{what} still {status} after {waited:.0f} s (limit {timeout_seconds:.0f} s)")
        emit(f"waiting for {what}: {status} ({waited:.0f} s of at most {timeout_seconds:.0f} s)")
        sleep(min(poll_seconds, max(timeout_seconds - waited, 0.0)))
