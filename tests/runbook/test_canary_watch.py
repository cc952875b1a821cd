"""`canary watch` against the moto stack, with windows of seconds: healthy ends 0 with the next command, a breach
ends 1 (rolled back with --rollback-on-breach), bad input ends 2 having changed nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from runbook import watch
from runbook.aws import Aws
from runbook.canary import deploy_command
from runbook.cli import main
from runbook.output import Invocation
from runbook.outputs import load_outputs
from task_service import contract
from tests.runbook import canary_story, moto_stack

SHORT = ["--minutes", "0.05", "--interval", "0.5"]  # three seconds, a poll every half second


@pytest.fixture
def soaked(stack: moto_stack.Stack) -> moto_stack.Stack:
    """The stack at 50%, healthy for a whole soak window, every alarm OK."""
    canary_story.telemetry(stack).soaked(50)
    canary_story.all_alarms_ok(stack)
    return stack


@contextmanager
def after(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` in the background `seconds` into the block (the world changing mid-watch)."""
    timer = threading.Timer(seconds, action)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def run_watch(outputs_file: Any, stack: moto_stack.Stack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["canary", "watch", "--outputs", outputs_file(stack.outputs), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_healthy_step_exits_0_with_the_next_command(soaked: moto_stack.Stack, outputs_file: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code, out, _ = run_watch(outputs_file, soaked, capsys, *SHORT)
    assert code == 0, out
    assert time.monotonic() - started < 15
    polls = [line for line in out.splitlines() if "| passing: " in line]
    assert len(polls) >= 3 and all("50% | soak 30 of 30 minutes at 50%" in line for line in polls)
    assert "[" not in polls[0].split("50%")[0]  # no progress bar without a terminal
    assert "verdict: HEALTHY: no breach in 0.1 minutes at 50%, every gate passes." in out
    assert out.rstrip().endswith(f"next: {deploy_command('prod', 100)}")
    assert soaked.rule_weights()[soaked.value(contract.TARGET_GROUP_ARN)] == 50


def test_an_alarm_firing_mid_watch_rolls_back_and_exits_1(soaked: moto_stack.Stack, outputs_file: Any,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    fire = lambda: canary_story.alarm(soaked, "task-service-api-5xx-rate-high")  # noqa: E731
    with after(1.2, fire):
        code, out, _ = run_watch(outputs_file, soaked, capsys, "--minutes", "0.5", "--interval", "0.3",
                                 "--rollback-on-breach", "--yes")
    assert code == 1, out
    lines = out.splitlines()
    assert sum("| passing: " in line and "BREACH" not in line for line in lines) >= 2  # healthy before it fired
    assert "BREACH at 50%: alarms: in ALARM: task-service-api-5xx-rate-high" in out
    assert "done: route 100% to the monolith" in out
    assert any(line.startswith("rollback completed ") and line.endswith(" s after the breach was detected") for line in lines)
    assert "verdict: BREACHED at 50%, rolled back." in out
    assert "pulumi config set canaryWeight 0 -s prod" in out
    monolith, service = soaked.value(contract.MONOLITH_TARGET_GROUP_ARN), soaked.value(contract.TARGET_GROUP_ARN)
    assert soaked.rule_weights() == {monolith: 100, service: 0}
    assert soaked.service()["desiredCount"] == 2  # no --scale-to-zero


def test_a_breach_with_scale_to_zero_also_stops_the_service(stack: moto_stack.Stack, outputs_file: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    canary_story.telemetry(stack).soaked(50, cpu=88.0)
    code, out, _ = run_watch(outputs_file, stack, capsys, *SHORT, "--rollback-on-breach", "--scale-to-zero", "--yes")
    assert code == 1 and "BREACH at 50%: cpu: 88% peak (gate < 70%)" in out
    assert stack.service()["desiredCount"] == 0
    assert stack.rule_weights()[stack.value(contract.TARGET_GROUP_ARN)] == 0


def test_a_breach_without_rollback_changes_nothing_and_says_how(stack: moto_stack.Stack, outputs_file: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    canary_story.telemetry(stack).soaked(50, latency_ms=(300, 700, 900))
    before = stack.rule_weights()
    code, out, _ = run_watch(outputs_file, stack, capsys, *SHORT)
    assert code == 1 and "BREACH at 50%: p50 latency: 700 ms (gate < 200 ms); p95 latency: 900 ms (gate < 500 ms)" in out
    path = outputs_file(stack.outputs)
    assert out.rstrip().endswith(f"next: python -m runbook rollback --yes --outputs {path} --stack prod")
    assert stack.rule_weights() == before


def test_an_unfinished_soak_ends_0_saying_how_long_to_go_on(aws_env: str, monkeypatch: pytest.MonkeyPatch,
                                                            outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    built = moto_stack.build(monkeypatch, canary_weight=25)
    story = canary_story.telemetry(built)
    story.minutes(1, 12, weight=25)
    story.minutes(13, 40, weight=5)
    canary_story.all_alarms_ok(built)
    code, out, _ = run_watch(outputs_file, built, capsys, *SHORT)
    assert code == 0, out
    verdict = next(line for line in out.splitlines() if line.startswith("verdict: "))
    assert verdict.startswith("verdict: HEALTHY SO FAR: no breach in 0.1 minutes at 25%; the gate is not open yet: soak: ")
    done = int(verdict.split("soak: ")[1].split(" of")[0])
    path = outputs_file(built.outputs)
    assert f"next: python -m runbook canary watch --outputs {path} --stack prod --minutes {30 - done}" in out
    assert f"then, when it ends healthy: {deploy_command('prod', 50)}" in out


def test_the_weight_changing_under_the_watch_ends_it(soaked: moto_stack.Stack, outputs_file: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with after(1.0, lambda: soaked.set_rule_weight(25)):
        code, out, _ = run_watch(outputs_file, soaked, capsys, "--minutes", "0.5", "--interval", "0.3")
    assert code == 1 and "the live weight changed from 50% to 25% during the watch" in out


def test_a_terminal_gets_a_progress_bar(soaked: moto_stack.Stack, outputs_file: Any) -> None:
    out = load_outputs(outputs_file(soaked.outputs), None)
    lines: list[str] = []
    options = watch.WatchOptions(minutes=0.02, interval=0.5, rollback_on_breach=False, scale_to_zero=False, yes=False)
    assert watch.run(out, Aws(soaked.region), Invocation(None, "prod"), options, emit=lines.append, tty=lambda: True) == 0
    bars = [line for line in lines if "] " in line and "/0.0 min 50%" in line]
    assert bars and bars[0].split(" ", 1)[1].startswith("[")
    assert lines[-1] == f"next: {deploy_command('prod', 100)}"


@pytest.mark.parametrize("args,message", [
    (["--minutes", "0"], "error: --minutes must be above 0 and at most 1440, got 0."),
    (["--minutes", "2000"], "error: --minutes must be above 0 and at most 1440, got 2000."),
    (["--interval", "0"], "error: --interval must be above 0 and at most 600 seconds, got 0."),
    (["--scale-to-zero"], "error: --scale-to-zero only applies with --rollback-on-breach."),
    (["--rollback-on-breach"], "error: --rollback-on-breach without a terminal needs --yes (it changes the listener rule unattended)."),
])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(stack: moto_stack.Stack, outputs_file: Any,
                                                             capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    canary_story.telemetry(stack).soaked(50, cpu=99.0)  # a breach is there to be acted on, were the input good
    before = stack.rule_weights()
    code, out, err = run_watch(outputs_file, stack, capsys, *args)
    assert (code, out, err.strip()) == (2, "", message)
    assert stack.rule_weights() == before


def test_an_unreachable_endpoint_exits_2(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = outputs_file(stack.outputs)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    code = main(["canary", "watch", "--outputs", path, *SHORT])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: AWS cannot be read: EndpointConnectionError") and "http://127.0.0.1:9" in err
    assert "\n" not in err


def test_a_declined_confirmation_on_a_terminal_changes_nothing(stack: moto_stack.Stack, outputs_file: Any) -> None:
    canary_story.telemetry(stack).soaked(50, cpu=99.0)
    before = stack.rule_weights()
    lines: list[str] = []
    options = watch.WatchOptions(minutes=0.05, interval=0.5, rollback_on_breach=True, scale_to_zero=False, yes=False)
    code = watch.run(load_outputs(outputs_file(stack.outputs), None), Aws(stack.region), Invocation(None, "prod"), options,
                     emit=lines.append, interactive=lambda: True, confirm=lambda: False)
    assert (code, lines) == (1, ["not confirmed; nothing changed."])
    assert stack.rule_weights() == before
