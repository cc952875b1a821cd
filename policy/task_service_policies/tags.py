"""Tags: the ownership and cost tags every taggable resource carries."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity
from pulumi_policy.proxy import UnknownValueError

from .common import resource_policy

Report = Callable[[str], None]

# Types in this stack that take tags even when the program passes none (so a missing `tags` key still counts).
TAGGABLE_TYPES = frozenset({
    "aws:rds/instance:Instance",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:rds/parameterGroup:ParameterGroup",
    "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:ecr/repository:Repository",
    "aws:ecs/cluster:Cluster",
    "aws:ecs/service:Service",
    "aws:ecs/taskDefinition:TaskDefinition",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listenerRule:ListenerRule",
    "aws:alb/targetGroup:TargetGroup",
    "aws:alb/listenerRule:ListenerRule",
    "aws:iam/role:Role",
    "aws:sns/topic:Topic",
    "aws:dms/replicationInstance:ReplicationInstance",
    "aws:dms/replicationSubnetGroup:ReplicationSubnetGroup",
    "aws:dms/endpoint:Endpoint",
    "aws:dms/replicationTask:ReplicationTask",
})


def _known_tags(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for key in value:
        try:
            out[key] = value[key]
        except UnknownValueError:
            out[key] = "(unknown)"
    return out


def _effective_tags(args: ResourceValidationArgs) -> dict[str, Any]:
    """Provider default tags, then `tagsAll`, then the resource's own `tags`."""
    tags: dict[str, Any] = {}
    if args.provider is not None:
        try:
            tags.update(_known_tags((args.provider.props.get("defaultTags") or {}).get("tags")))
        except UnknownValueError:
            pass
    for key in ("tagsAll", "tags"):
        try:
            tags.update(_known_tags(args.props.get(key)))
        except UnknownValueError:
            pass
    return tags


def _check_tags(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    keys = set(args.props)
    if not args.resource_type.startswith("aws:"):
        return
    if args.resource_type not in TAGGABLE_TYPES and "tags" not in keys and "tagsAll" not in keys:
        return
    tags = _effective_tags(args)
    missing = [k for k in cfg["requiredTags"] if not tags.get(k)]
    if missing:
        report(f"missing required tags: {', '.join(missing)}.")


required_tags = resource_policy(
    name="required-tags",
    area="tags",
    description="Taggable resources carry the configured ownership and cost tags.",
    resource_types=None,
    check=_check_tags,
    remediation="pass the stack's tags (task-service:tags) to the resource or to the provider's defaultTags.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.LOW,
    config={
        "requiredTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["Project", "Service", "Environment"],
            "description": "Tag keys every taggable resource must have (non-empty).",
        },
    },
)

POLICIES = [required_tags]
