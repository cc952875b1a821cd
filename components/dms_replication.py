"""DmsReplication: AWS DMS full load + CDC of the task tables from the monolith DB into the Task Service DB.

Creates, all parented to the component and named `<name>-...`:
- optionally the account-level roles `dms-vpc-role` and `dms-cloudwatch-logs-role` (one per account: create
  them from exactly one stack, `dms.createAccountRoles`);
- an access role letting DMS read the two endpoint secrets (and decrypt them through Secrets Manager);
- a replication subnet group on the private subnets, a security group with egress to both databases on 5432 and
  an ingress rule on the monolith DB's security group admitting it;
- the task log group DMS would otherwise create unencrypted on first write (`dms-tasks-<replication instance id>`),
  encrypted with the telemetry key, with the stack's retention;
- a private, KMS-encrypted replication instance (`dms.t3.medium`, 50 GB, Multi-AZ in prod) on a pinned engine
  version (PostgreSQL 16 endpoints need 3.5.3 or later);
- TLS source and target endpoints reading their credentials from Secrets Manager;
- the replication task (`full-load-and-cdc`) with table mappings generated from the table list, validation and
  logging on, existing target tables left in place (the schema is applied by the runbook first). It is not
  started by the deploy: the runbook starts it (`python -m runbook dms start`);
- EventBridge rules sending the task's and the instance's DMS events to the alarm topic (the route DMS recommends
  from 3.4.5 on; SNS event subscriptions are the legacy one). The alarm topic's policy admits exactly these rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws
from pydantic import AfterValidator, Field, StrictInt, StrictStr

from components.common import assume_role_policy, secrets_read_policy
from components.settings import IDENTIFIER, NON_EMPTY, UNIQUE, Bool, Settings, invalid, matches, one_of
from task_service.naming import Naming, Role
from task_service.tables import SCHEMA, TABLES, qualified


MIN_ENGINE_VERSION = (3, 5, 3)
"""The oldest DMS engine that supports PostgreSQL 16 as source and target."""


def _engine_version(value: str) -> str:
    parts = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", value)
    if parts is None or tuple(int(p) for p in parts.groups()) < MIN_ENGINE_VERSION:
        raise invalid("must be a DMS engine version of at least 3.5.3 (PostgreSQL 16 needs it), e.g. 3.6.1")
    return value


class DmsSettings(Settings):
    """`task-service:dms`: the replication instance and task (seed 001)."""

    enabled: Bool = False
    engine_version: Annotated[StrictStr, AfterValidator(_engine_version)] = "3.6.1"
    """Pinned: DMS upgrades a pinned instance itself only once the version is deprecated; raise it here then."""
    instance_class: Annotated[
        StrictStr, NON_EMPTY, matches(r"dms\.[a-z0-9]+\.[a-z0-9]+", "a DMS instance class such as dms.t3.medium")
    ] = "dms.t3.medium"
    allocated_storage: StrictInt = Field(50, ge=5, le=6144)
    multi_az: Bool | None = None
    """Defaults to the database's `db.multiAz` (the stack config resolves it)."""
    schema_name: Annotated[StrictStr, NON_EMPTY, matches(IDENTIFIER, "a PostgreSQL schema name")] = Field(SCHEMA, alias="schema")
    tables: Annotated[
        tuple[Annotated[StrictStr, matches(IDENTIFIER, "PostgreSQL table names"), one_of(*TABLES)], ...],
        Field(min_length=1),
        UNIQUE,
    ] = TABLES
    """A selection of the six tables the schema defines; never another one."""
    migration_type: Annotated[StrictStr, one_of("full-load", "cdc", "full-load-and-cdc")] = "full-load-and-cdc"
    create_account_roles: Bool = False
    """Create `dms-vpc-role` and `dms-cloudwatch-logs-role` (once per account, from exactly one stack)."""


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

    settings: DmsSettings
    """With `multi_az` resolved (never None)."""
    naming: Naming
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    source: DmsEndpointSpec
    """The monolith database; DMS gets an ingress rule on its security group."""
    target: DmsEndpointSpec
    """The Task Service database (it admits DMS itself)."""
    kms_key_arn: pulumi.Input[str]
    """The data key: the instance's storage and the endpoints' connection settings."""
    logs_kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    alarm_topic_arn: pulumi.Input[str]
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
    instance_id: str
    task_id: str

    def __init__(self, name: str, args: DmsReplicationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:dms:DmsReplication", name, None, opts)
        if args.settings.multi_az is None:
            raise ValueError("DmsSettings.multi_az must be resolved before the component is built")
        self._name = name
        self._tags = dict(args.tags)
        self._child = pulumi.ResourceOptions(parent=self)
        naming, cfg = args.naming, args.settings
        self.instance_id = naming.of(Role.DMS_INSTANCE)
        self.task_id = naming.of(Role.DMS_TASK, migration_type=cfg.migration_type)
        self.tables = qualified(cfg.tables, cfg.schema_name)

        # DMS validates dms-vpc-role when the subnet group is created; wait for it (IAM propagation races).
        after_roles = pulumi.ResourceOptions(parent=self, depends_on=self._account_roles(args))
        access_role, access_policy = self._access_role(args)
        self.security_group = self._network(args)
        subnet_group = aws.dms.ReplicationSubnetGroup(
            f"{name}-subnets",
            replication_subnet_group_id=naming.of(Role.DMS_SUBNET_GROUP),
            replication_subnet_group_description=f"{self.instance_id}: DMS in the private subnets",
            subnet_ids=args.subnet_ids,
            tags=self._tags,
            opts=after_roles,
        )
        task_logs = aws.cloudwatch.LogGroup(
            f"{name}-task-logs",
            name=naming.of(Role.DMS_TASK_LOG_GROUP),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=self._tags,
            opts=self._child,
        )
        self.replication_instance = aws.dms.ReplicationInstance(
            f"{name}-instance",
            replication_instance_id=self.instance_id,
            replication_instance_class=cfg.instance_class,
            engine_version=cfg.engine_version,
            # DMS counts 3.5 -> 3.6 as a major upgrade; raising the pin must be able to apply it.
            allow_major_version_upgrade=True,
            allocated_storage=cfg.allocated_storage,
            multi_az=cfg.multi_az,
            publicly_accessible=False,
            kms_key_arn=args.kms_key_arn,
            replication_subnet_group_id=subnet_group.replication_subnet_group_id,
            vpc_security_group_ids=[self.security_group.id],
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags=self._tags,
            opts=after_roles,
        )
        self.source_endpoint = self._endpoint(args, "source", args.source, access_role, access_policy)
        self.target_endpoint = self._endpoint(args, "target", args.target, access_role, access_policy)
        self.replication_task = aws.dms.ReplicationTask(
            f"{name}-task",
            replication_task_id=self.task_id,
            # A stable ARN suffix, which is also the CloudWatch ReplicationTaskIdentifier the dashboard uses.
            resource_identifier=self.task_id,
            migration_type=cfg.migration_type,
            replication_instance_arn=self.replication_instance.replication_instance_arn,
            source_endpoint_arn=self.source_endpoint.endpoint_arn,
            target_endpoint_arn=self.target_endpoint.endpoint_arn,
            table_mappings=table_mappings(cfg.schema_name, cfg.tables),
            replication_task_settings=task_settings(),
            start_replication_task=False,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[task_logs]),
        )
        self._event_rules(args)
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

    def _account_roles(self, args: DmsReplicationArgs) -> list[pulumi.Resource]:
        """`dms-vpc-role` and `dms-cloudwatch-logs-role`, when this stack is the one per account that owns them."""
        if not args.settings.create_account_roles:
            return []
        attachments: list[pulumi.Resource] = []
        for role, policy in ((Role.DMS_VPC_ROLE, "AmazonDMSVPCManagementRole"), (Role.DMS_LOGS_ROLE, "AmazonDMSCloudWatchLogsRole")):
            account_role = args.naming.of(role)
            created = aws.iam.Role(
                f"{self._name}-{account_role}",
                name=account_role,
                assume_role_policy=assume_role_policy("dms.amazonaws.com"),
                tags=self._tags,
                opts=self._child,
            )
            attachments.append(
                aws.iam.RolePolicyAttachment(
                    f"{self._name}-{account_role}-policy",
                    role=created.name,
                    policy_arn=f"arn:aws:iam::aws:policy/service-role/{policy}",
                    opts=self._child,
                )
            )
        return attachments

    def _access_role(self, args: DmsReplicationArgs) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The role DMS assumes to read the two endpoint secrets (and decrypt them through Secrets Manager only)."""
        role = aws.iam.Role(
            f"{self._name}-secrets-access-role",
            name=args.naming.of(Role.DMS_ACCESS_ROLE),
            # Secrets Manager access roles must trust the regional DMS principal.
            assume_role_policy=assume_role_policy(f"dms.{args.region}.amazonaws.com"),
            tags=self._tags,
            opts=self._child,
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-secrets-access-policy",
            name="read-endpoint-secrets",
            role=role.id,
            # The monolith's secret has a key of its own: any key, but only through Secrets Manager and only for
            # these two secrets.
            policy=pulumi.Output.all(args.source.secret_arn, args.target.secret_arn).apply(
                lambda arns: secrets_read_policy(arns, "*", args.region)
            ),
            opts=self._child,
        )
        return role, policy

    def _network(self, args: DmsReplicationArgs) -> aws.ec2.SecurityGroup:
        """DMS's own group: out to both databases on 5432 and to AWS APIs on 443; the monolith DB admits it."""
        name, tags, child = self._name, self._tags, self._child
        sg_name = args.naming.of(Role.DMS_SECURITY_GROUP)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=sg_name,
            description=f"{self.instance_id}: DMS replication instance",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": sg_name},
            opts=child,
        )
        for side, spec in (("source", args.source), ("target", args.target)):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-to-{side}-db",
                security_group_id=group.id,
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
            security_group_id=group.id,
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
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            description=f"PostgreSQL from the {self.instance_id} DMS replication instance",
            tags=tags,
            opts=child,
        )
        return group

    def _endpoint(
        self, args: DmsReplicationArgs, role: str, spec: DmsEndpointSpec, access_role: aws.iam.Role, access_policy: aws.iam.RolePolicy
    ) -> aws.dms.Endpoint:
        # On the target, bypass the foreign keys among the six tables (parallel full-load subtasks deliver
        # children before parents) and the updated_at triggers (replicated rows keep the source's value).
        target_settings = (
            aws.dms.EndpointPostgresSettingsArgs(after_connect_script="SET session_replication_role = 'replica'")
            if role == "target"
            else None
        )
        return aws.dms.Endpoint(
            f"{self._name}-{role}",
            endpoint_id=args.naming.of(Role.DMS_SOURCE_ENDPOINT if role == "source" else Role.DMS_TARGET_ENDPOINT),
            endpoint_type=role,
            engine_name="postgres",
            database_name=spec.database_name,
            secrets_manager_arn=spec.secret_arn,
            secrets_manager_access_role_arn=access_role.arn,
            ssl_mode="require",
            postgres_settings=target_settings,
            kms_key_arn=args.kms_key_arn,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_policy]),
        )

    def _event_rules(self, args: DmsReplicationArgs) -> None:
        """Every DMS event of the task and of the instance to the alarm topic, through EventBridge (the topic's policy
        names these rules from the same roles)."""
        for suffix, what, role, arn in (
            ("events", "task", Role.DMS_TASK_EVENTS, self.replication_task.replication_task_arn),
            ("instance-events", "instance", Role.DMS_INSTANCE_EVENTS, self.replication_instance.replication_instance_arn),
        ):
            rule = aws.cloudwatch.EventRule(
                f"{self._name}-{suffix}",
                name=args.naming.of(role),
                description=f"Every DMS event of the replication {what} to the alarm topic",
                event_pattern=pulumi.Output.from_input(arn).apply(
                    lambda resource: json.dumps({"source": ["aws.dms"], "resources": [resource]}, sort_keys=True)
                ),
                tags=self._tags,
                opts=self._child,
            )
            aws.cloudwatch.EventTarget(
                f"{self._name}-{suffix}-to-alarms",
                rule=rule.name,
                target_id="alarm-topic",
                arn=args.alarm_topic_arn,
                opts=self._child,
            )
