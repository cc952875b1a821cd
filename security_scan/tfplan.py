"""A Terraform plan JSON (`terraform show -json` format 1.2) of the recorded program, for checkov.

pulumi-aws is bridged from the Terraform AWS provider, so every resource we register has a Terraform twin. The
view is faithful where checkov looks: Terraform resource types, snake_case attributes, nested blocks as lists (Pulumi
flattens single blocks to objects and pluralises repeated ones: `encryptionConfigurations` is Terraform's
`encryption_configuration` block), maps kept as maps, and the engine's property dependencies as configuration
references (checkov's graph checks, e.g. "a secret has a rotation", follow them), whole numbers as integers. Secret
values are unwrapped: the recording's are fakes. Only the resource types this program uses are mapped; another one is an error, not a skip.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from preview.engine import RecordedResource, Recording
from preview.wire import SIGNATURE_KEY as SECRET_SIG

TERRAFORM_TYPES: dict[str, str] = {
    "aws:appautoscaling/policy:Policy": "aws_appautoscaling_policy",
    "aws:appautoscaling/target:Target": "aws_appautoscaling_target",
    "aws:cloudwatch/dashboard:Dashboard": "aws_cloudwatch_dashboard",
    "aws:cloudwatch/eventRule:EventRule": "aws_cloudwatch_event_rule",
    "aws:cloudwatch/eventTarget:EventTarget": "aws_cloudwatch_event_target",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "aws_cloudwatch_metric_alarm",
    "aws:dms/endpoint:Endpoint": "aws_dms_endpoint",
    "aws:dms/replicationInstance:ReplicationInstance": "aws_dms_replication_instance",
    "aws:dms/replicationSubnetGroup:ReplicationSubnetGroup": "aws_dms_replication_subnet_group",
    "aws:dms/replicationTask:ReplicationTask": "aws_dms_replication_task",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "aws_ecr_lifecycle_policy",
    "aws:ecr/repository:Repository": "aws_ecr_repository",
    "aws:ecs/cluster:Cluster": "aws_ecs_cluster",
    "aws:ecs/service:Service": "aws_ecs_service",
    "aws:ecs/taskDefinition:TaskDefinition": "aws_ecs_task_definition",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:lb/listenerRule:ListenerRule": "aws_lb_listener_rule",
    "aws:lb/targetGroup:TargetGroup": "aws_lb_target_group",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:secretsmanager/secret:Secret": "aws_secretsmanager_secret",
    "aws:secretsmanager/secretRotation:SecretRotation": "aws_secretsmanager_secret_rotation",
    "aws:secretsmanager/secretVersion:SecretVersion": "aws_secretsmanager_secret_version",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": "aws_serverlessapplicationrepository_cloudformation_stack",
    "aws:sns/topic:Topic": "aws_sns_topic",
    "aws:sns/topicPolicy:TopicPolicy": "aws_sns_topic_policy",
    "aws:sns/topicSubscription:TopicSubscription": "aws_sns_topic_subscription",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "aws_vpc_security_group_egress_rule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
}
"""Pulumi token -> Terraform type, for every AWS resource type the program registers."""

NOT_AWS = ("random:",)
"""Providers without AWS checks (the generated passwords)."""

RENAMES: dict[str, str] = {
    "encryption_configurations": "encryption_configuration",
    "settings": "setting",
    "load_balancers": "load_balancer",
    "volumes": "volume",
    "metric_queries": "metric_query",
    "actions": "action",
    "conditions": "condition",
    "target_groups": "target_group",
    "parameters": "parameter",
}
"""Repeated blocks Pulumi names in the plural (the Terraform provider's names are singular)."""

MAPS: dict[str, frozenset[str]] = {
    "*": frozenset({"tags", "tags_all", "dimensions"}),
    "aws_serverlessapplicationrepository_cloudformation_stack": frozenset({"parameters"}),
}
"""Attributes that are Terraform maps (kept as objects); every other object is a block (a list of one)."""

PROVIDER = "registry.terraform.io/hashicorp/aws"


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def address_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _value(value: Any, tf_type: str, key: str) -> Any:
    if isinstance(value, dict) and SECRET_SIG in value:
        return _value(value.get("value"), tf_type, key)
    if isinstance(value, dict):
        if key in MAPS["*"] or key in MAPS.get(tf_type, frozenset()):
            return dict(value)
        return [_attributes(value, tf_type)]
    if isinstance(value, list):
        return [_attributes(item, tf_type) if isinstance(item, dict) else _value(item, tf_type, key) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire has only doubles; Terraform's whole numbers are JSON integers
    return value


def _attributes(inputs: dict[str, Any], tf_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if key.startswith("__"):
            continue
        name = _tf_name(key, tf_type)
        out[name] = _value(value, tf_type, name)
    return out


def _tf_name(key: str, tf_type: str) -> str:
    """The Terraform attribute of a Pulumi input: snake case, and singular for blocks (never for maps)."""
    name = snake(key)
    return name if name in MAPS["*"] | MAPS.get(tf_type, frozenset()) else RENAMES.get(name, name)


def _terraform_type(resource: RecordedResource) -> str | None:
    if resource.type.startswith(NOT_AWS):
        return None
    if resource.type not in TERRAFORM_TYPES:
        raise KeyError(f"no Terraform type for {resource.type} ({resource.name}): add it to TERRAFORM_TYPES")
    return TERRAFORM_TYPES[resource.type]


def plan(recording: Recording) -> dict[str, Any]:
    """The plan of creating every custom AWS resource of the recording."""
    addresses: dict[str, str] = {}
    mapped: list[tuple[RecordedResource, str]] = []
    for resource in recording.resources:
        tf_type = _terraform_type(resource) if resource.custom else None
        if tf_type:
            addresses[resource.urn] = f"{tf_type}.{address_name(resource.name)}"
            mapped.append((resource, tf_type))
    planned, changes, configured = [], [], []
    for resource, tf_type in mapped:
        address = addresses[resource.urn]
        base = {"address": address, "mode": "managed", "type": tf_type, "name": address_name(resource.name)}
        values = _attributes(resource.inputs, tf_type)
        if "tags" in values:
            values["tags_all"] = values["tags"]
        planned.append({**base, "provider_name": PROVIDER, "schema_version": 0, "values": values, "sensitive_values": {}})
        changes.append(
            {
                **base,
                "provider_name": PROVIDER,
                "change": {"actions": ["create"], "before": None, "after": values, "after_unknown": {}, "before_sensitive": False, "after_sensitive": {}},
            }
        )
        configured.append({**base, "provider_config_key": "aws", "schema_version": 0, "expressions": _expressions(resource, tf_type, addresses)})
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": PROVIDER}},
            "root_module": {"resources": configured},
        },
    }


def _expressions(resource: RecordedResource, tf_type: str, addresses: dict[str, str]) -> dict[str, Any]:
    """Each input that depends on another resource, as a Terraform reference to it."""
    expressions: dict[str, Any] = {}
    for key, urns in resource.property_dependencies.items():
        references = _references(urns, addresses)
        if references:
            expressions[_tf_name(key, tf_type)] = {"references": references}
    return expressions


def _references(urns: Iterable[str], addresses: dict[str, str]) -> list[str]:
    out: list[str] = []
    for urn in urns:
        if urn in addresses:
            out += [f"{addresses[urn]}.id", addresses[urn]]
    return out


def dumps(recording: Recording) -> str:
    return json.dumps(plan(recording), indent=1, sort_keys=True)
