"""The weighted-routing canary: valid splits, one step up at a time, and guardrails before any traffic moves.

Every listener rule and listener that can send traffic to the canary target group is judged by its effective
weight, whatever the shape of its actions (routing.py); the only route to the canary is one weighted forward naming
the monolith and the canary. A test route that ordinary traffic cannot reach (it requires the test header) is not
a canary route. Which group is the canary: see routing.py and policy/README.md.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, NoReturn, Optional

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError

from . import live
from .common import (
    ECS_SERVICE,
    LISTENER,
    LISTENER_RULE,
    METRIC_ALARM,
    TARGET_GROUP,
    as_bool,
    as_list,
    as_number,
    dig,
    fmt_number,
    is_set,
    is_type,
    known_or,
    physical_name,
    resource_policy,
    stack_policy,
)
from .routing import Forward, Route, canary_indexes, describe_share, read_route

Report = Callable[[str], None]

ROUTE_SCHEMA: dict[str, dict[str, Any]] = {
    "canaryTagKey": {
        "type": "string",
        "default": "CanaryTargetGroup",
        "description": "Listener-rule tag whose value is the canary target group's name.",
    },
    "canaryNamePattern": {
        "type": "string",
        "default": "^task-service-tg$",
        "description": "Regex on target group names that marks the canary (as does the rule's canary tag).",
    },
    "testRouteHeaderName": {
        "type": "string",
        "default": "X-Task-Service-Test",
        "description": "A rule requiring this HTTP header (with a non-empty value) is a test route, not a canary route.",
    },
}
"""How every canary policy recognises the canary's route."""

CANARY_SCHEMA: dict[str, dict[str, Any]] = {
    "allowedSteps": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 100},
        "default": [0, 5, 25, 50, 100],
        "description": "Canary weights (percent to the new service) that may be deployed, in rollout order.",
    },
    **ROUTE_SCHEMA,
}

LIVE_TIMEOUT_SCHEMA: dict[str, dict[str, Any]] = {
    "liveTimeoutSeconds": {
        "type": "number", "minimum": 0.1, "maximum": 10, "default": 1.5,
        "description": "Connect and read timeout of each AWS call (retries are off).",
    },
}


ONLY_ROUTE = ("the only route to the canary is one weighted forward naming exactly two target groups, the monolith "
              "and the canary, with explicit weights summing to 100")


def route_of(args_type: str, props: Mapping[str, Any], cfg: Mapping[str, Any]) -> Route:
    """A listener rule's route (`actions`) or a listener's (`defaultActions`)."""
    return read_route(props, cfg, "defaultActions" if is_type(args_type, LISTENER) else "actions")


def _steps(cfg: Mapping[str, Any]) -> list[float]:
    return sorted({float(s) for s in cfg["allowedSteps"]})


def _cannot_tell(forward: Forward, cfg: Mapping[str, Any]) -> str:
    """Why the split's canary cannot be told, or the unknown ARN re-raised when it is what hides it."""
    if forward.unknown is not None:
        # Which group is new depends on values only the update will know: the engine's advisory path says so.
        raise forward.unknown
    return (f"cannot tell which target group is the canary: tag the rule with {cfg['canaryTagKey']}=<canary target "
            f"group name>, or name it to match {cfg['canaryNamePattern']!r}")


def _check_split(forward: Forward, name: str, steps: list[float], report: Report) -> None:
    """The canonical split: explicit whole weights summing to 100, the canary's an allowed step."""
    if any(w is None for w in forward.weights):
        report("every target group in the split needs an explicit weight.")
        return
    weights = [w or 0.0 for w in forward.weights]
    if any(not w.is_integer() for w in weights):
        report(f"weights {', '.join(fmt_number(w) for w in weights)} are not whole numbers.")
        return
    if sum(weights) != 100:
        report(f"weights {' + '.join(fmt_number(w) for w in weights)} = {fmt_number(sum(weights))}; "
               "they must sum to 100 so each weight reads as a percentage.")
    weight = forward.share
    if weight is not None and weight not in steps:
        report(f"the canary '{name}' gets {fmt_number(weight)}%, which is not an allowed step "
               f"({', '.join(fmt_number(s) for s in steps)}).")


def _check_weights(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    route = route_of(args.resource_type, args.props, cfg)
    if route.test_route:
        return
    listener = is_type(args.resource_type, LISTENER)
    name = route.canary_name or "the canary"
    for forward in route.forwards:
        if forward in route.undecided:
            report(_cannot_tell(forward, cfg))
            continue
        if not forward.reaches_canary:
            continue
        share = describe_share(forward.share)
        if listener:
            if forward.share != 0:
                report(f"the listener's default action sends {share} of every request no rule matches to the canary "
                       f"'{name}'; {ONLY_ROUTE}, in a listener rule.")
            continue
        if not forward.two_way:
            report(f"the rule sends {share} of its traffic to the canary '{name}' through {forward.shape()}; "
                   f"{ONLY_ROUTE}.")
            continue
        _check_split(forward, name, _steps(cfg), report)
    if not listener and len(route.reaching) > 1:
        report(f"{len(route.reaching)} actions of the rule forward to the canary '{name}'; {ONLY_ROUTE}.")


def live_canary_indexes(rule: live.LiveRule, route: Route, cfg: Mapping[str, Any]) -> Optional[frozenset[int]]:
    """Which of the live rule's targets are the canary: by the live rule's canary tag, else the desired one's."""
    tag_name = rule.tags.get(cfg["canaryTagKey"]) or route.canary_name
    return canary_indexes([arn for arn, _ in rule.targets], tag_name, cfg["canaryNamePattern"])


def live_canary_weight(rule: live.LiveRule, route: Route, cfg: Mapping[str, Any]) -> float:
    """The canary's live share in percent; a canary group absent from the live rule gets nothing yet."""
    total = sum(w for _, w in rule.targets)
    if total <= 0:
        return 0.0
    indexes = live_canary_indexes(rule, route, cfg) or frozenset()
    return sum(rule.targets[i][1] for i in indexes) * 100.0 / total


def skip(args: ResourceValidationArgs, reason: str) -> NoReturn:
    """Report the policy as not applicable (the SDK raises to do so)."""
    args.not_applicable(reason)
    raise AssertionError("not_applicable() returned")


def desired_weight(args: ResourceValidationArgs, cfg: Mapping[str, Any]) -> tuple[Route, float]:
    """The rule's effective canary weight, or not applicable with the reason (test route, no canary, unset)."""
    route = route_of(args.resource_type, args.props, cfg)
    if route.test_route:
        skip(args, f"a test route (requires the {cfg['testRouteHeaderName']} header): ordinary traffic cannot "
                    "reach it")
    for forward in route.undecided:
        skip(args, f"{_cannot_tell(forward, cfg)} (alb-canary-weights reports this)")
    if not route.reaching:
        skip(args, "the rule does not route to the canary target group")
    desired = route.effective
    if desired is None:
        skip(args, "the canary weight is not set (alb-canary-weights reports this)")
    return route, desired


def live_place(args: ResourceValidationArgs) -> tuple[str, int]:
    """The listener and priority to look the live rule up by, or not applicable."""
    try:
        listener_arn = args.props.get("listenerArn")
        priority = as_number(args.props.get("priority"))
    except UnknownValueError as err:
        skip(args, f"the live weight cannot be read: {err.message}")
    if not listener_arn or priority is None:
        skip(args, "the rule has no listenerArn or priority to look the live rule up by")
    return str(listener_arn), int(priority)


def _check_progression(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if not cfg["readLiveState"]:
        skip(args, "live state reading is switched off (readLiveState=false); progression unchecked")
    route, desired = desired_weight(args, cfg)
    listener_arn, priority = live_place(args)
    try:
        current = live.read_live_rule(listener_arn, priority, float(cfg["liveTimeoutSeconds"]))
    except live.LiveStateUnavailable as err:
        skip(args, f"the live weight cannot be read ({err.reason}); progression unchecked")

    steps = _steps(cfg)
    if current is None:
        first = next((s for s in steps if s > 0), 0.0)
        if desired not in (0.0, first):
            report(f"no rule is live at priority {priority} on the listener, so the canary must start "
                   f"at 0 or {fmt_number(first)}%, not {describe_share(desired)}.")
        return
    now = live_canary_weight(current, route, cfg)
    if desired <= now:
        return
    upper = [s for s in steps if s > now]
    allowed = upper[0] if upper else 100.0
    if desired != allowed:
        report(f"the canary is live at {fmt_number(round(now, 2))}%; it may rise one step at a time, to "
               f"{fmt_number(allowed)}%, not {describe_share(desired)}.")


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
    return as_bool(known_or(alarm.props, "actionsEnabled")) is not False and is_set(alarm.props, "alarmActions")


def _routes(resources: list[PolicyResource], cfg: Mapping[str, Any]) -> list[tuple[PolicyResource, Route, float]]:
    """Every rule and listener sending ordinary traffic to the canary, with its effective weight (> 0)."""
    found = []
    for resource in resources:
        if not (is_type(resource.resource_type, LISTENER_RULE) or is_type(resource.resource_type, LISTENER)):
            continue
        route = route_of(resource.resource_type, resource.props, cfg)
        weight = route.effective
        if route.test_route or not route.reaching or weight == 0:
            continue
        found.append((resource, route, 100.0 if weight is None else weight))
    return found


def _check_guardrails(args: StackValidationArgs, cfg: Mapping[str, Any],
                      report: Callable[[str, Optional[str]], None]) -> None:
    routes = _routes(args.resources, cfg)
    for resource, route, weight in routes:
        _guard(args.resources, resource, route, weight, cfg, report)
    if len(routes) > 1:
        names = ", ".join(f"'{r.name}' ({describe_share(w)})" for r, _, w in routes)
        for resource, _, _ in routes:
            report(f"{len(routes)} routes send ordinary traffic to the canary: {names}; {ONLY_ROUTE}, in one "
                   "listener rule.", resource.urn)


def _canary_groups(resources: list[PolicyResource], route: Route, cfg: Mapping[str, Any]) -> list[PolicyResource]:
    groups = [r for r in resources if is_type(r.resource_type, TARGET_GROUP)]
    if route.canary_name:
        return [g for g in groups if physical_name(g) == route.canary_name]
    return [g for g in groups if re.search(cfg["canaryNamePattern"], physical_name(g))]


def _guard(resources: list[PolicyResource], rule: PolicyResource, route: Route, weight: float,
           cfg: Mapping[str, Any], report: Callable[[str, Optional[str]], None]) -> None:
    share = f"'{rule.name}' sends {describe_share(weight)} to '{route.canary_name or 'the canary'}'"
    groups = _canary_groups(resources, route, cfg)
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
                and re.search(cfg["serviceNamePattern"], physical_name(r))]
    if not services:
        report(f"{share}, but no ECS service matching {cfg['serviceNamePattern']!r} is in the stack.", rule.urn)
    for service in services:
        breaker = service.props.get("deploymentCircuitBreaker")
        if as_bool(dig(breaker, "enable")) is not True or as_bool(dig(breaker, "rollback")) is not True:
            report(f"{share}, but ECS service '{service.name}' has no circuit breaker with rollback.", service.urn)


alb_canary_weights = resource_policy(
    name="alb-canary-weights",
    area="canary",
    description="Any listener rule or listener that can send traffic to the canary, whatever its actions' shape, is "
                "one weighted forward naming the monolith and the canary, with integer weights summing to 100 and "
                "the canary's weight an allowed step (a test route requiring the test header excepted).",
    resource_types=[LISTENER_RULE, LISTENER],
    check=_check_weights,
    remediation="route to the canary only through the weighted rule: set canaryWeight to one of the allowed steps, "
                "keep the monolith's weight at 100 - canaryWeight, and tag the rule with the canary target group's "
                "name.",
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
        **LIVE_TIMEOUT_SCHEMA,
    },
)

canary_guardrails = stack_policy(
    name="canary-guardrails",
    area="canary",
    description="Before the canary gets traffic, its target group health-checks the configured path, alarms with "
                "actions watch its 5xx rate and p95 latency, the ECS service rolls back failed deployments, and "
                "only one rule or listener sends ordinary traffic to it.",
    check=_check_guardrails,
    remediation="keep canaryWeight at 0 until the health check, both alarms (with alarmActions) and the "
                "circuit breaker are in the stack, and route to the canary through the one weighted rule.",
    severity=Severity.HIGH,
    config={
        **ROUTE_SCHEMA,
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
