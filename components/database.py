"""TaskServiceDb: the Task Service's own RDS PostgreSQL 16 database.

Creates, all parented to the component and named `<name>-...`:
- a DB subnet group on the isolated subnets and a security group admitting 5432 only from the security groups
  passed to `admit()` (the service, DMS, the rotation functions), which the program calls once those exist;
- a `postgres16` parameter group forcing TLS, logging slow queries and fixing `max_connections` (static, so
  `pending-reboot`), which the connections alarm is 80% of;
- a generated master password (32 chars) kept in Secrets Manager as `task-service/db-password`, a JSON document
  DMS and the runbook read (username, password, host, port, dbname, engine);
- the application's credentials, `task-service/db-app-credentials`: the least-privileged role the schema step
  creates (`task_service_app`, DML on the six tables), in the keys the alternating-users rotation function reads
  (the same plus `masterarn`). The service connects with these, never as the master user;
- the enhanced-monitoring IAM role and the log groups RDS exports into, encrypted with the telemetry key;
- the Multi-AZ (per config) RDS instance (CA `rds-ca-rsa2048-g1`), and alarms on CPU, connections, free storage
  and freeable memory.
Storage, Performance Insights and both secrets use the stack's data key (EncryptionKeys). Rotation changes the
passwords after creation, so the program ignores them from then on (the instance's `password`, both secret
versions): a deploy never puts an old password back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import Field, StrictInt, StrictStr, model_validator

from components.common import assume_role_policy, metric_alarm
from components.settings import IDENTIFIER, NON_EMPTY, Bool, Identifier, Settings, invalid, matches, one_of
from task_service.naming import Naming, Role

GIB = 1024**3
MIB = 1024**2
CONNECTIONS_ALARM_PERCENT = 80
"""Seed 001's "80 of 100": the alarm fires at 80% of the `max_connections` the parameter group sets."""
MAX_STORAGE_GB = 65536
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
"""RDS's current RSA-2048 authority (valid to 2061); rds-ca-2019 expired in 2024."""
SecretAndVersion = tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_DAY = f"(?:{'|'.join(DAYS)})"
MINIMUM_WINDOW_MINUTES = 30
"""RDS refuses a backup or maintenance window shorter than 30 minutes, or two that overlap."""
DAY_MINUTES, WEEK_MINUTES = 24 * 60, 7 * 24 * 60


def _minute(text: str) -> int:
    """Minute of the week for `ddd:hh:mm`, of the day for `hh:mm`."""
    *day, hours, minutes = text.split(":")
    return (DAYS.index(day[0]) * DAY_MINUTES if day else 0) + int(hours) * 60 + int(minutes)


def _span(window: str, period: int) -> tuple[int, int]:
    """(start, length) in minutes of a `start-end` window that may wrap around the day or week."""
    start, end = (_minute(part) for part in window.split("-"))
    return start, (end - start) % period


def _overlap(a: tuple[int, int], b: tuple[int, int], period: int) -> bool:
    return (b[0] - a[0]) % period < a[1] or (a[0] - b[0]) % period < b[1]


class DatabaseSettings(Settings):
    """`task-service:db`: sizing, backups and identity of the Task Service database."""

    instance_class: Annotated[
        StrictStr, NON_EMPTY, matches(r"db\.[a-z0-9]+\.[a-z0-9]+", "an RDS instance class such as db.t3.medium")
    ] = "db.t3.micro"
    allocated_storage: StrictInt = Field(20, ge=20, le=MAX_STORAGE_GB)
    """GB of gp3 storage."""
    max_allocated_storage: StrictInt | None = None
    """Storage autoscaling ceiling in GB; twice `allocated_storage` when unset."""
    multi_az: Bool = True
    backup_retention_days: StrictInt = Field(7, ge=1, le=35)
    backup_window: Annotated[StrictStr, matches(f"{_TIME}-{_TIME}", "a UTC window hh:mm-hh:mm (00:00-23:59)")] = "17:00-17:30"
    maintenance_window: Annotated[
        StrictStr, matches(f"{_DAY}:{_TIME}-{_DAY}:{_TIME}", "a UTC window ddd:hh:mm-ddd:hh:mm (mon..sun, 00:00-23:59)")
    ] = "sun:18:00-sun:18:30"
    deletion_protection: Bool = True
    """Also decides the final snapshot."""
    performance_insights_retention_days: StrictInt = Field(7, ge=7, le=731)
    monitoring_interval: Annotated[StrictInt, one_of(0, 1, 5, 10, 15, 30, 60)] = 60
    """Enhanced monitoring interval in seconds (0 turns it off)."""
    max_connections: StrictInt = Field(100, ge=20, le=5000)
    """`max_connections` of the parameter group (seed 001 sizes the pool at 100); the alarm fires at 80%."""
    name: Identifier = "task_service"
    username: Annotated[StrictStr, NON_EMPTY, matches(IDENTIFIER, "a PostgreSQL role name")] = "task_service_user"
    """The master user (schema changes, DMS, rotation of the application's password)."""
    app_username: Annotated[StrictStr, NON_EMPTY, matches(r"[a-z_][a-z0-9_]{0,56}", "a PostgreSQL role name of at most 57 characters")] = (
        "task_service_app"
    )
    """The application's role; rotation alternates it with `<name>_clone` (63 characters at most in PostgreSQL)."""

    @model_validator(mode="after")
    def _cross_field(self) -> "DatabaseSettings":
        ceiling = self.max_allocated_storage
        if ceiling is not None and not self.allocated_storage <= ceiling <= MAX_STORAGE_GB:
            raise invalid(f"must be between {self.allocated_storage} and {MAX_STORAGE_GB}", "maxAllocatedStorage", ceiling)
        days = self.performance_insights_retention_days
        if days != 7 and days % 31:
            raise invalid("must be 7 or a multiple of 31 up to 731", "performanceInsightsRetentionDays", days)
        if self.app_username in (self.username, f"{self.username}_clone"):
            raise invalid(f"must differ from db.username ({self.username})", "appUsername", self.app_username)
        self._windows()
        return self

    def _windows(self) -> None:
        """RDS refuses short windows and a backup window that meets the maintenance window on any day."""
        backup = _span(self.backup_window, DAY_MINUTES)
        maintenance = _span(self.maintenance_window, WEEK_MINUTES)
        windows = (("backupWindow", self.backup_window, backup), ("maintenanceWindow", self.maintenance_window, maintenance))
        for key, value, (_, length) in windows:
            if length < MINIMUM_WINDOW_MINUTES:
                raise invalid(f"must last at least {MINIMUM_WINDOW_MINUTES} minutes", key, value)
        if any(_overlap((day * DAY_MINUTES + backup[0], backup[1]), maintenance, WEEK_MINUTES) for day in range(7)):
            raise invalid(f"must not overlap maintenanceWindow ({self.maintenance_window})", "backupWindow", self.backup_window)

    @property
    def connections_alarm(self) -> int:
        return self.max_connections * CONNECTIONS_ALARM_PERCENT // 100

    @property
    def storage_ceiling(self) -> int:
        return self.max_allocated_storage or self.allocated_storage * 2


@dataclass
class TaskServiceDbArgs:
    """Inputs of TaskServiceDb."""

    settings: DatabaseSettings
    naming: Naming
    """Derives every physical name (identifier, secret, groups, alarms) for this stack."""
    vpc_id: pulumi.Input[str]
    """VPC of the isolated subnets."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Isolated subnets in at least two AZs (ap-northeast-1a/1c)."""
    alarm_topic_arn: pulumi.Input[str]
    """SNS topic the alarms notify."""
    kms_key_arn: pulumi.Input[str]
    """The data key: storage, Performance Insights and both secrets."""
    logs_kms_key_arn: pulumi.Input[str]
    """The telemetry key, for the log groups RDS exports into."""
    log_retention_days: int
    recovery_window_days: int
    """Days a deleted secret can be restored (0: deleted at once)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class TaskServiceDb(pulumi.ComponentResource):
    """Multi-AZ, KMS-encrypted RDS PostgreSQL 16 with backups, Performance Insights, monitoring and alarms."""

    instance: aws.rds.Instance
    security_group: aws.ec2.SecurityGroup
    secret: aws.secretsmanager.Secret
    """The master credentials (`task-service/db-password`)."""
    app_secret: aws.secretsmanager.Secret
    """The application's credentials (`task-service/db-app-credentials`)."""
    secret_version: aws.secretsmanager.SecretVersion
    """What a reader of `secret` waits for: the secret with its value."""
    app_secret_version: aws.secretsmanager.SecretVersion
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TaskServiceDbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:database:TaskServiceDb", name, None, opts)
        self._name = name
        self._tags = dict(args.tags)
        self._child = pulumi.ResourceOptions(parent=self)
        self.identifier = args.naming.of(Role.DB_INSTANCE)
        sg_name = args.naming.of(Role.DB_SECURITY_GROUP)
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=sg_name,
            description=f"{self.identifier}: PostgreSQL from the Task Service and DMS only",
            vpc_id=args.vpc_id,
            tags={**self._tags, "Name": sg_name},
            opts=self._child,
        )
        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=True,
            # RDS rejects '/', '@', '"' and spaces in master passwords.
            override_special="!#$%&*()-_=+[]{}<>:?",
            opts=self._child,
        )
        self.instance = self._instance(args, password)
        (self.secret, self.secret_version), (self.app_secret, self.app_secret_version) = self._secrets(args, password)
        self.alarm_names = self._alarms(args)
        self.register_outputs(
            {
                "instanceId": self.instance.identifier,
                "address": self.instance.address,
                "endpoint": self.instance.endpoint,
                "port": self.instance.port,
                "engineVersion": self.instance.engine_version_actual,
                "secretArn": self.secret.arn,
                "appSecretArn": self.app_secret.arn,
                "securityGroupId": self.security_group.id,
                "alarmNames": self.alarm_names,
            }
        )

    def admit(self, client: str, security_group_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Let one client's security group (the service, DMS, rotation) reach 5432; nothing else is ever admitted."""
        return aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-from-{client}",
            security_group_id=self.security_group.id,
            referenced_security_group_id=security_group_id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            description=f"PostgreSQL from {client}",
            tags=self._tags,
            opts=self._child,
        )

    def _groups(self, args: TaskServiceDbArgs) -> tuple[aws.rds.SubnetGroup, aws.rds.ParameterGroup]:
        """Where the instance lives (isolated subnets) and how it runs (TLS only, slow-query logging, a fixed pool)."""
        subnet_group = aws.rds.SubnetGroup(
            f"{self._name}-subnets",
            name=args.naming.of(Role.DB_SUBNET_GROUP),
            description=f"{self.identifier}: isolated subnets",
            subnet_ids=args.subnet_ids,
            tags=self._tags,
            opts=self._child,
        )
        parameter_group = aws.rds.ParameterGroup(
            f"{self._name}-params",
            name=args.naming.of(Role.DB_PARAMETER_GROUP),
            family="postgres16",
            description=f"{self.identifier}: TLS only, slow-query logging, fixed max_connections",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="500"),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                # Static in PostgreSQL: RDS only accepts it with pending-reboot (applied at creation, else on reboot).
                aws.rds.ParameterGroupParameterArgs(
                    name="max_connections", value=str(args.settings.max_connections), apply_method="pending-reboot"
                ),
            ],
            tags=self._tags,
            opts=self._child,
        )
        return subnet_group, parameter_group

    def _monitoring(self, args: TaskServiceDbArgs) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        """The enhanced-monitoring role, and what the instance must wait for (the role's policy, the log groups)."""
        name, child = self._name, self._child
        role = aws.iam.Role(
            f"{name}-monitoring-role",
            name=args.naming.of(Role.DB_MONITORING_ROLE),
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"),
            tags=self._tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring-policy",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            opts=child,
        )
        # Created before the instance so RDS exports into encrypted groups with our retention, not never-expiring,
        # unencrypted ones of its own.
        log_groups: list[pulumi.Resource] = [
            aws.cloudwatch.LogGroup(
                f"{name}-log-{kind}",
                name=args.naming.of(role),
                retention_in_days=args.log_retention_days,
                kms_key_id=args.logs_kms_key_arn,
                tags=self._tags,
                opts=child,
            )
            for kind, role in (("postgresql", Role.DB_POSTGRESQL_LOG_GROUP), ("upgrade", Role.DB_UPGRADE_LOG_GROUP))
        ]
        return role, [attachment, *log_groups]

    def _instance(self, args: TaskServiceDbArgs, password: random.RandomPassword) -> aws.rds.Instance:
        cfg = args.settings
        subnet_group, parameter_group = self._groups(args)
        monitoring_role, prerequisites = self._monitoring(args)
        return aws.rds.Instance(
            f"{self._name}-instance",
            identifier=self.identifier,
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
            max_allocated_storage=cfg.storage_ceiling,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            ca_cert_identifier=CA_CERTIFICATE,
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
            final_snapshot_identifier=args.naming.of(Role.DB_FINAL_SNAPSHOT) if cfg.deletion_protection else None,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            monitoring_interval=cfg.monitoring_interval,
            monitoring_role_arn=monitoring_role.arn if cfg.monitoring_interval else None,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            apply_immediately=False,
            tags=self._tags,
            # The master secret's rotation changes the password from then on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=prerequisites, ignore_changes=["password"]),
        )

    def _secrets(
        self, args: TaskServiceDbArgs, password: random.RandomPassword
    ) -> tuple[SecretAndVersion, SecretAndVersion]:
        """The master and the application credentials (each a secret and its version), each one JSON document in the
        keys its readers expect."""
        cfg = args.settings
        connection = {"host": self.instance.address, "port": self.instance.port, "dbname": cfg.name, "engine": "postgres"}
        master = self._secret(
            args, "secret", Role.DB_SECRET, f"{self.identifier} master credentials (DMS, schema step, rotation)",
            {"username": cfg.username, "password": password.result, **connection},
        )
        app_password = random.RandomPassword(f"{self._name}-app-password", length=32, special=False, opts=self._child)
        app = self._secret(
            args, "app-secret", Role.APP_DB_SECRET, f"{self.identifier} application credentials (the Task Service's own role)",
            {"username": cfg.app_username, "password": app_password.result, **connection, "masterarn": master[0].arn},
        )
        return master, app

    def _secret(
        self, args: TaskServiceDbArgs, suffix: str, role: Role, description: str, document: Mapping[str, pulumi.Input[object]]
    ) -> SecretAndVersion:
        secret = aws.secretsmanager.Secret(
            f"{self._name}-{suffix}",
            name=args.naming.of(role),
            description=description,
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            tags=self._tags,
            opts=self._child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{self._name}-{suffix}-version",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps(document),
            # Written once; rotation owns the value afterwards.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secret_string"]),
        )
        return secret, version

    def _alarms(self, args: TaskServiceDbArgs) -> pulumi.Output[list[str]]:
        # (resource suffix, role, description, metric, statistic, threshold, comparison)
        specs = [
            ("cpu", Role.ALARM_DB_CPU, "RDS CPU above 70% (warning)", "CPUUtilization", "Average", 70, "GreaterThanThreshold"),
            (
                "connections",
                Role.ALARM_DB_CONNECTIONS,
                f"RDS connections above {args.settings.connections_alarm} of max_connections {args.settings.max_connections} (critical)",
                "DatabaseConnections",
                "Maximum",
                args.settings.connections_alarm,
                "GreaterThanThreshold",
            ),
            (
                "storage",
                Role.ALARM_DB_STORAGE,
                "RDS free storage below 10% of allocated storage",
                "FreeStorageSpace",
                "Minimum",
                args.settings.allocated_storage * GIB // 10,
                "LessThanThreshold",
            ),
            ("memory", Role.ALARM_DB_MEMORY, "RDS freeable memory below 100 MiB", "FreeableMemory", "Minimum", 100 * MIB, "LessThanThreshold"),
        ]
        alarms = [
            metric_alarm(
                f"{self._name}-{suffix}-alarm",
                alarm_name=args.naming.of(role),
                description=description,
                namespace="AWS/RDS",
                metric_name=metric,
                dimensions={"DBInstanceIdentifier": self.identifier},
                statistic=statistic,
                threshold=threshold,
                comparison=comparison,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=self._tags,
            )
            for suffix, role, description, metric, statistic, threshold, comparison in specs
        ]
        return pulumi.Output.all(*[a.name for a in alarms])
