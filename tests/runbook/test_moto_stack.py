"""The moto estate is the program's prod stack: same names, same outputs but for what moto assigns."""

from __future__ import annotations

import pytest

from runbook.alb import dimension_target_group
from task_service import contract
from tests.runbook import moto_stack


def test_only_what_moto_assigns_differs_from_the_program_outputs(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    program = moto_stack.program_outputs()
    built = moto_stack.build(monkeypatch, canary_weight=program[contract.CANARY_WEIGHT.name])
    differing = {name for name in set(program) | set(built.outputs) if program.get(name) != built.outputs.get(name)}
    assert differing <= {output.name for output in moto_stack.ASSIGNED}
    assert set(built.outputs) == set(program)


def test_moto_holds_the_resources_under_the_names_the_outputs_give(stack: moto_stack.Stack) -> None:
    alarms = stack.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert sorted(alarm["AlarmName"] for alarm in alarms) == stack.value(contract.ALARM_NAMES) == stack.names.alarm_names()
    assert dimension_target_group(stack.value(contract.TARGET_GROUP_ARN)).split("/")[1] == stack.value(contract.TARGET_GROUP_NAME)
    assert stack.service()["serviceName"] == stack.value(contract.SERVICE_NAME)
    dashboards = stack.client("cloudwatch").list_dashboards()["DashboardEntries"]
    assert [entry["DashboardName"] for entry in dashboards] == [stack.value(contract.DASHBOARD_NAME)]
