"""`canary watch`: hold the current step for the soak window, polling the health gate; roll back on a breach.

Every `--interval` seconds it reads the live rule and the gate's findings (runbook/canary.py, the pack's own gate)
and prints one line: the soak progress, what passes and anything that does not, behind a progress bar on a
terminal. A breach is a measured value over its threshold or an alarm of the stack in ALARM (missing data and an
incomplete soak are not breaches: they only keep the gate shut). With `--rollback-on-breach` the first breach
rolls back exactly as `rollback` does and reports how long that took. The watch always ends by itself: after
`--minutes` (default: the gate's soak window), at the first breach, or when the live weight changes under it.
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError

from runbook import canary, rollback
from runbook.aws import Aws
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.output import Invocation
from runbook.outputs import Outputs
from runbook.pack import health_gate
from task_service.canary import next_step

MAX_MINUTES = 24 * 60
BAR_WIDTH = 20
CONFIRM_SECONDS = 120


@dataclass(frozen=True)
class WatchOptions:
    minutes: float | None
    interval: float
    rollback_on_breach: bool
    scale_to_zero: bool
    yes: bool


def _check(options: WatchOptions, soak_minutes: int) -> float:
    """The watch's length in seconds; BadInput for values that would not end or not poll."""
    minutes = soak_minutes if options.minutes is None else options.minutes
    if not 0 < minutes <= MAX_MINUTES:
        raise BadInput(f"--minutes must be above 0 and at most {MAX_MINUTES}, got {minutes:g}.")
    if not 0 < options.interval <= 600:
        raise BadInput(f"--interval must be above 0 and at most 600 seconds, got {options.interval:g}.")
    if options.scale_to_zero and not options.rollback_on_breach:
        raise BadInput("--scale-to-zero only applies with --rollback-on-breach.")
    return minutes * 60.0


def _arm(options: WatchOptions, interactive: Callable[[], bool], confirm: Callable[[], bool]) -> bool:
    """Whether a breach may roll back: --yes, or a yes typed at the start (never a question mid-watch)."""
    if not options.rollback_on_breach or options.yes:
        return True
    if not interactive():
        raise BadInput("--rollback-on-breach without a terminal needs --yes (it changes the listener rule unattended).")
    return confirm()


def _confirm(timeout: float = CONFIRM_SECONDS) -> bool:
    """Asked once, before watching; no answer within `timeout` seconds is a no (the watch never waits unbounded)."""
    print("Type 'rollback' to let this watch route all traffic back to the monolith on a breach: ", end="", flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        print(f"\nno answer in {timeout:g} s")
        return False
    return sys.stdin.readline().strip() == "rollback"


def _bar(elapsed: float, total: float) -> str:
    done = min(int(BAR_WIDTH * elapsed / total), BAR_WIDTH) if total else BAR_WIDTH
    return f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {elapsed / 60:.1f}/{total / 60:.1f} min "


def poll_line(reading: canary.Reading) -> str:
    """One line: the step, the soak, what passes, and every finding that does not."""
    passing = [f.gate for f in reading.findings if f.ok and f.gate != "soak"]
    parts = [f"{reading.percent}%"]
    if reading.soak is not None:
        parts.append(f"soak {reading.soak.detail}")
    parts += [f"{f.outcome.name} {f.gate}: {f.detail}" for f in reading.findings if not f.ok and f.gate != "soak"]
    if passing:
        parts.append(f"passing: {', '.join(passing)}")
    return " | ".join(parts)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


@dataclass
class Watch:
    """One watch's state between polls."""

    out: Outputs
    aws: Aws
    invocation: Invocation
    options: WatchOptions
    emit: Callable[[str], Any]
    tty: bool
    thresholds: health_gate.Thresholds
    seconds: float

    def poll(self, started: float, first: bool) -> canary.Reading | None:
        """A reading and its line; None (and a line saying why) when AWS cannot be reached after the first poll."""
        try:
            reading = canary.read(self.out, self.aws, self.thresholds)
        except (health_gate.Unreachable, BotoCoreError) as err:
            reason = err.reason if isinstance(err, health_gate.Unreachable) else f"{type(err).__name__}: {err}"
            if first:
                raise BadInput(f"AWS cannot be read: {reason}") from None
            self.emit(f"{_stamp()} AWS cannot be read ({reason}); trying again at the next poll")
            return None
        bar = _bar(time.monotonic() - started, self.seconds) if self.tty else ""
        self.emit(f"{_stamp()} {bar}{poll_line(reading)}")
        return reading

    def breached(self, reading: canary.Reading, armed: bool) -> int:
        detected = time.monotonic()
        self.emit(f"BREACH at {reading.percent}%: " + "; ".join(f"{f.gate}: {f.detail}" for f in reading.breaches))
        if not armed:
            scale = ["--scale-to-zero"] if self.options.scale_to_zero else []
            self.emit(f"verdict: BREACHED at {reading.percent}%, not rolled back (no --rollback-on-breach).")
            self.emit(f"next: {self.invocation.command('rollback', '--yes', *scale)}")
            return EXIT_FAILED
        self.emit("rolling back now (--rollback-on-breach):")
        code = rollback.run(self.out, self.aws, self.invocation.stack, yes=True, dry_run=False,
                            scale_to_zero=self.options.scale_to_zero, emit=self.emit)
        took = time.monotonic() - detected
        state = "rolled back" if code == EXIT_OK else "rollback FAILED in part (see above)"
        self.emit(f"rollback completed {took:.3f} s after the breach was detected")
        self.emit(f"verdict: BREACHED at {reading.percent}%, {state}. Next: make the stack agree, as printed above.")
        return EXIT_FAILED

    @property
    def rerun(self) -> str:
        return self.invocation.command("canary", "watch")

    def verdict(self, reading: canary.Reading | None, watched: float) -> int:
        """The end of a watch without a breach: is the gate open, and the exact next command."""
        if reading is None:
            self.emit("verdict: NOT PROVEN: the last poll could not read AWS.")
            self.emit(f"next: {self.rerun}")
            return EXIT_FAILED
        minutes = watched / 60
        upcoming = next_step(reading.percent)
        blocking = [f for f in reading.findings if not f.ok]
        if not blocking:
            self.emit(f"verdict: HEALTHY: no breach in {minutes:.1f} minutes at {reading.percent}%, every gate passes.")
            self.emit(f"next: {canary.deploy_command(self.invocation.stack, upcoming)}" if upcoming is not None
                      else "next: canary complete; python -m runbook integrity, then the end of migration.")
            return EXIT_OK
        refused = [f for f in blocking if f.outcome is health_gate.Outcome.ERROR]
        reasons = "; ".join(f"{f.gate}: {f.detail}" for f in blocking)
        if refused:
            self.emit(f"verdict: NOT PROVEN: no breach seen, but AWS refused a read: {reasons}")
            self.emit(f"next: grant the reads named above, then {self.rerun}")
            return EXIT_FAILED
        self.emit(f"verdict: HEALTHY SO FAR: no breach in {minutes:.1f} minutes at {reading.percent}%; the gate is "
                  f"not open yet: {reasons}")
        self.emit(f"next: {self.rerun} --minutes {self._remaining(reading)}")
        if upcoming is not None:
            self.emit(f"then, when it ends healthy: {canary.deploy_command(self.invocation.stack, upcoming)}")
        return EXIT_OK

    def _remaining(self, reading: canary.Reading) -> int:
        """Minutes of soak still missing (the whole window when the soak is not what holds the gate)."""
        soak = reading.soak
        if soak is None or soak.ok or soak.minutes is None:
            return self.thresholds.soak_minutes
        return max(self.thresholds.soak_minutes - soak.minutes, 1)


def run(out: Outputs, aws: Aws, invocation: Invocation, options: WatchOptions,
        emit: Callable[[str], Any] = print, tty: Callable[[], bool] = lambda: sys.stdout.isatty(),
        interactive: Callable[[], bool] = lambda: sys.stdin.isatty(), confirm: Callable[[], bool] = _confirm) -> int:
    out.require(*canary.NEEDS, *rollback.NEEDS)
    stack = invocation.stack
    thresholds = canary.thresholds_for(stack)
    watch = Watch(out, aws, invocation, options, emit, tty(), thresholds,
                  _check(options, thresholds.soak_minutes))
    armed = _arm(options, interactive, confirm)
    if options.rollback_on_breach and not armed:
        emit("not confirmed; nothing changed.")
        return EXIT_FAILED
    emit(f"watching {stack} for {watch.seconds / 60:g} minutes, polling every {options.interval:g} s"
         + (" (a breach rolls back)" if options.rollback_on_breach else ""))
    started = time.monotonic()
    deadline = started + watch.seconds
    first = watch.poll(started, first=True)
    reading = first
    while True:
        if reading is not None and reading.breaches:
            return watch.breached(reading, options.rollback_on_breach)
        if first is not None and reading is not None and reading.percent != first.percent:
            emit(f"verdict: the live weight changed from {first.percent}% to {reading.percent}% during the watch "
                 "(a rollback or a deploy); nothing to judge at the old step.")
            emit(f"next: {watch.rerun}")
            return EXIT_FAILED
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return watch.verdict(reading, time.monotonic() - started)
        time.sleep(min(options.interval, remaining))
        reading = watch.poll(started, first=False)
