"""Availability: Multi-AZ databases and replication, ECS deployments that roll back, enough tasks."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pulumi_policy import ResourceValidationArgs, Severity

from .common import (
    AUTOSCALING_TARGET,
    DMS_REPLICATION_INSTANCE,
    ECS_SERVICE,
    RDS_INSTANCE,
    as_bool,
    as_number,
    dig,
    fmt_number,
    resource_policy,
)

Report = Callable[[str], None]


def _check_multi_az(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if as_bool(args.props.get("multiAz")) is not True:
        report("multiAz is not true: an AZ outage or a maintenance reboot takes the service down.")


def _check_circuit_breaker(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    breaker = args.props.get("deploymentCircuitBreaker")
    if as_bool(dig(breaker, "enable")) is not True:
        report("deploymentCircuitBreaker.enable is not true, so a failing deployment keeps replacing tasks.")
    elif as_bool(dig(breaker, "rollback")) is not True:
        report("deploymentCircuitBreaker.rollback is not true, so a failed deployment is not rolled back.")


def _check_capacity(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if props.get("serviceNamespace") != "ecs":
        return
    low = as_number(props.get("minCapacity"))
    high = as_number(props.get("maxCapacity"))
    floor = float(cfg["minimumCapacity"])
    ceiling = float(cfg["maximumCapacity"])
    if low is None or low < floor:
        shown = "unset" if low is None else fmt_number(low)
        report(f"minCapacity is {shown}; at least {fmt_number(floor)} tasks keep the service up during a task "
               "or AZ failure.")
    if high is None or high > ceiling:
        shown = "unset" if high is None else fmt_number(high)
        report(f"maxCapacity is {shown}; the configured ceiling is {fmt_number(ceiling)} (cost and DB connections).")
    if low is not None and high is not None and low > high:
        report(f"minCapacity {fmt_number(low)} is above maxCapacity {fmt_number(high)}.")


multi_az = resource_policy(
    name="multi-az",
    area="availability",
    description="RDS instances and DMS replication instances run Multi-AZ.",
    resource_types=[RDS_INSTANCE, DMS_REPLICATION_INSTANCE],
    check=_check_multi_az,
    remediation="set multiAz=True (dev may run single-AZ: its config sets this policy to advisory).",
)

ecs_circuit_breaker = resource_policy(
    name="ecs-deployment-circuit-breaker",
    area="availability",
    description="ECS services use the deployment circuit breaker with automatic rollback.",
    resource_types=[ECS_SERVICE],
    check=_check_circuit_breaker,
    remediation="set deploymentCircuitBreaker={enable: True, rollback: True}.",
)

autoscaling_capacity = resource_policy(
    name="ecs-autoscaling-capacity",
    area="availability",
    description="ECS autoscaling targets keep at least the minimum task count and stay under the ceiling.",
    resource_types=[AUTOSCALING_TARGET],
    check=_check_capacity,
    remediation="set minCapacity >= minimumCapacity (default 2) and maxCapacity <= maximumCapacity (default 10).",
    severity=Severity.MEDIUM,
    config={
        "minimumCapacity": {
            "type": "integer", "minimum": 0, "default": 2, "description": "Lowest minCapacity accepted.",
        },
        "maximumCapacity": {
            "type": "integer", "minimum": 1, "default": 10, "description": "Highest maxCapacity accepted.",
        },
    },
)

POLICIES = [multi_az, ecs_circuit_breaker, autoscaling_capacity]
