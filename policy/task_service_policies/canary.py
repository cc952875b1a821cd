"""The weighted-routing canary: valid splits, one step up at a time, and guardrails before any traffic moves.

Convention (see policy/README.md): the listener rule carries a tag, `CanaryTargetGroup` by default, whose value
is the canary target group's *name*. A forward target whose ARN `...:targetgroup/<name>/<hash>` has that name is
the canary. Without the tag, the first name matching `canaryNamePattern` is. If no known ARN matches and exactly
one ARN is unknown (preview of a new stack), the unknown one is the canary: it is the group being created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError

from . import live
from .common import (
    ECS_SERVICE,
    LISTENER_RULE,
    METRIC_ALARM,
    TARGET_GROUP,
    as_list,
    as_number,
    dig,
    fmt_number,
    is_set,
    is_type,
    known_or,
    resource_policy,
    stack_policy,
)

Report = Callable[[str], None]

_TG_NAME = re.compile(r":targetgroup/([^/]+)/")

CANARY_SCHEMA: dict[str, dict[str, Any]] = {
    "allowedSteps": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 100},
        "default": [0, 5, 25, 50, 100],
        "description": "Canary weights (percent to the new service) that may be deployed, in rollout order.",
    },
    "canaryTagKey": {
        "type": "string",
        "default": "CanaryTargetGroup",
        "description": "Listener-rule tag whose value is the canary target group's name.",
    },
    "canaryNamePattern": {
        "type": "string",
        "default": "^task-service-tg$",
        "description": "Regex on target group names that marks the canary when the rule has no canary tag.",
    },
}


class _Unresolved(Exception):
    """The split cannot be evaluated; `message` says why."""


@dataclass(frozen=True)
class Split:
    """A forward action that divides traffic between target groups."""

    arns: tuple[Optional[str], ...]  # None where the ARN is unknown during preview
    weights: tuple[Optional[float], ...]
    canary: Optional[int]  # index of the canary target, None when it cannot be told
    canary_name: Optional[str]
    unknown: Optional[UnknownValueError]  # kept to re-raise when the unknown ARN is what blocks identification

    @property
    def canary_weight(self) -> Optional[float]:
        return None if self.canary is None else self.weights[self.canary]


def target_group_name(arn: Optional[str]) -> Optional[str]:
    match = _TG_NAME.search(arn or "")
    return match.group(1) if match else None


def rule_tags(props: Mapping[str, Any]) -> dict[str, Any]:
    """`tags` over `tagsAll` (the provider's default tags, present once the provider has checked the inputs)."""
    merged: dict[str, Any] = {}
    for key in ("tagsAll", "tags"):
        try:
            value = props.get(key)
        except UnknownValueError:
            continue
        if isinstance(value, Mapping):
            for tag in value:
                try:
                    merged[tag] = value[tag]
                except UnknownValueError:
                    continue
    return merged


def identify_canary(arns: Sequence[Optional[str]], tag_name: Optional[str], pattern: str) -> Optional[int]:
    names = [target_group_name(a) for a in arns]
    if tag_name:
        matches = [i for i, n in enumerate(names) if n == tag_name]
    else:
        matches = [i for i, n in enumerate(names) if n and re.search(pattern, n)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        return None
    unknown = [i for i, a in enumerate(arns) if a is None]
    return unknown[0] if len(unknown) == 1 else None


def forward_splits(props: Mapping[str, Any]) -> list[list[Any]]:
    """The target lists of forward actions naming more than one target group."""
    out = []
    for action in as_list(props.get("actions")):
        groups = as_list(dig(action, "forward", "targetGroups"))
        if len(groups) > 1:
            out.append(groups)
    return out


def read_split(props: Mapping[str, Any], groups: list[Any], cfg: Mapping[str, Any]) -> Split:
    arns: list[Optional[str]] = []
    unknown: Optional[UnknownValueError] = None
    for group in groups:
        try:
            arns.append(dig(group, "arn"))
        except UnknownValueError as err:
            arns.append(None)
            unknown = unknown or err
    weights = tuple(as_number(dig(group, "weight")) for group in groups)
    tag_name = rule_tags(props).get(cfg["canaryTagKey"]) or None
    canary = identify_canary(arns, tag_name, cfg["canaryNamePattern"])
    name = tag_name
    if canary is not None and not name:
        name = target_group_name(arns[canary])
    return Split(tuple(arns), weights, canary, name, unknown)


def _steps(cfg: Mapping[str, Any]) -> list[float]:
    return sorted({float(s) for s in cfg["allowedSteps"]})


def _require_canary(split: Split, cfg: Mapping[str, Any]) -> int:
    if split.canary is not None:
        return split.canary
    if split.unknown is not None:
        # Which group is new depends on values only the update will know: the engine's advisory path says so.
        raise split.unknown
    raise _Unresolved(
        f"cannot tell which target group is the canary: tag the rule with {cfg['canaryTagKey']}=<canary target "
        f"group name>, or name it to match {cfg['canaryNamePattern']!r}")


def _check_weights(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    steps = _steps(cfg)
    for groups in forward_splits(args.props):
        if len(groups) != 2:
            report(f"the forward action names {len(groups)} target groups; a canary split names exactly two "
                   "(the monolith and the new service).")
            continue
        split = read_split(args.props, groups, cfg)
        if any(w is None for w in split.weights):
            report("every target group in the split needs an explicit weight.")
            continue
        weights = [w for w in split.weights if w is not None]
        if any(not w.is_integer() for w in weights):
            report(f"weights {', '.join(fmt_number(w) for w in weights)} are not whole numbers.")
            continue
        if sum(weights) != 100:
            report(f"weights {' + '.join(fmt_number(w) for w in weights)} = {fmt_number(sum(weights))}; "
                   "they must sum to 100 so each weight reads as a percentage.")
        try:
            canary = _require_canary(split, cfg)
        except _Unresolved as err:
            report(str(err))
            continue
        weight = weights[canary]
        if weight not in steps:
            report(f"the canary '{split.canary_name}' gets {fmt_number(weight)}%, which is not an allowed step "
                   f"({', '.join(fmt_number(s) for s in steps)}).")


def _live_canary_weight(rule: live.LiveRule, split: Split, cfg: Mapping[str, Any]) -> float:
    """The canary's live share in percent; a canary group absent from the live rule gets nothing yet."""
    total = sum(w for _, w in rule.targets)
    if total <= 0:
        return 0.0
    tag_name = rule.tags.get(cfg["canaryTagKey"]) or split.canary_name
    arns = [arn for arn, _ in rule.targets]
    index = identify_canary(arns, tag_name, cfg["canaryNamePattern"])
    if index is None:
        return 0.0
    return rule.targets[index][1] * 100.0 / total


def _skip(args: ResourceValidationArgs, reason: str) -> NoReturn:
    """Report the policy as not applicable (the SDK raises to do so)."""
    args.not_applicable(reason)
    raise AssertionError("not_applicable() returned")


def _check_progression(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if not cfg["readLiveState"]:
        _skip(args, "live state reading is switched off (readLiveState=false); progression unchecked")
    splits = forward_splits(props)
    if len(splits) != 1 or len(splits[0]) != 2:
        _skip(args, "the rule has no two-way weighted forward action to progress")
    split = read_split(props, splits[0], cfg)
    try:
        canary = _require_canary(split, cfg)
    except _Unresolved as err:
        _skip(args, f"{err} (alb-canary-weights reports this)")
    desired = split.weights[canary]
    if desired is None:
        _skip(args, "the canary weight is not set (alb-canary-weights reports this)")
    try:
        listener_arn = props.get("listenerArn")
        priority = as_number(props.get("priority"))
    except UnknownValueError as err:
        _skip(args, f"the live weight cannot be read: {err.message}")
    if not listener_arn or priority is None:
        _skip(args, "the rule has no listenerArn or priority to look the live rule up by")
    try:
        current = live.read_live_rule(listener_arn, int(priority), float(cfg["liveTimeoutSeconds"]))
    except live.LiveStateUnavailable as err:
        _skip(args, f"the live weight cannot be read ({err.reason}); progression unchecked")

    steps = _steps(cfg)
    if current is None:
        first = next((s for s in steps if s > 0), 0.0)
        if desired not in (0.0, first):
            report(f"no rule is live at priority {fmt_number(priority)} on the listener, so the canary must start "
                   f"at 0 or {fmt_number(first)}%, not {fmt_number(desired)}%.")
        return
    now = _live_canary_weight(current, split, cfg)
    if desired <= now:
        return
    upper = [s for s in steps if s > now]
    allowed = upper[0] if upper else 100.0
    if desired != allowed:
        report(f"the canary is live at {fmt_number(round(now, 2))}%; it may rise one step at a time, to "
               f"{fmt_number(allowed)}%, not {fmt_number(desired)}%.")


def _alarm_metrics(alarm: PolicyResource) -> list[tuple[Any, Any]]:
    """(metric name, statistic) pairs an alarm watches, top-level or inside metricQueries."""
    props = alarm.props
    pairs = [(props.get("metricName"), props.get("extendedStatistic") or props.get("statistic"))]
    for query in as_list(props.get("metricQueries")):
        metric = dig(query, "metric")
        if metric is not None:
            pairs.append((dig(metric, "metricName"), dig(metric, "stat")))
    return [(m, s) for m, s in pairs if m]


def _alarm_notifies(alarm: PolicyResource) -> bool:
    return known_or(alarm.props, "actionsEnabled") is not False and is_set(alarm.props, "alarmActions")


def _resource_name(resource: PolicyResource) -> str:
    try:
        explicit = resource.props.get("name")
    except UnknownValueError:
        explicit = None
    return explicit or resource.name


def _check_guardrails(args: StackValidationArgs, cfg: Mapping[str, Any],
                      report: Callable[[str, Optional[str]], None]) -> None:
    resources = args.resources
    for rule in [r for r in resources if is_type(r.resource_type, LISTENER_RULE)]:
        for groups in forward_splits(rule.props):
            if len(groups) != 2:
                continue
            split = read_split(rule.props, groups, cfg)
            if split.canary is None or not split.canary_weight:
                continue
            _guard(resources, rule, split, cfg, report)


def _guard(resources: list[PolicyResource], rule: PolicyResource, split: Split, cfg: Mapping[str, Any],
           report: Callable[[str, Optional[str]], None]) -> None:
    share = f"rule '{rule.name}' sends {fmt_number(split.canary_weight or 0)}% to '{split.canary_name}'"
    groups = [r for r in resources if is_type(r.resource_type, TARGET_GROUP) and _resource_name(r) == split.canary_name]
    path = cfg["healthCheckPath"]
    if not groups:
        report(f"{share}, but no target group of that name is in the stack to check its health check.", rule.urn)
    for group in groups:
        check = group.props.get("healthCheck")
        if dig(check, "enabled") is False or dig(check, "path") != path:
            report(f"{share}, but its health check is not on {path}.", group.urn)

    alarms = [r for r in resources if is_type(r.resource_type, METRIC_ALARM) and _alarm_notifies(r)]
    metrics = [pair for alarm in alarms for pair in _alarm_metrics(alarm)]
    if not any(m == cfg["errorMetricName"] for m, _ in metrics):
        report(f"{share}, but no alarm with actions watches {cfg['errorMetricName']} (the 5xx rate).", rule.urn)
    if not any(m == cfg["latencyMetricName"] and s == cfg["latencyStatistic"] for m, s in metrics):
        report(f"{share}, but no alarm with actions watches {cfg['latencyMetricName']} at "
               f"{cfg['latencyStatistic']}.", rule.urn)

    services = [r for r in resources if is_type(r.resource_type, ECS_SERVICE)
                and re.search(cfg["serviceNamePattern"], _resource_name(r))]
    if not services:
        report(f"{share}, but no ECS service matching {cfg['serviceNamePattern']!r} is in the stack.", rule.urn)
    for service in services:
        breaker = service.props.get("deploymentCircuitBreaker")
        if dig(breaker, "enable") is not True or dig(breaker, "rollback") is not True:
            report(f"{share}, but ECS service '{service.name}' has no circuit breaker with rollback.", service.urn)


alb_canary_weights = resource_policy(
    name="alb-canary-weights",
    area="canary",
    description="A weighted listener rule names exactly two target groups with integer weights summing to 100, "
                "and the canary's weight is an allowed step.",
    resource_types=[LISTENER_RULE],
    check=_check_weights,
    remediation="set canaryWeight to one of the allowed steps; keep the monolith's weight at 100 - canaryWeight "
                "and tag the rule with the canary target group's name.",
    severity=Severity.HIGH,
    config=CANARY_SCHEMA,
)

alb_canary_progression = resource_policy(
    name="alb-canary-progression",
    area="canary",
    description="The canary weight rises one allowed step at a time from its live value (falls to any step at "
                "once); a new rule starts at 0 or the first step.",
    resource_types=[LISTENER_RULE],
    check=_check_progression,
    remediation="deploy the next step first and watch it for 30 minutes; to roll back, set any lower step.",
    severity=Severity.HIGH,
    config={
        **CANARY_SCHEMA,
        "readLiveState": {
            "type": "boolean",
            "default": True,
            "description": "Read the live rule with boto3; false reports the policy as not applicable.",
        },
        "liveTimeoutSeconds": {
            "type": "number",
            "minimum": 0.1,
            "maximum": 10,
            "default": 1.5,
            "description": "Connect and read timeout for the AWS calls (retries are off).",
        },
    },
)

canary_guardrails = stack_policy(
    name="canary-guardrails",
    area="canary",
    description="Before the canary gets traffic, its target group health-checks the configured path, alarms with "
                "actions watch its 5xx rate and p95 latency, and the ECS service rolls back failed deployments.",
    check=_check_guardrails,
    remediation="keep canaryWeight at 0 until the health check, both alarms (with alarmActions) and the "
                "circuit breaker are in the stack.",
    severity=Severity.HIGH,
    config={
        **{k: v for k, v in CANARY_SCHEMA.items() if k != "allowedSteps"},
        "healthCheckPath": {"type": "string", "default": "/health", "description": "Required health check path."},
        "errorMetricName": {
            "type": "string", "default": "HTTPCode_Target_5XX_Count",
            "description": "Metric a 5xx-rate alarm must watch.",
        },
        "latencyMetricName": {
            "type": "string", "default": "TargetResponseTime", "description": "Metric the latency alarm must watch.",
        },
        "latencyStatistic": {
            "type": "string", "default": "p95", "description": "Statistic the latency alarm must use.",
        },
        "serviceNamePattern": {
            "type": "string", "default": "task-service",
            "description": "Regex on ECS service names that serve the canary.",
        },
    },
)

POLICIES = [alb_canary_weights, alb_canary_progression, canary_guardrails]
