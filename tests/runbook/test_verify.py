"""`verify` against a stack built in moto: all green, then each kind of failure on its own."""

from __future__ import annotations

from typing import Any

import pytest

from runbook.cli import main
from task_service import contract
from task_service.naming import Naming, Role
from tests.runbook import moto_stack
from tests.runbook.report_rows import verify_rows


def test_a_healthy_stack_passes(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 0
    failed = {name: row for name, row in rows.items() if row[0] == "FAIL"}
    assert failed == {}
    assert rows["ecs desired == running"] == ("PASS", "desired 2, running 2")
    assert rows["listener rule weights"][0] == "PASS"
    assert len(rows) == 25


def test_performance_insights_missing_from_the_api_is_not_available_not_a_pass(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rows = verify_rows(outputs_file, stack.outputs, capsys)
    status, detail = rows["rds performance insights"]
    assert status == "N/A" and "did not report PerformanceInsightsEnabled" in detail


def test_running_short_of_desired_fails(aws_env: str, monkeypatch: pytest.MonkeyPatch, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    built = moto_stack.build(monkeypatch, running=1)
    code, rows = verify_rows(outputs_file, built.outputs, capsys)
    assert code == 1
    assert rows["ecs desired == running"] == ("FAIL", "desired 2, running 1")


def test_an_alarm_in_alarm_and_weights_off_config_fail(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    alarm = stack.names.of(Role.ALARM_DB_CONNECTIONS)
    stack.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    stack.set_rule_weight(25)
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 1
    assert rows["no alarm in ALARM"] == ("FAIL", alarm)
    assert rows["listener rule weights"] == ("FAIL", "monolith 75 / service 25 (outputs: 50 / 50)")


def test_a_missing_role_and_alarm_fail_while_the_other_checks_still_run(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    task_role, execution_role = stack.value(contract.TASK_ROLE_NAME), stack.value(contract.EXECUTION_ROLE_NAME)
    stack.client("iam").delete_role(RoleName=task_role)
    alarms = stack.value(contract.ALARM_NAMES)
    never_created = f"{stack.names.prefix}-never-created"
    outputs = moto_stack.with_values(stack.outputs, {contract.ALARM_NAMES: alarms + [never_created]})
    code, rows = verify_rows(outputs_file, outputs, capsys)
    assert code == 1
    assert rows[f"iam role {task_role}"][0] == "FAIL"
    assert "NoSuchEntity" in rows[f"iam role {task_role}"][1]
    assert rows["alarms exist"] == ("FAIL", f"{len(alarms)}/{len(alarms) + 1} found; missing: {never_created}")
    assert rows[f"iam role {execution_role}"][0] == "PASS"
    assert rows["dms task"][0] == "PASS"


def test_autoscaling_and_priority_are_compared_with_the_outputs(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    low, high, priority = (stack.value(o) for o in (contract.AUTOSCALING_MIN, contract.AUTOSCALING_MAX, contract.LISTENER_RULE_PRIORITY))
    outputs = moto_stack.with_values(stack.outputs, {contract.AUTOSCALING_MAX: high - 1, contract.LISTENER_RULE_PRIORITY: priority + 10})
    code, rows = verify_rows(outputs_file, outputs, capsys)
    assert code == 1
    assert rows["autoscaling min/max"] == ("FAIL", f"min {low} max {high} (outputs: min {low} max {high - 1})")
    assert rows["listener rule priority"] == ("FAIL", f"priority {priority} (outputs: {priority + 10})")


def test_dms_disabled_is_reported_not_failed(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = moto_stack.without(stack.outputs, *(output for output in contract.CONTRACT if output.dms))
    code, rows = verify_rows(outputs_file, outputs, capsys)
    assert code == 0
    assert rows["dms task"] == ("N/A", "DMS is disabled in this stack")


def test_another_stacks_alarm_in_alarm_is_not_this_stacks_business(
    stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """dev's alarms share prod's `task-service-` prefix; only the names in the outputs count."""
    dev_alarm = Naming.for_stack(stack.value(contract.PROJECT), "dev").of(Role.ALARM_DB_CPU)
    assert dev_alarm.startswith(stack.names.prefix) and dev_alarm not in stack.value(contract.ALARM_NAMES)
    cloudwatch = stack.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=dev_alarm, MetricName="CPUUtilization", Namespace="AWS/RDS", Statistic="Average",
        Period=60, EvaluationPeriods=1, Threshold=80, ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=dev_alarm, StateValue="ALARM", StateReason="test")
    code, rows = verify_rows(outputs_file, stack.outputs, capsys)
    assert code == 0
    assert rows["no alarm in ALARM"] == ("PASS", f"{len(stack.value(contract.ALARM_NAMES))} alarms, none in ALARM")


def test_a_missing_dms_task_is_a_failed_check_not_a_crash(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    task = stack.value(contract.DMS_REPLICATION_TASK_ARN)
    outputs = moto_stack.with_values(stack.outputs, {contract.DMS_REPLICATION_TASK_ARN: task + "-gone"})
    assert main(["verify", "--outputs", outputs_file(outputs)]) == 1
    captured = capsys.readouterr()
    assert "not found" in next(line for line in captured.out.splitlines() if "dms task" in line)
    assert not captured.err
