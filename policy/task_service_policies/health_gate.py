"""The canary's health gate: may the weight rise above the live step? One module for the pack and the runbook.

`alb-canary-health-gate` (canary_gate.py) asks it at deploy time; `python -m runbook canary status|watch` asks it
from an operator's shell (runbook/pack.py imports it by this module's own name). It imports neither pulumi-policy
nor anything outside the pack, so the pack stays publishable alone, and the thresholds live here once: `SCHEMA`'s
defaults are the pack's config defaults, and the runbook overlays the same `policy/config/<stack>.json`.

What it reads, all through clients the caller builds (with the caller's timeouts):
- at the first step (live 0%): the canary target group's target health, the stack's alarms by exact name, and
  the load-test result parameter;
- above 0%: per minute over the soak window, RequestCount of the canary and of the rule's other groups (the soak:
  the canary's share must match the live weight in every minute), its 5xx count and TargetResponseTime p50/p95
  (ALB), CPU and memory of the ECS service, and the alarms.

No timestamp is kept anywhere: the soak is read back from CloudWatch, so a raise five minutes ago shows as five
minutes of soak. Every answer becomes a `Finding`; AWS refusing a call becomes a finding naming the permission;
AWS being unreachable (no credentials, no endpoint) raises `Unreachable`, which the pack reports as not
applicable and the runbook as bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

POLICY_NAME = "alb-canary-health-gate"

SCHEMA: dict[str, dict[str, Any]] = {
    "soakMinutes": {
        "type": "integer", "minimum": 1, "maximum": 1440, "default": 30,
        "description": "Minutes the canary must have served its live share before the weight may rise (seed 001: 30).",
    },
    "shareTolerancePercent": {
        "type": "number", "minimum": 0, "maximum": 50, "default": 2.0,
        "description": "How far, in percentage points, a minute's measured canary share may be from the live weight.",
    },
    "metricLagMinutes": {
        "type": "integer", "minimum": 0, "maximum": 15, "default": 2,
        "description": "The newest minutes left out of the window: CloudWatch has not published them completely yet.",
    },
    "maxErrorRatePercent": {
        "type": "number", "minimum": 0, "maximum": 100, "default": 1.0,
        "description": "The canary's 5xx responses over the window must stay below this share of its requests.",
    },
    "maxP50Ms": {
        "type": "number", "minimum": 0, "default": 200.0,
        "description": "TargetResponseTime p50 over the window must stay below this, in milliseconds.",
    },
    "maxP95Ms": {
        "type": "number", "minimum": 0, "default": 500.0,
        "description": "TargetResponseTime p95 over the window must stay below this, in milliseconds.",
    },
    "maxCpuPercent": {
        "type": "number", "minimum": 0, "maximum": 100, "default": 70.0,
        "description": "The ECS service's CPUUtilization (1-minute averages) must stay below this in every minute.",
    },
    "maxMemoryPercent": {
        "type": "number", "minimum": 0, "maximum": 100, "default": 80.0,
        "description": "The ECS service's MemoryUtilization (1-minute averages) must stay below this in every minute.",
    },
    "requireLoadTest": {
        "type": "boolean", "default": False,
        "description": "At the first step, a missing load-test result blocks (an existing one must pass either way).",
    },
    "loadTestMaxAgeHours": {
        "type": "number", "minimum": 0, "default": 24,
        "description": "At the first step, a load-test result older than this blocks.",
    },
}

MAX_ALARM_NAMES = 100  # DescribeAlarms accepts at most 100 names per call
MAX_PAGES = 20  # GetMetricData pages read at most (the window needs one)
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
REFUSED_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
                       "SignatureDoesNotMatch", "AuthFailure"}


@dataclass(frozen=True)
class Thresholds:
    """The gate's numbers, from `SCHEMA`'s defaults overlaid by a stack's policy config."""

    soak_minutes: int
    share_tolerance: float
    lag_minutes: int
    max_error_rate: float
    max_p50_ms: float
    max_p95_ms: float
    max_cpu: float
    max_memory: float
    require_load_test: bool
    load_test_max_age_hours: float

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]] = None) -> "Thresholds":
        merged = {key: spec["default"] for key, spec in SCHEMA.items()}
        merged.update({key: value for key, value in (config or {}).items() if key in SCHEMA})
        return cls(
            soak_minutes=int(merged["soakMinutes"]),
            share_tolerance=float(merged["shareTolerancePercent"]),
            lag_minutes=int(merged["metricLagMinutes"]),
            max_error_rate=float(merged["maxErrorRatePercent"]),
            max_p50_ms=float(merged["maxP50Ms"]),
            max_p95_ms=float(merged["maxP95Ms"]),
            max_cpu=float(merged["maxCpuPercent"]),
            max_memory=float(merged["maxMemoryPercent"]),
            require_load_test=bool(merged["requireLoadTest"]),
            load_test_max_age_hours=float(merged["loadTestMaxAgeHours"]),
        )


@dataclass(frozen=True)
class Subject:
    """What the gate looks at, by the names CloudWatch, ELB and SSM use."""

    load_balancer: str
    """CloudWatch's LoadBalancer dimension, `app/<name>/<id>`."""
    canary_group_arn: str
    baseline_group_arns: tuple[str, ...]
    """The rule's other target groups (the monolith)."""
    cluster: str
    service: str
    alarm_names: tuple[str, ...]
    load_test_parameter: Optional[str]

    @property
    def canary_group(self) -> str:
        return group_dimension(self.canary_group_arn)


class Outcome(Enum):
    PASS = "pass"
    BREACH = "breach"  # measured over a threshold, or an alarm firing: what `canary watch` rolls back on
    MISSING = "missing"  # no data to judge by: blocks, but is not a breach
    WAIT = "wait"  # healthy so far, not long enough (soak, targets still registering)
    ERROR = "error"  # AWS refused the call or answered something unusable


@dataclass(frozen=True)
class Finding:
    gate: str
    outcome: Outcome
    detail: str
    minutes: Optional[int] = None  # the soak's: minutes served at the live weight so far

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.PASS


class Unreachable(Exception):
    """AWS cannot be asked at all (no credentials, endpoint unreachable); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Denied(Exception):
    """AWS refused the identity: `permission` is the IAM action the call needs."""

    def __init__(self, permission: str, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.permission = permission
        self.code = code


Client = Callable[[str], Any]
"""`client("cloudwatch")` -> a boto3 client; the caller decides timeouts and retries."""


def group_dimension(target_group_arn: str) -> str:
    """CloudWatch's TargetGroup dimension: the `targetgroup/<name>/<id>` tail of the ARN."""
    return target_group_arn.split(":", 5)[-1]


def load_balancer_dimension(listener_arn: str) -> str:
    """CloudWatch's LoadBalancer dimension, `app/<name>/<id>`, from a listener ARN (ValueError if it is not one)."""
    parts = listener_arn.split(":", 5)[-1].split("/")
    if len(parts) < 4 or parts[0] != "listener":
        raise ValueError(f"{listener_arn} is not an ALB listener ARN (...:listener/app/<name>/<id>/<id>)")
    return "/".join(parts[1:4])


def call(client: Any, operation: str, permission: str, **kwargs: Any) -> Any:
    """One AWS call, its failures sorted into Denied (blocks), Unreachable (not applicable) and ClientError."""
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as err:
        error = err.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ACCESS_DENIED or code in REFUSED_CREDENTIALS or status == 403:
            raise Denied(permission, code if not code.isdigit() else f"HTTP {code}", message) from err
        raise
    except (NoCredentialsError, PartialCredentialsError) as err:
        raise Unreachable(f"no AWS credentials ({type(err).__name__})") from err
    except BotoCoreError as err:
        raise Unreachable(f"{type(err).__name__}: {err}") from err


def _denied(gate: str, err: Denied) -> Finding:
    return Finding(gate, Outcome.ERROR, f"AWS refused {err.permission} ({err.code}): grant it to this identity")


def _refused(gate: str, err: ClientError) -> Finding:
    error = err.response.get("Error", {})
    return Finding(gate, Outcome.ERROR, f"AWS answered {error.get('Code', 'an error')}: {error.get('Message', err)}")


# the window: per-minute requests, errors and utilisation; one p50/p95 over the whole window

@dataclass(frozen=True)
class Window:
    """CloudWatch's answers for [start, end), by query id and minute."""

    start: datetime
    end: datetime
    series: Mapping[str, Mapping[datetime, float]]

    def minutes(self) -> list[datetime]:
        """Newest first."""
        count = int((self.end - self.start).total_seconds() // 60)
        return [self.end - timedelta(minutes=i + 1) for i in range(count)]

    def total(self, prefix: str, minute: datetime) -> Optional[float]:
        """The sum of every series whose id starts with `prefix` at `minute`, None when none has a datapoint."""
        values = [s[minute] for key, s in self.series.items() if key.startswith(prefix) and minute in s]
        return sum(values) if values else None


def window_bounds(thresholds: Thresholds, now: datetime) -> tuple[datetime, datetime]:
    end = now.astimezone(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=thresholds.lag_minutes)
    return end - timedelta(minutes=thresholds.soak_minutes), end


def _stat(query_id: str, namespace: str, metric: str, dimensions: Mapping[str, str], period: int,
          stat: str) -> dict[str, Any]:
    return {
        "Id": query_id,
        "ReturnData": True,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": period,
            "Stat": stat,
        },
    }


def metric_queries(subject: Subject, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The GetMetricData queries of one window (ids: canary, base0.., errors, p50, p95, cpu, memory)."""
    alb = "AWS/ApplicationELB"
    canary = {"LoadBalancer": subject.load_balancer, "TargetGroup": subject.canary_group}
    ecs = {"ClusterName": subject.cluster, "ServiceName": subject.service}
    whole = thresholds.soak_minutes * 60
    queries = [_stat("canary", alb, "RequestCount", canary, 60, "Sum")]
    queries += [_stat(f"base{i}", alb, "RequestCount",
                      {"LoadBalancer": subject.load_balancer, "TargetGroup": group_dimension(arn)}, 60, "Sum")
                for i, arn in enumerate(subject.baseline_group_arns)]
    queries += [
        _stat("errors", alb, "HTTPCode_Target_5XX_Count", canary, 60, "Sum"),
        _stat("p50", alb, "TargetResponseTime", canary, whole, "p50"),
        _stat("p95", alb, "TargetResponseTime", canary, whole, "p95"),
        _stat("cpu", "AWS/ECS", "CPUUtilization", ecs, 60, "Average"),
        _stat("memory", "AWS/ECS", "MemoryUtilization", ecs, 60, "Average"),
    ]
    return queries


def parse_results(results: Sequence[Mapping[str, Any]], into: dict[str, dict[datetime, float]]) -> None:
    """Add GetMetricData's MetricDataResults (any order, any page) to `into`, by id and UTC timestamp."""
    for result in results:
        series = into.setdefault(str(result["Id"]), {})
        for stamp, value in zip(result.get("Timestamps", []), result.get("Values", [])):
            if value is not None:
                series[stamp.astimezone(timezone.utc)] = float(value)


def read_window(cloudwatch: Any, subject: Subject, thresholds: Thresholds, now: datetime) -> Window:
    start, end = window_bounds(thresholds, now)
    kwargs: dict[str, Any] = {"MetricDataQueries": metric_queries(subject, thresholds), "StartTime": start,
                              "EndTime": end, "ScanBy": "TimestampDescending"}
    series: dict[str, dict[datetime, float]] = {}
    for _ in range(MAX_PAGES):
        page = call(cloudwatch, "get_metric_data", "cloudwatch:GetMetricData", **kwargs)
        parse_results(page.get("MetricDataResults", []), series)
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return Window(start, end, series)


def _clock(minute: datetime) -> str:
    return minute.strftime("%H:%M UTC")


def _pct(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def soak_streak(window: Window, weight: float, tolerance: float) -> tuple[int, str]:
    """Consecutive newest minutes in which the canary's share matched `weight`, and what ended the streak."""
    streak = 0
    for minute in window.minutes():
        canary, baseline = window.total("canary", minute), window.total("base", minute)
        if canary is None and baseline is None:
            return streak, f"no RequestCount datapoint for {_clock(minute)}"
        total = (canary or 0.0) + (baseline or 0.0)
        share = 100.0 * (canary or 0.0) / total if total else 0.0
        if abs(share - weight) > tolerance:
            return streak, f"at {_clock(minute)} the canary took {_pct(share)}% of requests, not {_pct(weight)}%"
        streak += 1
    return streak, ""


def soak_finding(window: Window, weight: float, thresholds: Thresholds) -> Finding:
    streak, reason = soak_streak(window, weight, thresholds.share_tolerance)
    done = f"{streak} of {thresholds.soak_minutes} minutes at {_pct(weight)}%"
    if streak >= thresholds.soak_minutes:
        return Finding("soak", Outcome.PASS, done, streak)
    if streak == 0 and reason.startswith("no "):
        return Finding("soak", Outcome.MISSING, f"{done}: {reason} (missing data)", streak)
    return Finding("soak", Outcome.WAIT, f"{done} ({reason})", streak)


def _limit(gate: str, value: Optional[float], limit: float, unit: str, missing: str, how: str = "") -> Finding:
    """Strictly below the limit passes (seed 001: error rate < 1%, p95 < 500 ms, ...)."""
    if value is None:
        return Finding(gate, Outcome.MISSING, f"{missing} (missing data)")
    shown = f"{_pct(value)}{unit}{how} (gate < {_pct(limit)}{unit})"
    return Finding(gate, Outcome.PASS if value < limit else Outcome.BREACH, shown)


def traffic_findings(window: Window, subject: Subject, thresholds: Thresholds) -> list[Finding]:
    """5xx rate, p50, p95, CPU and memory over the window."""
    requests = sum(window.series.get("canary", {}).values())
    errors = sum(window.series.get("errors", {}).values())  # ALB reports HTTPCode counts only when nonzero
    rate = 100.0 * errors / requests if requests else None
    group = subject.canary_group

    def single(key: str) -> Optional[float]:
        values = list(window.series.get(key, {}).values())
        return max(values) * 1000.0 if values else None

    def peak(key: str) -> Optional[float]:
        values = list(window.series.get(key, {}).values())
        return max(values) if values else None

    service = f"{subject.cluster}/{subject.service}"
    return [
        _limit("error rate", rate, thresholds.max_error_rate, "%", f"no RequestCount for {group} in the window",
               f" of {int(requests)} requests"),
        _limit("p50 latency", single("p50"), thresholds.max_p50_ms, " ms",
               f"CloudWatch returned no TargetResponseTime p50 for {group}"),
        _limit("p95 latency", single("p95"), thresholds.max_p95_ms, " ms",
               f"CloudWatch returned no TargetResponseTime p95 for {group}"),
        _limit("cpu", peak("cpu"), thresholds.max_cpu, "%", f"no CPUUtilization for ECS service {service}",
               " peak"),
        _limit("memory", peak("memory"), thresholds.max_memory, "%",
               f"no MemoryUtilization for ECS service {service}", " peak"),
    ]


# alarms, targets, load test

def alarm_name_batches(names: Sequence[str]) -> Iterator[list[str]]:
    """`names` in DescribeAlarms-sized batches (the runbook's verify batches the same way)."""
    for start in range(0, len(names), MAX_ALARM_NAMES):
        yield list(names[start:start + MAX_ALARM_NAMES])


def alarm_findings(cloudwatch: Any, names: Sequence[str]) -> list[Finding]:
    """This stack's alarms by exact name (another stack's alarms sharing a prefix are not asked about)."""
    if not names:
        return [Finding("alarms", Outcome.MISSING, "no alarm names to check (missing data)")]
    states: dict[str, str] = {}
    for chunk in alarm_name_batches(names):
        kwargs: dict[str, Any] = {"AlarmNames": chunk, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
        for _ in range(MAX_PAGES):
            page = call(cloudwatch, "describe_alarms", "cloudwatch:DescribeAlarms", **kwargs)
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    firing = sorted(name for name in names if states.get(name) == "ALARM")
    absent = sorted(name for name in names if name not in states)
    findings = []
    if firing:
        findings.append(Finding("alarms", Outcome.BREACH, f"in ALARM: {', '.join(firing)}"))
    if absent:
        findings.append(Finding("alarms exist", Outcome.MISSING,
                                f"no such alarm: {', '.join(absent)} (cannot tell it is not firing)"))
    if not findings:
        findings.append(Finding("alarms", Outcome.PASS, f"none of {len(names)} in ALARM"))
    return findings


def target_finding(elbv2: Any, target_group_arn: str) -> Finding:
    """Every registered target of the canary group healthy, and at least one."""
    answer = call(elbv2, "describe_target_health", "elasticloadbalancing:DescribeTargetHealth",
                  TargetGroupArn=target_group_arn)
    states = [d["TargetHealth"]["State"] for d in answer.get("TargetHealthDescriptions", [])]
    group = group_dimension(target_group_arn)
    healthy = states.count("healthy")
    if not states:
        return Finding("targets", Outcome.MISSING, f"no targets registered in {group} (missing data)")
    detail = f"{healthy}/{len(states)} healthy in {group}"
    if healthy == len(states):
        return Finding("targets", Outcome.PASS, detail)
    others = ", ".join(sorted(set(states) - {"healthy"}))
    return Finding("targets", Outcome.BREACH if "unhealthy" in states else Outcome.WAIT, f"{detail} ({others})")


def _parse_time(text: Any) -> Optional[datetime]:
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.astimezone(timezone.utc) if stamp.tzinfo else None


def judge_load_test(text: str, name: str, thresholds: Thresholds, now: datetime) -> Finding:
    """A result written by the load test: JSON with passed, finishedAt (ISO-8601 UTC), p95Ms, errorRatePercent."""
    try:
        result = json.loads(text)
    except ValueError:
        result = None
    finished = _parse_time(result.get("finishedAt")) if isinstance(result, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("passed"), bool) or finished is None:
        return Finding("load test", Outcome.ERROR,
                       f"{name} is not a load-test result (JSON with passed and finishedAt as ISO-8601 UTC)")
    numbers = ", ".join(f"{key} {result[key]}" for key in ("p95Ms", "errorRatePercent", "requests") if key in result)
    age = now.astimezone(timezone.utc) - finished
    when = f"finished {finished:%Y-%m-%d %H:%M} UTC" + (f"; {numbers}" if numbers else "")
    if age < timedelta(minutes=-5):
        return Finding("load test", Outcome.ERROR, f"{name}: {when}, which is in the future")
    if not result["passed"]:
        return Finding("load test", Outcome.BREACH, f"the last load test failed ({when})")
    if age > timedelta(hours=thresholds.load_test_max_age_hours):
        return Finding("load test", Outcome.MISSING,
                       f"the last passing load test is older than {_pct(thresholds.load_test_max_age_hours)} h "
                       f"({when}): run it again")
    return Finding("load test", Outcome.PASS, f"passed ({when})")


def load_test_finding(ssm: Any, name: Optional[str], thresholds: Thresholds, now: datetime) -> Finding:
    if not name:
        return Finding("load test", Outcome.PASS, "no load-test parameter configured")
    try:
        answer = call(ssm, "get_parameter", "ssm:GetParameter", Name=name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
        if thresholds.require_load_test:
            return Finding("load test", Outcome.MISSING, f"no load-test result at {name} (requireLoadTest)")
        return Finding("load test", Outcome.PASS, f"no load-test result at {name}; not required")
    return judge_load_test(str(answer["Parameter"]["Value"]), name, thresholds, now)


# the gate

def _guarded(gate: str, read: Callable[[], list[Finding]]) -> list[Finding]:
    """A refused or failed read is that gate's finding; only Unreachable escapes."""
    try:
        return read()
    except Denied as err:
        return [_denied(gate, err)]
    except ClientError as err:
        return [_refused(gate, err)]


def first_step(client: Client, subject: Subject, thresholds: Thresholds, now: datetime) -> list[Finding]:
    """0% live: nothing to soak; the canary's targets must be healthy, no alarm firing, the load test passed."""
    return [
        *_guarded("targets", lambda: [target_finding(client("elbv2"), subject.canary_group_arn)]),
        *_guarded("alarms", lambda: alarm_findings(client("cloudwatch"), subject.alarm_names)),
        *_guarded("load test", lambda: [load_test_finding(client("ssm"), subject.load_test_parameter, thresholds, now)]),
    ]


def soaked_step(client: Client, subject: Subject, thresholds: Thresholds, weight: float,
                now: datetime) -> list[Finding]:
    """Above 0%: the soak at `weight`, the traffic gates over the window, and no alarm firing."""
    def window() -> list[Finding]:
        read = read_window(client("cloudwatch"), subject, thresholds, now)
        return [soak_finding(read, weight, thresholds), *traffic_findings(read, subject, thresholds)]

    return [*_guarded("metrics", window),
            *_guarded("alarms", lambda: alarm_findings(client("cloudwatch"), subject.alarm_names))]


def evaluate(client: Client, subject: Subject, thresholds: Thresholds, live_weight: float,
             now: Optional[datetime] = None) -> list[Finding]:
    """The findings that decide whether the weight may rise from `live_weight` (every one must pass)."""
    at = now or datetime.now(timezone.utc)
    if live_weight <= 0:
        return first_step(client, subject, thresholds, at)
    return soaked_step(client, subject, thresholds, live_weight, at)


def passed(findings: Sequence[Finding]) -> bool:
    """Forward only on evidence: missing data blocks like a failed gate."""
    return bool(findings) and all(f.ok for f in findings)
