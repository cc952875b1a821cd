"""DmsReplication: AWS DMS full load + CDC of the task tables from the monolith DB into the Task Service DB.

Creates, all parented to the component and named `<name>-...`:
- optionally the account-level roles `dms-vpc-role` and `dms-cloudwatch-logs-role` (one per account: create
  them from exactly one stack, `dms.createAccountRoles`);
- an access role letting DMS read the two endpoint secrets (and decrypt them through Secrets Manager);
- a replication subnet group on the private subnets, a security group with egress to both databases on 5432 and
  an ingress rule on the monolith DB's security group admitting it;
- a private, KMS-encrypted replication instance (`dms.t3.medium`, 50 GB, Multi-AZ in prod);
- TLS source and target endpoints reading their credentials from Secrets Manager;
- the replication task (`full-load-and-cdc`) with table mappings generated from the table list, validation and
  logging on, existing target tables left in place (the schema is applied by the runbook first). It is not
  started by the deploy: the runbook starts it (`python -m runbook dms start`);
- an event subscription sending task and instance failures to the alarm topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.common import assume_role_policy
from stack_config import DmsConfig


@dataclass
class DmsEndpointSpec:
    """A PostgreSQL endpoint whose credentials DMS reads from a Secrets Manager secret."""

    database_name: str
    secret_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    """The database's security group, for egress from DMS."""


@dataclass
class DmsReplicationArgs:
    """Inputs of DmsReplication."""

    config: DmsConfig
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    source: DmsEndpointSpec
    """The monolith database; DMS gets an ingress rule on its security group."""
    target: DmsEndpointSpec
    """The Task Service database (it admits DMS itself)."""
    kms_key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    identifier: str = "task-service"
    tags: Mapping[str, str] = field(default_factory=dict)


def table_mappings(schema: str, tables: Sequence[str]) -> str:
    """One selection rule per table, in a stable order and canonical JSON so previews show no spurious diff."""
    rules = [
        {
            "rule-type": "selection",
            "rule-id": str(i),
            "rule-name": f"include-{table}",
            "object-locator": {"schema-name": schema, "table-name": table},
            "rule-action": "include",
        }
        for i, table in enumerate(tables, start=1)
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


def task_settings() -> str:
    """Validation and CloudWatch logging on; keep target tables (the runbook applies the schema first)."""
    settings: dict[str, Any] = {
        "TargetMetadata": {"SupportLobs": True, "LimitedSizeLobMode": True, "LobMaxSize": 32},
        "FullLoadSettings": {"TargetTablePrepMode": "DO_NOTHING", "MaxFullLoadSubTasks": 6},
        "ValidationSettings": {"EnableValidation": True, "ValidationMode": "ROW_LEVEL", "ThreadCount": 5},
        "Logging": {"EnableLogging": True},
        "ChangeProcessingTuning": {"CommitTimeout": 1},
    }
    return json.dumps(settings, sort_keys=True)


class DmsReplication(pulumi.ComponentResource):
    """Replication instance, TLS endpoints from secrets, the full-load-and-cdc task and failure notifications."""

    security_group: aws.ec2.SecurityGroup
    replication_instance: aws.dms.ReplicationInstance
    source_endpoint: aws.dms.Endpoint
    target_endpoint: aws.dms.Endpoint
    replication_task: aws.dms.ReplicationTask
    tables: list[str]

    def __init__(self, name: str, args: DmsReplicationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:dms:DmsReplication", name, None, opts)
        cfg = args.config
        ident = args.identifier
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        account_roles: list[pulumi.Resource] = []
        if cfg.create_account_roles:
            for account_role, policy in (
                ("dms-vpc-role", "AmazonDMSVPCManagementRole"),
                ("dms-cloudwatch-logs-role", "AmazonDMSCloudWatchLogsRole"),
            ):
                role = aws.iam.Role(
                    f"{name}-{account_role}",
                    name=account_role,
                    assume_role_policy=assume_role_policy("dms.amazonaws.com"),
                    tags=tags,
                    opts=child,
                )
                account_roles.append(
                    aws.iam.RolePolicyAttachment(
                        f"{name}-{account_role}-policy",
                        role=role.name,
                        policy_arn=f"arn:aws:iam::aws:policy/service-role/{policy}",
                        opts=child,
                    )
                )
        # DMS validates dms-vpc-role when the subnet group is created; wait for it (IAM propagation races).
        after_roles = pulumi.ResourceOptions(parent=self, depends_on=account_roles)

        access_role = aws.iam.Role(
            f"{name}-secrets-access-role",
            name=f"{ident}-dms-secrets-access",
            # Secrets Manager access roles must trust the regional DMS principal.
            assume_role_policy=assume_role_policy(f"dms.{args.region}.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        access_policy = aws.iam.RolePolicy(
            f"{name}-secrets-access-policy",
            name="read-endpoint-secrets",
            role=access_role.id,
            policy=pulumi.Output.all(args.source.secret_arn, args.target.secret_arn).apply(
                lambda arns: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": [arns[0], arns[1]],
                            },
                            {
                                "Effect": "Allow",
                                "Action": "kms:Decrypt",
                                "Resource": "*",
                                "Condition": {
                                    "StringEquals": {"kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com"}
                                },
                            },
                        ],
                    }
                )
            ),
            opts=child,
        )

        subnet_group = aws.dms.ReplicationSubnetGroup(
            f"{name}-subnets",
            replication_subnet_group_id=f"{ident}-dms",
            replication_subnet_group_description=f"{ident}: DMS in the private subnets",
            subnet_ids=args.subnet_ids,
            tags=tags,
            opts=after_roles,
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{ident}-dms-sg",
            description=f"{ident}: DMS replication instance",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": f"{ident}-dms-sg"},
            opts=child,
        )
        for side, spec in (("source", args.source), ("target", args.target)):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-to-{side}-db",
                security_group_id=self.security_group.id,
                referenced_security_group_id=spec.security_group_id,
                ip_protocol="tcp",
                from_port=5432,
                to_port=5432,
                description=f"PostgreSQL to the {side} database",
                tags=tags,
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-https",
            security_group_id=self.security_group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Secrets Manager and CloudWatch endpoints",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-into-source-db",
            security_group_id=args.source.security_group_id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            description="PostgreSQL from the task-service DMS replication instance",
            tags=tags,
            opts=child,
        )

        self.replication_instance = aws.dms.ReplicationInstance(
            f"{name}-instance",
            replication_instance_id=f"{ident}-dms",
            replication_instance_class=cfg.instance_class,
            allocated_storage=cfg.allocated_storage,
            multi_az=cfg.multi_az,
            publicly_accessible=False,
            kms_key_arn=args.kms_key_arn,
            replication_subnet_group_id=subnet_group.replication_subnet_group_id,
            vpc_security_group_ids=[self.security_group.id],
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags=tags,
            opts=after_roles,
        )

        def endpoint(role: str, spec: DmsEndpointSpec) -> aws.dms.Endpoint:
            # On the target, bypass the foreign keys among the six tables (parallel full-load subtasks deliver
            # children before parents) and the updated_at triggers (replicated rows keep the source's value).
            target_settings = (
                aws.dms.EndpointPostgresSettingsArgs(after_connect_script="SET session_replication_role = 'replica'")
                if role == "target"
                else None
            )
            return aws.dms.Endpoint(
                f"{name}-{role}",
                endpoint_id=f"{ident}-{role}",
                endpoint_type=role,
                engine_name="postgres",
                database_name=spec.database_name,
                secrets_manager_arn=spec.secret_arn,
                secrets_manager_access_role_arn=access_role.arn,
                ssl_mode="require",
                postgres_settings=target_settings,
                kms_key_arn=args.kms_key_arn,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[access_policy]),
            )

        self.source_endpoint = endpoint("source", args.source)
        self.target_endpoint = endpoint("target", args.target)

        self.tables = [f"{cfg.schema}.{table}" for table in cfg.tables]
        self.replication_task = aws.dms.ReplicationTask(
            f"{name}-task",
            replication_task_id=f"{ident}-{cfg.migration_type}",
            # A stable ARN suffix, which is also the CloudWatch ReplicationTaskIdentifier the dashboard uses.
            resource_identifier=f"{ident}-{cfg.migration_type}",
            migration_type=cfg.migration_type,
            replication_instance_arn=self.replication_instance.replication_instance_arn,
            source_endpoint_arn=self.source_endpoint.endpoint_arn,
            target_endpoint_arn=self.target_endpoint.endpoint_arn,
            table_mappings=table_mappings(cfg.schema, cfg.tables),
            replication_task_settings=task_settings(),
            start_replication_task=False,
            tags=tags,
            opts=child,
        )

        for suffix, source_type, source_id, categories in (
            ("events", "replication-task", self.replication_task.replication_task_id, ["failure", "state change"]),
            (
                "instance-events",
                "replication-instance",
                self.replication_instance.replication_instance_id,
                ["failure", "failover", "low storage"],
            ),
        ):
            aws.dms.EventSubscription(
                f"{name}-{suffix}",
                name=f"{ident}-dms-{source_type.removeprefix('replication-')}-events",
                sns_topic_arn=args.alarm_topic_arn,
                source_type=source_type,
                source_ids=[source_id],
                event_categories=categories,
                enabled=True,
                tags=tags,
                opts=child,
            )

        self.register_outputs(
            {
                "replicationInstanceArn": self.replication_instance.replication_instance_arn,
                "replicationTaskArn": self.replication_task.replication_task_arn,
                "sourceEndpointArn": self.source_endpoint.endpoint_arn,
                "targetEndpointArn": self.target_endpoint.endpoint_arn,
                "securityGroupId": self.security_group.id,
                "tables": self.tables,
            }
        )
