"""`canary status`: live weights, the service's health against the gates, and the next step.

It never changes weights: moving forward is a reviewed config change (`pulumi config set
canaryWeight N` + `pulumi up`), so this command only says whether that change is allowed now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from runbook.alb import dimension_load_balancer, dimension_target_group, read_rule
from runbook.aws import Aws, error_text
from runbook.errors import EXIT_FAILED, EXIT_OK
from runbook.integrity import dsn
from runbook.output import Invocation, Report
from runbook.outputs import Outputs
from runbook.report import CHECK_COLUMNS, Check, Status, records
from runbook.verify import alarm_checks, target_health_checks
from task_service import contract
from task_service.canary import next_step

MAX_ERROR_RATE_PERCENT = 1.0
MAX_P95_MS = 500.0
MAX_CPU_PERCENT = 70.0
MAX_MEMORY_PERCENT = 80.0
STEP_MINUTES = 30

CONFIG_KEY = "canaryWeight"
"""The stack config key (`task-service:canaryWeight`) that moves the canary; the output of that name only reports it."""

NEEDS = (
    contract.LISTENER_ARN,
    contract.LISTENER_RULE_ARN,
    contract.TARGET_GROUP_ARN,
    contract.MONOLITH_TARGET_GROUP_ARN,
    contract.CANARY_WEIGHT,
    contract.CLUSTER_NAME,
    contract.SERVICE_NAME,
    contract.ALARM_NAMES,
)


@dataclass(frozen=True)
class Metric:
    """A measured value, or None with the reason it is not available."""

    value: float | None
    reason: str = ""


@dataclass(frozen=True)
class Metrics:
    requests: Metric
    error_rate_percent: Metric
    p95_ms: Metric
    cpu_percent: Metric
    memory_percent: Metric


def up_command(stack: str) -> str:
    """A deploy of `stack` under the policy pack with that stack's policy config."""
    return f"pulumi up -s {stack} --policy-pack policy --policy-pack-config policy/config/{stack}.json"


def deploy_command(stack: str, weight: int) -> str:
    """The exact, reviewed change that moves the canary to `weight`."""
    return f"pulumi config set {CONFIG_KEY} {weight} -s {stack} && {up_command(stack)}"


def _gate(name: str, metric: Metric, limit: float, unit: str) -> Check:
    if metric.value is None:
        return Check(name, Status.NA, metric.reason)
    return Check(
        name,
        Status.PASS if metric.value < limit else Status.FAIL,
        f"{metric.value:.2f}{unit} (gate < {limit:g}{unit})",
    )


def gate_checks(live_weight: int, metrics: Metrics) -> list[Check]:
    """The digest's gates; the traffic gates only mean something once the service gets traffic."""
    checks = []
    if live_weight == 0:
        checks.append(Check("error rate", Status.PASS, "no traffic to the service at 0% (gate applies from 5%)"))
        checks.append(Check("p95 latency", Status.PASS, "no traffic to the service at 0% (gate applies from 5%)"))
    else:
        checks.append(_gate("error rate", metrics.error_rate_percent, MAX_ERROR_RATE_PERCENT, "%"))
        checks.append(_gate("p95 latency", metrics.p95_ms, MAX_P95_MS, " ms"))
    checks.append(_gate("cpu", metrics.cpu_percent, MAX_CPU_PERCENT, "%"))
    checks.append(_gate("memory", metrics.memory_percent, MAX_MEMORY_PERCENT, "%"))
    return checks


def allowed(checks: list[Check]) -> bool:
    """Forward only on evidence: a gate that could not be measured blocks like a failed one."""
    return all(c.status is Status.PASS for c in checks)


def _statistics(cloudwatch: Any, namespace: str, name: str, dimensions: dict[str, str], window: timedelta, **kwargs: Any) -> list[dict[str, Any]]:
    end = datetime.now(timezone.utc)
    response = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=end - window,
        EndTime=end,
        **kwargs,
    )
    return list(response.get("Datapoints", []))


def fetch_metrics(out: Outputs, aws: Aws, window: timedelta) -> Metrics:
    """Read the window's metrics; anything CloudWatch does not return becomes "not available"."""
    cloudwatch = aws.client("cloudwatch")
    alb = {
        "LoadBalancer": dimension_load_balancer(out.string(contract.LISTENER_ARN)),
        "TargetGroup": dimension_target_group(out.string(contract.TARGET_GROUP_ARN)),
    }
    ecs = {"ClusterName": out.string(contract.CLUSTER_NAME), "ServiceName": out.string(contract.SERVICE_NAME)}
    minute = 60
    whole = max(int(window.total_seconds()) // minute * minute, minute)

    def total(name: str) -> float | None:
        points = _statistics(cloudwatch, "AWS/ApplicationELB", name, alb, window, Period=minute, Statistics=["Sum"])
        return sum(p["Sum"] for p in points) if points else None

    def peak(name: str) -> Metric:
        points = _statistics(cloudwatch, "AWS/ECS", name, ecs, window, Period=minute, Statistics=["Average"])
        if not points:
            return Metric(None, f"no {name} datapoints for {ecs['ClusterName']}/{ecs['ServiceName']} in the window")
        return Metric(max(p["Average"] for p in points))

    requests = total("RequestCount")
    errors = total("HTTPCode_Target_5XX_Count") or 0.0
    if not requests:
        error_rate = Metric(None, "no RequestCount datapoints for the service's target group in the window")
    else:
        error_rate = Metric(100.0 * errors / requests)
    p95_points = _statistics(
        cloudwatch, "AWS/ApplicationELB", "TargetResponseTime", alb, window, Period=whole, ExtendedStatistics=["p95"]
    )
    p95_values = [p["ExtendedStatistics"]["p95"] for p in p95_points if "p95" in p.get("ExtendedStatistics", {})]
    p95 = Metric(max(p95_values) * 1000.0) if p95_values else Metric(None, "CloudWatch returned no p95 of TargetResponseTime for the window")
    return Metrics(Metric(requests, "" if requests else "no requests"), error_rate, p95, peak("CPUUtilization"), peak("MemoryUtilization"))


def run(out: Outputs, aws: Aws, invocation: Invocation, window_minutes: int) -> Report:
    out.require(*NEEDS)
    stack = invocation.stack
    monolith, service = out.string(contract.MONOLITH_TARGET_GROUP_ARN), out.string(contract.TARGET_GROUP_ARN)
    configured = out.integer(contract.CANARY_WEIGHT)
    rule = read_rule(aws.client("elbv2"), out.string(contract.LISTENER_RULE_ARN))
    live = rule.service_percent(service)
    report = Report()
    report.say(
        f"listener rule: monolith {rule.weight(monolith)} / service {rule.weight(service)} -> service gets {live}%",
        monolithWeight=rule.weight(monolith),
        serviceWeight=rule.weight(service),
        livePercent=live,
    )
    report.say(
        f"configured {CONFIG_KEY}: {configured}; window: last {window_minutes} minutes (hold each step {STEP_MINUTES} minutes)",
        configuredPercent=configured,
        windowMinutes=window_minutes,
        holdMinutes=STEP_MINUTES,
    )

    checks = [
        Check(
            "live weight == configured",
            Status.PASS if live == configured else Status.FAIL,
            f"live {live}%, configured {configured}%"
            + ("" if live == configured else f" (after a rollback: {deploy_command(stack, live)})"),
        )
    ]
    try:
        checks += gate_checks(live, fetch_metrics(out, aws, timedelta(minutes=window_minutes)))
    except ClientError as err:
        checks.append(Check("metrics", Status.FAIL, f"CloudWatch: {error_text(err)}"))
    for group in (target_health_checks, alarm_checks):
        try:
            checks += group(out, aws)
        except ClientError as err:
            checks.append(Check(group.__name__, Status.FAIL, error_text(err)))
    report.table("checks", CHECK_COLUMNS, records(checks))
    _next(report, invocation, out, live, checks)
    return report


def _next(report: Report, invocation: Invocation, out: Outputs, live: int, checks: list[Check]) -> None:
    """The verdict on the next step, and the commands for each way on: forward, back, or on to integrity."""
    upcoming = next_step(live)
    ok = allowed(checks)
    report.exit_code = EXIT_OK if ok else EXIT_FAILED
    blocking = [c.name for c in checks if c.status is not Status.PASS]
    if upcoming is None:
        report.say("canary complete: the service takes 100%; next the integrity check, then the end of migration.", nextPercent=None)
        report.suggest("compare the tables (SOURCE_DSN: the monolith database)", integrity_command(invocation, out))
        return
    report.say(
        f"next step: {live}% -> {upcoming}%: {'ALLOWED' if ok else 'NOT ALLOWED'}"
        + ("" if ok else f" (blocked by: {', '.join(blocking)})"),
        nextPercent=upcoming,
        allowed=ok,
        blockedBy=blocking,
    )
    report.suggest("move forward" if ok else "when they pass", deploy_command(invocation.stack, upcoming))
    if not ok:
        report.suggest("to go back instead", invocation.command("rollback", "--yes"))


def integrity_command(invocation: Invocation, out: Outputs) -> str:
    """`integrity` against the stack's database; the monolith's DSN is the operator's ($SOURCE_DSN)."""
    target = dsn(*(out.display(output) for output in (contract.DB_ADDRESS, contract.DB_PORT, contract.DB_NAME, contract.DB_USERNAME)))
    return f'{invocation.command("integrity", "--target", target)} --source "$SOURCE_DSN"'
