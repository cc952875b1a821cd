"""`alb-canary-health-gate`: a raise of the canary weight needs the live step to be healthy (health_gate.py).

Only a raise is gated: lowering the weight (a rollback) and keeping it are never blocked and read nothing. The
live weight comes from the live rule at the same listener and priority (live.py); a rule that is not live yet
rises from 0%. Unreadable live state (no credentials, no endpoint) leaves the policy not applicable with the
reason, as `alb-canary-progression` does; an identity AWS refuses blocks the raise and names the permission.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from pulumi_policy import ResourceValidationArgs, Severity

from . import health_gate, live
from .canary import (
    LIVE_TIMEOUT_SCHEMA, ROUTE_SCHEMA, Report, desired_weight, live_canary_indexes, live_canary_weight, live_place, skip,
)
from .common import LISTENER_RULE, fmt_number, resource_policy
from .routing import Route, describe_share

PROD_ALARMS = [
    "task-service-api-5xx-rate-high", "task-service-api-p95-latency-high", "task-service-api-unhealthy-hosts",
    "task-service-db-connections-high", "task-service-db-cpu-high", "task-service-db-free-storage-low",
    "task-service-db-freeable-memory-low", "task-service-ecs-cpu-high", "task-service-ecs-memory-high",
]

GATE_SCHEMA: dict[str, dict[str, Any]] = {
    **ROUTE_SCHEMA,
    **health_gate.SCHEMA,
    **LIVE_TIMEOUT_SCHEMA,
    "ecsCluster": {
        "type": "string", "default": "task-service-cluster",
        "description": "The stack's ECS cluster (CPUUtilization and MemoryUtilization dimension).",
    },
    "ecsService": {
        "type": "string", "default": "task-service",
        "description": "The stack's ECS service (CPUUtilization and MemoryUtilization dimension).",
    },
    "alarmNames": {
        "type": "array", "items": {"type": "string"}, "default": PROD_ALARMS,
        "description": "Every alarm of the stack, by exact name; none may be in ALARM when the weight rises.",
    },
    "loadTestParameter": {
        "type": "string", "default": "/task-service/loadtest/result",
        "description": "SSM parameter holding the stack's last load-test result (checked at the first step).",
    },
}


def _single(arns: list[Optional[str]], canary: Optional[frozenset[int]]) -> tuple[Optional[str], list[str]]:
    found = arns[min(canary)] if canary is not None and len(canary) == 1 else None
    return found, [a for a in arns if a and a != found]


def _groups(current: Optional[live.LiveRule], route: Route,
            cfg: Mapping[str, Any]) -> tuple[Optional[str], list[str]]:
    """The canary's ARN and the other groups': from the live rule, else (a new rule, or a live rule without the
    canary yet) from the desired one."""
    if current is not None:
        arns: list[Optional[str]] = [arn for arn, _ in current.targets]
        found, others = _single(arns, live_canary_indexes(current, route, cfg))
        if found is not None:
            return found, others
    forward = route.reaching[0]
    return _single(list(forward.arns), forward.canary)


def _subject(listener_arn: str, current: Optional[live.LiveRule], route: Route,
             cfg: Mapping[str, Any]) -> Optional[health_gate.Subject]:
    canary, baseline = _groups(current, route, cfg)
    if canary is None:
        return None
    return health_gate.Subject(
        load_balancer=health_gate.load_balancer_dimension(listener_arn), canary_group_arn=canary, baseline_group_arns=tuple(baseline),
        cluster=cfg["ecsCluster"], service=cfg["ecsService"], alarm_names=tuple(cfg["alarmNames"]),
        load_test_parameter=cfg["loadTestParameter"] or None)


def _check_gate(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    route, desired = desired_weight(args, cfg)
    if desired <= 0:
        return  # all traffic on the monolith: never blocked, nothing to read
    listener_arn, priority = live_place(args)
    timeout = float(cfg["liveTimeoutSeconds"])
    try:
        current = live.read_live_rule(listener_arn, priority, timeout)
    except live.LiveStateDenied as err:
        report(f"the canary weight cannot be raised to {describe_share(desired)} unread: AWS refused "
               f"{err.permission} ({err.reason}); grant it to this identity, or lower the weight (never blocked).")
        return
    except live.LiveStateUnavailable as err:
        skip(args, f"the live weight cannot be read ({err.reason}); health gate unchecked")
    now = 0.0 if current is None else live_canary_weight(current, route, cfg)
    if desired <= now:
        return
    raising = f"raising the canary from {fmt_number(round(now, 2))}% to {describe_share(desired)}"
    try:
        subject = _subject(listener_arn, current, route, cfg)
    except ValueError as err:
        report(f"{raising}: {err}.")
        return
    if subject is None:
        report(f"{raising}: the canary target group has no ARN yet (it is created in this update): deploy the rule "
               "at 0% first, then raise it once its targets are healthy.")
        return
    region = live.region_of(listener_arn)
    thresholds = health_gate.Thresholds.from_config(cfg)
    try:
        findings = health_gate.evaluate(lambda service: live.client(service, region, timeout), subject, thresholds, now)
    except health_gate.Unreachable as err:
        skip(args, f"the live state cannot be read ({err.reason}); health gate unchecked")
    for finding in findings:
        if not finding.ok:
            report(f"{raising}: {finding.gate}: {finding.detail}.")


alb_canary_health_gate = resource_policy(
    name=health_gate.POLICY_NAME,
    area="canary",
    description="The canary weight rises only when the live step is healthy: soaked for soakMinutes at its weight "
                "(measured per minute in CloudWatch), 5xx rate, p50/p95 latency, ECS CPU and memory under the "
                "thresholds, no alarm of the stack in ALARM; from 0%, healthy targets and a passing load test.",
    resource_types=[LISTENER_RULE],
    check=_check_gate,
    remediation="hold the current step until `python -m runbook canary watch` ends healthy (or roll back: lowering "
                "the weight is never blocked); the message names the gate, the metric or the missing permission.",
    severity=Severity.CRITICAL,
    config=GATE_SCHEMA,
)

POLICIES = [alb_canary_health_gate]

