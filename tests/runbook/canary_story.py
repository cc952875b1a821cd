"""What the canary tests put into the moto stack: telemetry minute by minute, alarm states, the load-test result."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from runbook.alb import dimension_load_balancer, dimension_target_group
from task_service import contract
from task_service.naming import Role
from tests.canary_telemetry import Telemetry
from tests.runbook import moto_stack


def telemetry(stack: moto_stack.Stack) -> Telemetry:
    return Telemetry(
        stack.client("cloudwatch"),
        dimension_load_balancer(stack.value(contract.LISTENER_ARN)),
        dimension_target_group(stack.value(contract.TARGET_GROUP_ARN)),
        dimension_target_group(stack.value(contract.MONOLITH_TARGET_GROUP_ARN)),
        stack.value(contract.CLUSTER_NAME),
        stack.value(contract.SERVICE_NAME),
    )


def alarm(stack: moto_stack.Stack, name: str, state: str = "ALARM") -> None:
    stack.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def all_alarms_ok(stack: moto_stack.Stack) -> None:
    for name in stack.value(contract.ALARM_NAMES):
        alarm(stack, name, "OK")


def load_test(stack: moto_stack.Stack, *, passed: bool = True, age: timedelta = timedelta(hours=1)) -> None:
    """The load test's result where it writes it: JSON in the stack's SSM parameter."""
    finished = (datetime.now(timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = json.dumps({"passed": passed, "finishedAt": finished, "p95Ms": 210, "errorRatePercent": 0.2, "requests": 15000})
    stack.client("ssm").put_parameter(Name=stack.names.of(Role.LOADTEST_RESULT), Value=value, Type="String", Overwrite=True)
