"""What the stack costs a month, estimated from the preview's recorded registrations (`python -m preview --cost`).

Every line comes from a registered resource's wire-format inputs (instance class, Multi-AZ, storage, task size,
desired and maximum task count, ...) times a price from the region's committed table (preview/prices.py), so a
config change shows up here before any deploy. Usage the inputs cannot know (log volume, request rate, image size)
comes from `ASSUMPTIONS`, printed with the estimate. A line marked "moved" is attributed to the stack but already
paid today (the monolith ALB's capacity for /api/tasks) and is left out of the totals. The seeds' own estimate
(seed 000: about $75.80 a month) is the baseline the difference is taken from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from preview import prices
from preview.engine import Recording, RecordedResource
from preview.prices import PriceTable
from preview.summary import cell
from task_service import contract
from task_service.naming import Naming, Role

HOURS = Decimal(730)
"""Hours in the average month AWS's calculator uses."""

SEED = {"RDS": Decimal("40"), "Fargate": Decimal("30"), "Secrets Manager": Decimal("0.80"), "CloudWatch": Decimal("5")}
"""Seed 000's estimate by service: $75.80 a month in all."""
SEED_TOTAL = sum(SEED.values(), Decimal(0))

ASSUMPTIONS: dict[str, Decimal] = {
    "log GB/month, service (/ecs/...)": Decimal("5"),
    "log GB/month, PostgreSQL log": Decimal("1"),
    "log GB/month, DMS task log (while it runs)": Decimal("2"),
    "log GB/month, Container Insights performance events": Decimal("1"),
    "log GB/month, each rotation function": Decimal("0.01"),
    "log GB/month, RDS enhanced monitoring at 60 s (RDSOSMetrics, scales with 60/interval)": Decimal("0.15"),
    "months of logs kept at the retention's steady state (storage counted for at most this)": Decimal("12"),
    "Container Insights metrics per ECS service": Decimal("20"),
    "requests per second on /api/tasks (seed 001's load)": Decimal("50"),
    "KB processed per request (request + response)": Decimal("10"),
    "rules on the monolith's listener besides ours": Decimal("2"),
    "GB of images kept in ECR (lifecycle keeps the last few)": Decimal("2"),
    "seconds per rotation Lambda invocation at 128 MB": Decimal("3"),
    "DMS events a month matched by each EventBridge rule": Decimal("100"),
}
"""Usage the recorded inputs cannot know. Edit here, not in the code below."""

ECR_GB = "GB of images kept in ECR (lifecycle keeps the last few)"
DMS_EVENTS = "DMS events a month matched by each EventBridge rule"
LOG_ROLES: dict[Role, str] = {
    Role.SERVICE_LOG_GROUP: "log GB/month, service (/ecs/...)",
    Role.DB_POSTGRESQL_LOG_GROUP: "log GB/month, PostgreSQL log",
    Role.DMS_TASK_LOG_GROUP: "log GB/month, DMS task log (while it runs)",
    Role.CONTAINER_INSIGHTS_LOG_GROUP: "log GB/month, Container Insights performance events",
    Role.MASTER_ROTATION_LOG_GROUP: "log GB/month, each rotation function",
    Role.APP_ROTATION_LOG_GROUP: "log GB/month, each rotation function",
}
FREE_RULE_EVALUATIONS = 10
"""An ALB's first 10 rules are not counted in its rule-evaluation LCU dimension."""
RULE_EVALUATIONS_PER_LCU = Decimal(1000)
GB_PER_LCU_HOUR = Decimal(1)
"""Processed bytes per LCU-hour for instance and IP targets."""


@dataclass(frozen=True)
class Line:
    component: str
    service: str
    """The seed's categories (RDS, Fargate, Secrets Manager, CloudWatch) or the service it belongs to."""
    item: str
    quantity: Decimal
    price_key: str
    unit_usd: Decimal
    moved: bool = False
    """Attributed to the stack but already paid before the change: shown, not totalled."""

    @property
    def monthly(self) -> Decimal:
        return self.quantity * self.unit_usd


@dataclass
class Estimate:
    stack: str
    lines: list[Line]
    at_max: list[Line]
    """The Fargate lines again, at the autoscaling maximum instead of the desired count."""
    table: PriceTable
    assumptions: dict[str, Decimal] = field(default_factory=lambda: dict(ASSUMPTIONS))

    @property
    def total(self) -> Decimal:
        return sum((line.monthly for line in self.lines if not line.moved), Decimal(0))

    @property
    def total_at_max(self) -> Decimal:
        fargate = sum((line.monthly for line in self.lines if line.service == "Fargate"), Decimal(0))
        return self.total - fargate + sum((line.monthly for line in self.at_max), Decimal(0))

    def by_service(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            if not line.moved:
                totals[line.service] = totals.get(line.service, Decimal(0)) + line.monthly
        return totals


class _Pricer:
    """Lines for one recording: the table, the components' names, and the stack's naming."""

    def __init__(self, recording: Recording, table: PriceTable):
        self.recording = recording
        self.table = table
        self.names = {r.urn: r.name for r in recording.resources if not r.custom}
        prefix = recording.outputs.get(contract.NAME_PREFIX.name)
        self.naming = Naming(prefix) if isinstance(prefix, str) else None

    def line(self, resource: RecordedResource, service: str, item: str, quantity: Decimal, key: str, moved: bool = False) -> Line:
        return Line(self.names.get(resource.parent, "stack"), service, item, quantity, key, self.table.usd(key), moved)

    def one(self, type_: str) -> RecordedResource | None:
        found = self.recording.by_type(type_)
        return found[0] if found else None


def _number(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    """A wire number (floats on the wire, text for ECS sizes), or `default` for unknowns and absent values."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return default
    try:
        return Decimal(str(value)).normalize()
    except ArithmeticError:
        return default


def _az(multi: Any) -> str:
    return "multi-az" if multi is True else "single-az"


def rds(p: _Pricer, r: RecordedResource) -> list[Line]:
    cls, az, storage = r.inputs.get("instanceClass"), _az(r.inputs.get("multiAz")), _number(r.inputs.get("allocatedStorage"))
    kind = str(r.inputs.get("storageType", "gp3"))
    lines = [
        p.line(r, "RDS", f"{cls} {az}", HOURS, f"rds:{cls}:{az}"),
        p.line(r, "RDS", f"{storage:f} GB {kind} {az}", storage, f"rds-storage:{kind}:{az}"),
    ]
    interval = _number(r.inputs.get("monitoringInterval"))
    if interval > 0:
        gb = ASSUMPTIONS["log GB/month, RDS enhanced monitoring at 60 s (RDSOSMetrics, scales with 60/interval)"] * 60 / interval
        lines.append(p.line(r, "CloudWatch", f"enhanced monitoring every {interval:f} s (RDSOSMetrics ingestion)", gb, "logs:ingested-gb"))
    return lines


def fargate(p: _Pricer, r: RecordedResource, count: Decimal, label: str) -> list[Line]:
    task = p.one("aws:ecs/taskDefinition:TaskDefinition")
    if task is None:
        return []
    vcpu, gb = _number(task.inputs.get("cpu")) / 1024, _number(task.inputs.get("memory")) / 1024
    return [
        p.line(r, "Fargate", f"{count:f} tasks x {vcpu:f} vCPU ({label})", count * vcpu * HOURS, "fargate:vcpu-hour"),
        p.line(r, "Fargate", f"{count:f} tasks x {gb:f} GB ({label})", count * gb * HOURS, "fargate:gb-hour"),
    ]


def service(p: _Pricer, r: RecordedResource) -> list[Line]:
    desired = _number(r.inputs.get("desiredCount"), Decimal(1))
    metrics = ASSUMPTIONS["Container Insights metrics per ECS service"]
    return fargate(p, r, desired, "desired count") + [
        p.line(r, "CloudWatch", f"Container Insights, {metrics:f} metrics", metrics, "cloudwatch:metric-month")
    ]


def alb_share(p: _Pricer, rules: list[RecordedResource]) -> list[Line]:
    """Our rules' evaluations beyond the free 10 (new), and /api/tasks's processed bytes (moved, not new)."""
    rps = ASSUMPTIONS["requests per second on /api/tasks (seed 001's load)"]
    beyond = max(len(rules) + int(ASSUMPTIONS["rules on the monolith's listener besides ours"]) - FREE_RULE_EVALUATIONS, 0)
    evaluation_lcu = Decimal(beyond) * rps / RULE_EVALUATIONS_PER_LCU
    gb_hour = rps * ASSUMPTIONS["KB processed per request (request + response)"] * 3600 / 1_000_000
    return [
        p.line(rules[0], "ALB", f"{len(rules)} listener rules: {beyond} beyond the free {FREE_RULE_EVALUATIONS}", evaluation_lcu * HOURS, "alb:lcu-hour"),
        p.line(rules[0], "ALB", f"/api/tasks processed bytes, {gb_hour:.2f} GB/h (paid by the monolith today)", gb_hour / GB_PER_LCU_HOUR * HOURS, "alb:lcu-hour", moved=True),
    ]


def dms(p: _Pricer, r: RecordedResource) -> list[Line]:
    cls, az, storage = r.inputs.get("replicationInstanceClass"), _az(r.inputs.get("multiAz")), _number(r.inputs.get("allocatedStorage"))
    return [
        p.line(r, "DMS", f"{cls} {az} (while the migration runs)", HOURS, f"dms:{cls}:{az}"),
        p.line(r, "DMS", f"{storage:f} GB storage {az}", storage, f"dms-storage:gp2:{az}"),
    ]


def alarm(p: _Pricer, r: RecordedResource) -> list[Line]:
    metrics = [q for q in r.inputs.get("metricQueries", []) if isinstance(q, dict) and "metric" in q] or [r.inputs]
    return [p.line(r, "CloudWatch", f"alarm {r.inputs.get('name', r.name)} ({len(metrics)} metric(s))", Decimal(len(metrics)), "cloudwatch:alarm-metric-month")]


def log_group(p: _Pricer, r: RecordedResource) -> list[Line]:
    name = r.inputs.get("name")
    role = next((role for role in LOG_ROLES if p.naming and p.naming.of(role) == name), None)
    if role is None:
        return []  # a group nothing writes to regularly (the RDS upgrade log): no line
    gb = ASSUMPTIONS[LOG_ROLES[role]]
    months = min(_number(r.inputs.get("retentionInDays"), Decimal(30)) / 30, ASSUMPTIONS["months of logs kept at the retention's steady state (storage counted for at most this)"])
    return [
        p.line(r, "CloudWatch", f"logs {name}: {gb:f} GB ingested", gb, "logs:ingested-gb"),
        p.line(r, "CloudWatch", f"logs {name}: {gb * months:.2f} GB stored", gb * months, "logs:stored-gb-month"),
    ]


def rotation(p: _Pricer, r: RecordedResource) -> list[Line]:
    """AWS's rotation function: 4 invocations per rotation (create, set, test, finish)."""
    days = _number(r.inputs.get("rotationRules", {}).get("automaticallyAfterDays"), Decimal(30))
    invocations = 4 * Decimal(30) / days
    seconds = ASSUMPTIONS["seconds per rotation Lambda invocation at 128 MB"]
    return [
        p.line(r, "Lambda", f"rotation every {days:f} days: {invocations:.1f} invocations", invocations, "lambda:request"),
        p.line(r, "Lambda", f"rotation every {days:f} days: {invocations * seconds * Decimal('0.125'):.2f} GB-s", invocations * seconds * Decimal("0.125"), "lambda:gb-second"),
    ]


def endpoint(p: _Pricer, r: RecordedResource) -> list[Line]:
    zones = Decimal(len(r.inputs.get("subnetIds", []) or [1, 1]))
    return [p.line(r, "VPC", f"interface endpoint {r.inputs.get('serviceName')} in {zones:f} AZs", zones * HOURS, "vpc-endpoint:az-hour")]


def _each(service_name: str, item: str, key: str) -> Callable[[_Pricer, RecordedResource], list[Line]]:
    return lambda p, r: [p.line(r, service_name, f"{item} {r.inputs.get('name', r.name)}", Decimal(1), key)]


PRICED: dict[str, Callable[[_Pricer, RecordedResource], list[Line]]] = {
    "aws:rds/instance:Instance": rds,
    "aws:ecs/service:Service": service,
    "aws:dms/replicationInstance:ReplicationInstance": dms,
    "aws:cloudwatch/metricAlarm:MetricAlarm": alarm,
    "aws:cloudwatch/logGroup:LogGroup": log_group,
    "aws:secretsmanager/secretRotation:SecretRotation": rotation,
    "aws:ec2/vpcEndpoint:VpcEndpoint": endpoint,
    "aws:cloudwatch/eventRule:EventRule": lambda p, r: [
        p.line(r, "EventBridge", f"rule {r.inputs.get('name', r.name)} on DMS's own events", ASSUMPTIONS[DMS_EVENTS], "events:aws-service-event")
    ],
    "aws:secretsmanager/secret:Secret": _each("Secrets Manager", "secret", "secretsmanager:secret-month"),
    "aws:cloudwatch/dashboard:Dashboard": lambda p, r: [p.line(r, "CloudWatch", f"dashboard {r.inputs.get('dashboardName')}", Decimal(1), "cloudwatch:dashboard-month")],
    "aws:kms/key:Key": lambda p, r: [p.line(r, "KMS", f"key {r.name}", Decimal(1), "kms:key-month")],
    "aws:ecr/repository:Repository": lambda p, r: [p.line(r, "ECR", "images kept", ASSUMPTIONS[ECR_GB], "ecr:gb-month")],
}
"""Resource types that cost money by themselves, or that the security work added (EventBridge rules, free); the rest
(roles, security groups, the alarm topic's few e-mails) cost nothing or a rounding error and are not listed."""


def estimate(recording: Recording, table: PriceTable) -> Estimate:
    p = _Pricer(recording, table)
    lines = [line for r in recording.resources for line in PRICED.get(r.type, lambda _p, _r: [])(p, r)]
    rules = recording.by_type("aws:lb/listenerRule:ListenerRule")
    if rules:
        lines += alb_share(p, rules)
    at_max: list[Line] = []
    target, svc = p.one("aws:appautoscaling/target:Target"), p.one("aws:ecs/service:Service")
    if target is not None and svc is not None:
        at_max = fargate(p, svc, _number(target.inputs.get("maxCapacity"), Decimal(1)), "autoscaling maximum")
    return Estimate(recording.stack, lines, at_max, table)


def for_recording(recording: Recording) -> Estimate:
    """The estimate with the price table of the stack's own region (PriceTableError when it has none)."""
    return estimate(recording, prices.load(str(recording.outputs.get(contract.REGION.name))))


def priced(recording: Recording) -> Estimate | prices.PriceTableError:
    """`for_recording`, or why the stack cannot be priced (the summary reports it, `--cost` fails on it)."""
    try:
        return for_recording(recording)
    except prices.PriceTableError as err:
        return err


def usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def _signed(difference: Decimal) -> str:
    return f"{'+' if difference >= 0 else '-'}{usd(abs(difference))}"


def seed_comparison(result: Estimate) -> list[tuple[str, Decimal | None, Decimal]]:
    """(service, seed's figure or None where the seed had none, this estimate) for every service either names."""
    mine = result.by_service()
    names = list(SEED) + sorted(set(mine) - set(SEED))
    return [(name, SEED.get(name), mine.get(name, Decimal(0))) for name in names]


def render(result: Estimate, write: Callable[[str], Any]) -> None:
    """The estimate as text: per component, totals, the seed's figures, assumptions, the price table's date."""
    write(f"\nCost (per month, USD, {result.table.region} on-demand; prices of {result.table.retrieved}):\n")
    components: dict[str, list[Line]] = {}
    for line in result.lines:
        components.setdefault(line.component, []).append(line)
    for component, lines in sorted(components.items()):
        subtotal = sum((line.monthly for line in lines if not line.moved), Decimal(0))
        write(f"    {component:<28} {usd(subtotal):>10}\n")
        for line in lines:
            mark = "  (moved, not counted)" if line.moved else ""
            write(f"        {line.item:<70} {usd(line.monthly):>10}{mark}\n")
    write(f"    {'total at the desired count':<28} {usd(result.total):>10}\n")
    write(f"    {'total at the autoscaling max':<28} {usd(result.total_at_max):>10}\n")
    write(f"    seed 000's estimate {usd(SEED_TOTAL)}: difference {_signed(result.total - SEED_TOTAL)}\n")
    for name, seed, mine in seed_comparison(result):
        write(f"        {name:<20} seed {usd(seed) if seed is not None else '   -':>8}  now {usd(mine):>9}\n")
    write("    Assumptions (preview/cost.py ASSUMPTIONS):\n")
    for name, value in result.assumptions.items():
        write(f"        {name}: {value:f}\n")
    write(f"    Prices: {result.table.path.name}, retrieved {result.table.retrieved}. {result.table.source}\n")


def as_json(result: Estimate) -> dict[str, Any]:
    def row(line: Line) -> dict[str, Any]:
        return {"component": line.component, "service": line.service, "item": line.item, "quantity": str(line.quantity),
                "priceKey": line.price_key, "unitUsd": str(line.unit_usd), "monthlyUsd": str(line.monthly), "moved": line.moved}

    return {
        "region": result.table.region,
        "pricesRetrieved": result.table.retrieved,
        "pricesSource": result.table.source,
        "lines": [row(line) for line in result.lines],
        "atAutoscalingMax": [row(line) for line in result.at_max],
        "totalUsd": str(result.total),
        "totalAtMaxUsd": str(result.total_at_max),
        "seed": {name: str(value) for name, value in SEED.items()},
        "differenceFromSeedUsd": str(result.total - SEED_TOTAL),
        "assumptions": {k: str(v) for k, v in result.assumptions.items()},
    }


def summary_section(result: Estimate | prices.PriceTableError) -> str:
    """The PR summary's cost section (Markdown): totals, the seed's figures by service, the biggest lines, the prices' date.

    A stack the table cannot price gets the reason instead: the summary never fails the preview.
    """
    if isinstance(result, prices.PriceTableError):
        return f"\n#### Cost\n\nNot estimated: {result}\n"
    lines = [
        "",
        "#### Cost",
        "",
        f"About **{usd(result.total)} a month** at the desired task count, {usd(result.total_at_max)} at the autoscaling maximum "
        f"({result.table.region}, on demand, prices of {result.table.retrieved}); seed 000 estimated {usd(SEED_TOTAL)}: "
        f"{_signed(result.total - SEED_TOTAL)}.",
        "",
        "| service | seed 000 | this stack |",
        "|---|---|---|",
        *(f"| {name} | {usd(seed) if seed is not None else '-'} | {usd(mine)} |" for name, seed, mine in seed_comparison(result)),
        "",
        f"<details><summary>{len(result.lines)} lines, assumptions and the price table</summary>",
        "",
        "| component | item | per month |",
        "|---|---|---|",
        *(f"| `{line.component}` | {cell(line.item)}{' (moved, not counted)' if line.moved else ''} | {usd(line.monthly)} |" for line in result.lines),
        "",
        "Assumptions (`ASSUMPTIONS` in preview/cost.py): " + "; ".join(f"{name}: {value:f}" for name, value in result.assumptions.items()) + ".",
        "",
        f"Prices: `{result.table.path.name}`, retrieved {result.table.retrieved}. {cell(result.table.source)}",
        "",
        "</details>",
    ]
    return "\n".join(lines) + "\n"
