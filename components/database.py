"""TaskServiceDb: the Task Service's own RDS PostgreSQL 16 database.

Creates, all parented to the component and named `<name>-...`:
- a customer KMS key (rotation on) and alias, encrypting storage, Performance Insights and the password secret;
- a DB subnet group on the isolated subnets and a security group admitting 5432 only from the security groups
  it is given (the service, DMS);
- a `postgres16` parameter group forcing TLS and logging slow queries;
- a generated master password (32 chars) kept in Secrets Manager as `task-service/db-password`, a JSON document
  DMS and the service can read (username, password, host, port, dbname, engine);
- the enhanced-monitoring IAM role and the log groups RDS exports into, with retention;
- the Multi-AZ (per config) RDS instance, and alarms on CPU, connections, free storage and freeable memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.common import assume_role_policy, metric_alarm
from stack_config import DbConfig

GIB = 1024**3
MIB = 1024**2
# RDS max_connections for db.t3.medium is ~400, but the digest sizes the pool at 100 and alarms at 80.
CONNECTIONS_ALARM = 80


@dataclass
class TaskServiceDbArgs:
    """Inputs of TaskServiceDb."""

    config: DbConfig
    """Sizing, backups and identity, validated by stack_config."""
    vpc_id: pulumi.Input[str]
    """VPC of the isolated subnets."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Isolated subnets in at least two AZs (ap-northeast-1a/1c)."""
    client_security_group_ids: Mapping[str, pulumi.Input[str]]
    """Security groups allowed to reach 5432, by role (e.g. service, dms); nothing else is admitted."""
    alarm_topic_arn: pulumi.Input[str]
    """SNS topic the alarms notify."""
    identifier: str = "task-service-db"
    """RDS instance identifier."""
    secret_name: str = "task-service/db-password"
    """Secrets Manager name of the credentials document."""
    tags: Mapping[str, str] = field(default_factory=dict)


class TaskServiceDb(pulumi.ComponentResource):
    """Multi-AZ, KMS-encrypted RDS PostgreSQL 16 with backups, Performance Insights, monitoring and alarms."""

    instance: aws.rds.Instance
    kms_key: aws.kms.Key
    security_group: aws.ec2.SecurityGroup
    secret: aws.secretsmanager.Secret
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TaskServiceDbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:database:TaskServiceDb", name, None, opts)
        cfg = args.config
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.identifier}: storage, Performance Insights and credentials",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=child,
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.identifier}", target_key_id=self.kms_key.key_id, opts=child)

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=args.identifier,
            description=f"{args.identifier}: isolated subnets",
            subnet_ids=args.subnet_ids,
            tags=tags,
            opts=child,
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{args.identifier}-sg",
            description=f"{args.identifier}: PostgreSQL from the Task Service and DMS only",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": f"{args.identifier}-sg"},
            opts=child,
        )
        for role, source_sg in args.client_security_group_ids.items():
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{role}",
                security_group_id=self.security_group.id,
                referenced_security_group_id=source_sg,
                ip_protocol="tcp",
                from_port=5432,
                to_port=5432,
                description=f"PostgreSQL from {role}",
                tags=tags,
                opts=child,
            )

        parameter_group = aws.rds.ParameterGroup(
            f"{name}-params",
            name=f"{args.identifier}-postgres16",
            family="postgres16",
            description=f"{args.identifier}: TLS only, slow-query logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="500"),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
            ],
            tags=tags,
            opts=child,
        )

        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=True,
            # RDS rejects '/', '@', '"' and spaces in master passwords.
            override_special="!#$%&*()-_=+[]{}<>:?",
            opts=child,
        )

        monitoring_role = aws.iam.Role(
            f"{name}-monitoring-role",
            name=f"{args.identifier}-monitoring",
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        monitoring_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring-policy",
            role=monitoring_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            opts=child,
        )
        # Created before the instance so RDS exports into groups with our retention, not never-expiring ones.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-log-{kind}",
                name=f"/aws/rds/instance/{args.identifier}/{kind}",
                retention_in_days=cfg.log_retention_days,
                tags=tags,
                opts=child,
            )
            for kind in ("postgresql", "upgrade")
        ]

        self.instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=args.identifier,
            engine="postgres",
            # Major-only: RDS applies minor upgrades itself; a pinned minor would show perpetual downgrade diffs.
            engine_version="16",
            auto_minor_version_upgrade=True,
            instance_class=cfg.instance_class,
            db_name=cfg.name,
            username=cfg.username,
            password=password.result,
            port=5432,
            storage_type="gp3",
            allocated_storage=cfg.allocated_storage,
            max_allocated_storage=cfg.max_allocated_storage,
            storage_encrypted=True,
            kms_key_id=self.kms_key.arn,
            multi_az=cfg.multi_az,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=parameter_group.name,
            publicly_accessible=False,
            iam_database_authentication_enabled=True,
            backup_retention_period=cfg.backup_retention_days,
            backup_window=cfg.backup_window,
            maintenance_window=cfg.maintenance_window,
            copy_tags_to_snapshot=True,
            delete_automated_backups=False,
            deletion_protection=cfg.deletion_protection,
            skip_final_snapshot=not cfg.deletion_protection,
            final_snapshot_identifier=f"{args.identifier}-final" if cfg.deletion_protection else None,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self.kms_key.arn,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            monitoring_interval=cfg.monitoring_interval,
            monitoring_role_arn=monitoring_role.arn if cfg.monitoring_interval else None,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            apply_immediately=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[monitoring_attachment, *log_groups]),
        )

        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=args.secret_name,
            description=f"{args.identifier} master credentials (read by the Task Service and DMS)",
            kms_key_id=self.kms_key.arn,
            recovery_window_in_days=7,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-secret-version",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.json_dumps(
                {
                    "username": cfg.username,
                    "password": password.result,
                    "host": self.instance.address,
                    "port": self.instance.port,
                    "dbname": cfg.name,
                    "engine": "postgres",
                }
            ),
            opts=child,
        )

        # (resource suffix, alarm name, description, metric, statistic, threshold, comparison)
        alarm_specs = [
            ("cpu", "task-service-db-cpu-high", "RDS CPU above 70% (warning)", "CPUUtilization", "Average", 70, "GreaterThanThreshold"),
            (
                "connections",
                "task-service-db-connections-high",
                f"RDS connections above {CONNECTIONS_ALARM} of 100 (critical)",
                "DatabaseConnections",
                "Maximum",
                CONNECTIONS_ALARM,
                "GreaterThanThreshold",
            ),
            (
                "storage",
                "task-service-db-free-storage-low",
                "RDS free storage below 10% of allocated storage",
                "FreeStorageSpace",
                "Minimum",
                cfg.allocated_storage * GIB // 10,
                "LessThanThreshold",
            ),
            (
                "memory",
                "task-service-db-freeable-memory-low",
                "RDS freeable memory below 100 MiB",
                "FreeableMemory",
                "Minimum",
                100 * MIB,
                "LessThanThreshold",
            ),
        ]
        alarms = [
            metric_alarm(
                f"{name}-{suffix}-alarm",
                alarm_name=alarm_name,
                description=description,
                namespace="AWS/RDS",
                metric_name=metric,
                dimensions={"DBInstanceIdentifier": args.identifier},
                statistic=statistic,
                threshold=threshold,
                comparison=comparison,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=tags,
            )
            for suffix, alarm_name, description, metric, statistic, threshold, comparison in alarm_specs
        ]
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms])

        self.register_outputs(
            {
                "instanceId": self.instance.identifier,
                "address": self.instance.address,
                "endpoint": self.instance.endpoint,
                "port": self.instance.port,
                "engineVersion": self.instance.engine_version_actual,
                "secretArn": self.secret.arn,
                "kmsKeyArn": self.kms_key.arn,
                "securityGroupId": self.security_group.id,
                "alarmNames": self.alarm_names,
            }
        )
