"""EncryptionKeys: the stack's two customer-managed KMS keys, each with an explicit key policy.

Creates, parented to the component and named `<name>-...`:
- the data key (`alias/task-service-data`): RDS storage and Performance Insights, the Secrets Manager secrets, the
  DMS replication instance and endpoints;
- the telemetry key (`alias/task-service-telemetry`): the stack's CloudWatch log groups and the alarm topic.

Two keys, not one, because the principals differ: telemetry must be usable by AWS service principals (CloudWatch
Logs, CloudWatch alarms, EventBridge) acting on their own, while nothing but RDS, DMS and Secrets Manager, called by
this account's IAM principals, may ever use the key that protects the database and its credentials. A mistake in
a telemetry grant then cannot expose data; each key can be audited (CloudTrail by key) and disabled on its own.

Both policies give the account root administration only (no cryptographic action), so IAM alone can never grant
use of a key: every use is one of the statements below, each scoped by `kms:ViaService`, an encryption context or
the publishing service. The execution role, the DMS access role and the rotation functions decrypt credentials only
through Secrets Manager (`kms:ViaService` plus the `SecretARN` context of this stack's secrets); their IAM policies
carry the same condition. Rotation is on; a deleted key waits 30 days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from task_service.naming import Arns, Naming, Role

DELETION_WINDOW_DAYS = 30

ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
]
"""Key administration without Encrypt/Decrypt/GenerateDataKey/ReEncrypt and without CreateGrant (a grant is use)."""

SERVICE_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"]
"""What RDS and DMS need to encrypt storage on the caller's behalf (they work through grants)."""

# Until the keys had a component of their own, the data key was a child of TaskServiceDb `task-service-db`; the
# alias keeps its URN, so an existing stack keeps the key its database and secrets are encrypted with.
_FORMER_PARENT = ("task-service-db", "task-service:database:TaskServiceDb")


def _statement(sid: str, principal: Mapping[str, Any], actions: Sequence[str], condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": dict(principal), "Action": list(actions), "Resource": "*"}
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def _administration(arns: Arns) -> dict[str, Any]:
    return _statement("KeyAdministration", {"AWS": arns.root}, ADMIN_ACTIONS)


def data_key_policy(arns: Arns, naming: Naming) -> str:
    """RDS (storage, Performance Insights), DMS and Secrets Manager, each only as called by this account's principals."""
    account = {"kms:CallerAccount": arns.account}
    statements = [
        _administration(arns),
        _statement(
            "SecretsThroughSecretsManager",
            {"AWS": arns.root},
            ["kms:Decrypt", "kms:GenerateDataKey"],
            {
                "StringEquals": {"kms:ViaService": arns.via("secretsmanager"), **account},
                "StringLike": {"kms:EncryptionContext:SecretARN": arns.secrets(naming.prefix)},
            },
        ),
        _statement(
            "DescribeThroughSecretsManager",
            {"AWS": arns.root},
            ["kms:DescribeKey"],
            {"StringEquals": {"kms:ViaService": arns.via("secretsmanager"), **account}},
        ),
        _statement(
            "RdsStorageAndPerformanceInsights",
            {"AWS": arns.root},
            SERVICE_USE_ACTIONS,
            {"StringEquals": {"kms:ViaService": arns.via("rds"), **account}},
        ),
        _statement(
            "DmsReplication",
            {"AWS": arns.root},
            SERVICE_USE_ACTIONS,
            {"StringEquals": {"kms:ViaService": arns.via("dms"), **account}},
        ),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def telemetry_key_policy(arns: Arns, log_groups: Sequence[str], topic: str, event_rules: bool) -> str:
    """CloudWatch Logs for exactly these log groups; the alarm topic for CloudWatch alarms (and EventBridge rules)."""
    topic_context = {"kms:EncryptionContext:aws:sns:topicArn": arns.topic(topic)}
    statements = [
        _administration(arns),
        _statement(
            "CloudWatchLogsForTheseLogGroups",
            {"Service": f"logs.{arns.region}.amazonaws.com"},
            ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [arns.log_group(name) for name in log_groups]}},
        ),
        _statement(
            "CloudWatchAlarmsToAlarmTopic",
            {"Service": "cloudwatch.amazonaws.com"},
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            {"StringEquals": {**topic_context, "aws:SourceAccount": arns.account}},
        ),
    ]
    if event_rules:
        # EventBridge's calls to KMS carry no aws:SourceArn/SourceAccount; the topic policy names the rules.
        statements.append(
            _statement(
                "EventBridgeRulesToAlarmTopic",
                {"Service": "events.amazonaws.com"},
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                {"StringEquals": topic_context},
            )
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


@dataclass
class EncryptionKeysArgs:
    """Inputs of EncryptionKeys."""

    naming: Naming
    arns: Arns
    log_groups: Sequence[str]
    """Every log group the stack creates (`Naming.log_groups`): the only ones the telemetry key serves."""
    event_rules: bool
    """EventBridge rules (DMS events) publish to the alarm topic."""
    tags: Mapping[str, str] = field(default_factory=dict)


class EncryptionKeys(pulumi.ComponentResource):
    """The data key and the telemetry key, rotation on, each behind an explicit key policy."""

    data: aws.kms.Key
    telemetry: aws.kms.Key

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:kms:EncryptionKeys", name, None, opts)
        naming, tags = args.naming, dict(args.tags)
        former_parent = pulumi.resource.create_urn(*_FORMER_PARENT)
        self.data = aws.kms.Key(
            f"{name}-data",
            description=f"{naming.prefix}: database storage, Performance Insights, credentials and DMS",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=data_key_policy(args.arns, naming),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name="task-service-db-key", parent=former_parent)]),
        )
        aws.kms.Alias(
            f"{name}-data-alias",
            name=naming.of(Role.DATA_KMS_ALIAS),
            target_key_id=self.data.key_id,
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name="task-service-db-key-alias", parent=former_parent)]),
        )
        self.telemetry = aws.kms.Key(
            f"{name}-telemetry",
            description=f"{naming.prefix}: CloudWatch log groups and the alarm topic",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=telemetry_key_policy(args.arns, args.log_groups, naming.of(Role.ALARM_TOPIC), args.event_rules),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            f"{name}-telemetry-alias",
            name=naming.of(Role.TELEMETRY_KMS_ALIAS),
            target_key_id=self.telemetry.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"dataKeyArn": self.data.arn, "telemetryKeyArn": self.telemetry.arn})
