"""`verify` against a stack built in moto: all green, then each kind of failure on its own."""

from __future__ import annotations

from typing import Any

import pytest

from runbook.cli import main
from tests.runbook import moto_stack


def _rows(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"PASS", "FAIL", "N/A"}:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _verify(outputs_file: Any, outputs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, tuple[str, str]]]:
    code = main(["verify", "--outputs", outputs_file(outputs)])
    return code, _rows(capsys.readouterr().out)


def test_a_healthy_stack_passes(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = _verify(outputs_file, stack.outputs, capsys)
    assert code == 0
    failed = {name: row for name, row in rows.items() if row[0] == "FAIL"}
    assert failed == {}
    assert rows["ecs desired == running"] == ("PASS", "desired 2, running 2")
    assert rows["listener rule weights"][0] == "PASS"
    assert len(rows) == 19


def test_performance_insights_missing_from_the_api_is_not_available_not_a_pass(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rows = _verify(outputs_file, stack.outputs, capsys)
    status, detail = rows["rds performance insights"]
    assert status == "N/A" and "did not report PerformanceInsightsEnabled" in detail


def test_running_short_of_desired_fails(aws_env: str, monkeypatch: pytest.MonkeyPatch, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    built = moto_stack.build("ap-northeast-1", monkeypatch, running=1)
    code, rows = _verify(outputs_file, built.outputs, capsys)
    assert code == 1
    assert rows["ecs desired == running"] == ("FAIL", "desired 2, running 1")


def test_an_alarm_in_alarm_and_weights_off_config_fail(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack.client("cloudwatch").set_alarm_state(AlarmName="task-service-rds-connections", StateValue="ALARM", StateReason="test")
    stack.set_rule_weight(25)
    code, rows = _verify(outputs_file, stack.outputs, capsys)
    assert code == 1
    assert rows["no alarm in ALARM"] == ("FAIL", "task-service-rds-connections")
    assert rows["listener rule weights"] == ("FAIL", "monolith 75 / service 25 (outputs: 50 / 50)")


def test_a_missing_role_and_alarm_fail_while_the_other_checks_still_run(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.client("iam").delete_role(RoleName="task-service-task-role")
    outputs = dict(stack.outputs, alarmNames=stack.outputs["alarmNames"] + ["task-service-api-5xx-rate"])
    code, rows = _verify(outputs_file, outputs, capsys)
    assert code == 1
    assert rows["iam role task-service-task-role"][0] == "FAIL"
    assert "NoSuchEntity" in rows["iam role task-service-task-role"][1]
    assert rows["alarms exist (task-service*)"] == ("FAIL", "5/6 found; missing: task-service-api-5xx-rate")
    assert rows["iam role task-service-execution-role"][0] == "PASS"
    assert rows["dms task"][0] == "PASS"


def test_autoscaling_and_priority_are_compared_with_the_outputs(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = dict(stack.outputs, autoscalingMax=4, listenerRulePriority=20)
    code, rows = _verify(outputs_file, outputs, capsys)
    assert code == 1
    assert rows["autoscaling min/max"] == ("FAIL", "min 2 max 10 (outputs: min 2 max 4)")
    assert rows["listener rule priority"] == ("FAIL", "priority 10 (outputs: 20)")


def test_dms_disabled_is_reported_not_failed(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {k: v for k, v in stack.outputs.items() if not k.startswith("dms")}
    code, rows = _verify(outputs_file, outputs, capsys)
    assert code == 0
    assert rows["dms task"] == ("N/A", "DMS is disabled in this stack")
