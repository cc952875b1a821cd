"""Plumbing shared by every policy in the pack.

The SDK hands a policy the engine's camelCase inputs behind a proxy that raises `UnknownValueError` on any value
not known during preview, and the policy's config exactly as the CLI sent it (schema defaults are filled in by the
CLI only, so a direct call or another engine gets none). `resource_policy` wraps a check so that every policy gets
the same treatment: type matching (both `aws:lb/...` and the legacy `aws:alb/...` tokens), defaults applied in code,
an include/exclude filter on the resource name, and a remediation hint on every message.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypedDict

from pulumi_policy.proxy import UnknownValueError

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

# Keys every policy accepts, so one resource can be excused without disabling the rule for the whole stack.
NAME_FILTER_SCHEMA: dict[str, dict[str, Any]] = {
    "includeNamePattern": {
        "type": "string",
        "default": ".*",
        "description": "Only resources whose name matches this regex (re.search) are checked.",
    },
    "excludeNamePattern": {
        "type": "string",
        "default": "",
        "description": "Resources whose name matches this regex are skipped; empty skips nothing.",
    },
}

# The ALB resources exist under two modules in pulumi-aws; AWSGuard only knows one of them.
_LB_MODULES = ("aws:lb/", "aws:alb/")

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
"""Aurora and Multi-AZ DB clusters: encryption, backups and deletion guards live on the cluster."""
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
KMS_KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SNS_TOPIC = "aws:sns/topic:Topic"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
ECS_SERVICE = "aws:ecs/service:Service"
AUTOSCALING_TARGET = "aws:appautoscaling/target:Target"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LISTENER = "aws:lb/listener:Listener"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
DMS_REPLICATION_INSTANCE = "aws:dms/replicationInstance:ReplicationInstance"
DMS_ENDPOINT = "aws:dms/endpoint:Endpoint"


def type_tokens(tokens: Iterable[str]) -> frozenset[str]:
    """Every token a resource type may arrive under, counting the `aws:alb/` aliases of `aws:lb/` types."""
    out: set[str] = set()
    for token in tokens:
        out.add(token)
        for module in _LB_MODULES:
            if token.startswith(module):
                rest = token[len(module):]
                out.update(m + rest for m in _LB_MODULES)
    return frozenset(out)


def is_type(resource_type: str, token: str) -> bool:
    return resource_type in type_tokens([token])


def with_defaults(schema: Mapping[str, Mapping[str, Any]], given: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The config a policy sees: schema defaults, overlaid by what the engine sent (the SDK applies no defaults).

    A key the schema does not declare is refused (the run fails): the CLI passes a typo through without a word,
    and the policy would silently keep its default."""
    unknown = sorted(set(given or {}) - set(schema))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown[:5])}; expected one of {', '.join(sorted(schema))}")
    cfg = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    cfg.update(given or {})
    return cfg


def name_selected(name: str, cfg: Mapping[str, Any]) -> bool:
    include = cfg.get("includeNamePattern") or ".*"
    exclude = cfg.get("excludeNamePattern") or ""
    if not re.search(include, name):
        return False
    return not (exclude and re.search(exclude, name))


def dig(value: Any, *path: Any, default: Any = None) -> Any:
    """Follow keys/indexes through the SDK's proxies; a missing step gives `default`, an unknown one still raises."""
    for step in path:
        if value is None:
            return default
        if isinstance(step, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                return default
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return default
            value = value.get(step)
    return default if value is None else value


def is_set(container: Any, *path: Any) -> bool:
    """Non-empty, or unknown: an unknown ARN during preview is one the update fills in (a key being created).

    For checks that only need a value to be present, so a new stack's preview does not turn them advisory.
    """
    try:
        value = dig(container, *path)
    except UnknownValueError:
        return True
    if isinstance(value, (Mapping, Sequence)) and not isinstance(value, str):
        return len(value) > 0  # len() on the SDK's proxies never reads (so never raises on) the elements
    return bool(value)


def known_or(container: Any, *path: Any, unknown: Any = None) -> Any:
    """The value at `path`, or `unknown` when it cannot be known during preview."""
    try:
        return dig(container, *path)
    except UnknownValueError:
        return unknown


def physical_name(resource: PolicyResource) -> str:
    """The resource's `name` input where the program sets it and it is known, else its logical name."""
    name = known_or(resource.props, "name")
    return name if isinstance(name, str) and name else resource.name


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [value[i] for i in range(len(value))]
    return [value]


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def as_bool(value: Any) -> Optional[bool]:
    """A boolean as the provider reads it: a bool, or the strings Go's strconv.ParseBool accepts ("true" is true
    to AWS, so it must be to the pack); anything else is None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return True if value in _TRUE else False if value in _FALSE else None
    return None


def as_number(value: Any) -> Optional[float]:
    """Numbers arrive as floats over the wire (a Struct has no ints); strings appear for some int args. `true`, NaN
    and infinities are not numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+(\.[0-9]+)?", value, re.ASCII):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) else None


QUOTE_LIMIT = 80


def shown(value: Any) -> str:
    """A resource's value in a message, quoted and at most QUOTE_LIMIT characters (the pack is published alone, so
    it keeps this one line of its own instead of the project's task_service.untrusted.quote)."""
    text = repr(value if isinstance(value, (str, int, float, bool)) or value is None else str(type(value).__name__))
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."


def fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


Check = Callable[[ResourceValidationArgs, Mapping[str, Any], Callable[[str], None]], None]
StackCheck = Callable[[StackValidationArgs, Mapping[str, Any], Callable[[str, Optional[str]], None]], None]


class _Declared(TypedDict):
    """What both kinds of policy declare besides their check (keyword arguments of either constructor)."""

    name: str
    description: str
    enforcement_level: EnforcementLevel
    config_schema: PolicyConfigSchema
    severity: Severity
    remediation_steps: str
    tags: list[str]


def _declared(name: str, area: str, description: str, remediation: str, enforcement_level: EnforcementLevel,
              severity: Severity, schema: Mapping[str, Mapping[str, Any]]) -> _Declared:
    return _Declared(
        name=name, description=description, enforcement_level=enforcement_level,
        config_schema=PolicyConfigSchema(properties={k: dict(v) for k, v in schema.items()}),
        severity=severity, remediation_steps=remediation, tags=[area],
    )


def _hinted(report: Callable[..., None], remediation: str) -> Callable[..., None]:
    def hinted(message: str, urn: Optional[str] = None) -> None:
        report(f"{message}\nRemediation: {remediation}", urn)

    return hinted


def resource_policy(
    *,
    name: str,
    area: str,
    description: str,
    resource_types: Optional[Iterable[str]],
    check: Check,
    remediation: str,
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
    config: Optional[Mapping[str, Mapping[str, Any]]] = None,
) -> ResourceValidationPolicy:
    """A resource policy with the pack's conventions (see the module docstring); `resource_types=None` is any."""
    schema = {**NAME_FILTER_SCHEMA, **(config or {})}
    types = None if resource_types is None else type_tokens(resource_types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if types is not None and args.resource_type not in types:
            return
        cfg = with_defaults(schema, args.get_config())
        if not name_selected(args.name, cfg):
            return
        hinted = _hinted(report_violation, remediation)
        check(args, cfg, lambda message: hinted(message, None))

    return ResourceValidationPolicy(
        validate=validate, **_declared(name, area, description, remediation, enforcement_level, severity, schema))


def stack_policy(
    *,
    name: str,
    area: str,
    description: str,
    check: StackCheck,
    remediation: str,
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    severity: Severity = Severity.HIGH,
    config: Optional[Mapping[str, Mapping[str, Any]]] = None,
) -> StackValidationPolicy:
    """A stack policy with defaults applied and a remediation hint on every message."""
    schema = dict(config or {})

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        cfg = with_defaults(schema, args.get_config())
        check(args, cfg, _hinted(report_violation, remediation))

    return StackValidationPolicy(
        validate=validate, **_declared(name, area, description, remediation, enforcement_level, severity, schema))
