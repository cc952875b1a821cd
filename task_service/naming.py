"""Every physical AWS name the Task Service uses, from one function: project + stack + role.

Prod keeps exactly the seed names (`task-service-cluster`, `task-service-tg`, `task-service/db-password`, ...):
its prefix is the project name. Any other stack gets the prefix `<project>-<stack>` (or the one its config sets),
so dev and prod can share an account without a single name in common. Each AWS kind has its own limits (a target
group name is at most 32 characters, an RDS identifier starts with a letter and never holds `--`); a name that
would break them is shortened and given a stable hash suffix, and a stack name that had to be altered to fit
(`feature_x`, `Dev`, `v1.2`) carries a hash of the original, so two stacks never map to one name.

The account-wide DMS roles (`dms-vpc-role`, `dms-cloudwatch-logs-role`) are not per stack: AWS looks them up by
those exact names. They are listed here too, and created by at most one stack per account.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from enum import Enum

SEED_STACK = "prod"
"""The stack whose names are exactly the seeds' (`task-service-...`)."""

HASH_LENGTH = 6


@dataclass(frozen=True)
class Rule:
    """What AWS accepts for one kind of name."""

    max_length: int
    pattern: str
    """A full-match regex of the allowed characters and shape."""

    def accepts(self, name: str) -> bool:
        return len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None


class Kind(Enum):
    """AWS naming rules, by the API that takes the name."""

    TARGET_GROUP = Rule(32, r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
    RDS_INSTANCE = Rule(63, r"[a-z](?:-?[a-z0-9])*")
    RDS_GROUP = Rule(255, r"[a-z](?:-?[a-z0-9])*")
    RDS_SNAPSHOT = Rule(255, r"[a-z](?:-?[a-z0-9])*")
    DMS_INSTANCE = Rule(63, r"[a-z](?:-?[a-z0-9])*")
    DMS_IDENTIFIER = Rule(255, r"[a-z](?:-?[a-z0-9])*")
    IAM_ROLE = Rule(64, r"[\w+=,.@-]+")
    SECRET = Rule(512, r"[\w/+=.@-]+")
    ECR_REPOSITORY = Rule(256, r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
    ECS = Rule(255, r"[A-Za-z0-9_-]+")
    LOG_GROUP = Rule(512, r"[\w./#-]+")
    SNS_TOPIC = Rule(256, r"[A-Za-z0-9_-]+")
    DASHBOARD = Rule(255, r"[A-Za-z0-9_-]+")
    ALARM = Rule(255, r"[^\x00-\x1f]+")
    KMS_ALIAS = Rule(256, r"alias/(?!aws/)[A-Za-z0-9/_-]+")
    SECURITY_GROUP = Rule(255, r"(?!sg-)[A-Za-z0-9 ._:/()#,@\[\]+=&;{}!$*-]+")
    SCALING_POLICY = Rule(256, r"[^\x00-\x1f:/]+")
    LAMBDA_FUNCTION = Rule(64, r"[A-Za-z0-9_-]+")
    EVENT_RULE = Rule(64, r"[.\-_A-Za-z0-9]+")
    SAR_STACK = Rule(113, r"[A-Za-z][A-Za-z0-9-]*")
    SSM_PARAMETER = Rule(1011, r"/[A-Za-z0-9_.\-/]+")
    """A Serverless Application Repository stack: CloudFormation's 128 characters less the `serverlessrepo-` prefix."""


class Role(Enum):
    """Each named resource: (name template, kind). `{prefix}` is the stack's prefix, `{Prefix}` its CamelCase."""

    ALARM_TOPIC = ("{prefix}-alarms", Kind.SNS_TOPIC)
    DASHBOARD = ("{Prefix}Metrics", Kind.DASHBOARD)

    DB_INSTANCE = ("{prefix}-db", Kind.RDS_INSTANCE)
    DB_FINAL_SNAPSHOT = ("{prefix}-db-final", Kind.RDS_SNAPSHOT)
    DB_SUBNET_GROUP = ("{prefix}-db", Kind.RDS_GROUP)
    DB_PARAMETER_GROUP = ("{prefix}-db-postgres16", Kind.RDS_GROUP)
    DB_SECURITY_GROUP = ("{prefix}-db-sg", Kind.SECURITY_GROUP)
    DB_MONITORING_ROLE = ("{prefix}-db-monitoring", Kind.IAM_ROLE)
    DB_SECRET = ("{prefix}/db-password", Kind.SECRET)
    APP_DB_SECRET = ("{prefix}/db-app-credentials", Kind.SECRET)
    DB_POSTGRESQL_LOG_GROUP = ("/aws/rds/instance/{db_instance}/postgresql", Kind.LOG_GROUP)
    DB_UPGRADE_LOG_GROUP = ("/aws/rds/instance/{db_instance}/upgrade", Kind.LOG_GROUP)

    DATA_KMS_ALIAS = ("alias/{prefix}-data", Kind.KMS_ALIAS)
    TELEMETRY_KMS_ALIAS = ("alias/{prefix}-telemetry", Kind.KMS_ALIAS)

    MASTER_ROTATION_FUNCTION = ("{prefix}-rotate-master", Kind.LAMBDA_FUNCTION)
    APP_ROTATION_FUNCTION = ("{prefix}-rotate-app", Kind.LAMBDA_FUNCTION)
    MASTER_ROTATION_STACK = ("{prefix}-rotate-master", Kind.SAR_STACK)
    APP_ROTATION_STACK = ("{prefix}-rotate-app", Kind.SAR_STACK)
    MASTER_ROTATION_LOG_GROUP = ("/aws/lambda/{master_rotation}", Kind.LOG_GROUP)
    APP_ROTATION_LOG_GROUP = ("/aws/lambda/{app_rotation}", Kind.LOG_GROUP)
    ROTATION_SECURITY_GROUP = ("{prefix}-rotation-sg", Kind.SECURITY_GROUP)
    SECRETS_ENDPOINT_SECURITY_GROUP = ("{prefix}-secretsmanager-endpoint-sg", Kind.SECURITY_GROUP)

    ECR_REPOSITORY = ("{prefix}", Kind.ECR_REPOSITORY)
    CLUSTER = ("{prefix}-cluster", Kind.ECS)
    SERVICE = ("{prefix}", Kind.ECS)
    TASK_FAMILY = ("{prefix}", Kind.ECS)
    CONTAINER = ("{prefix}", Kind.ECS)
    SERVICE_LOG_GROUP = ("/ecs/{prefix}", Kind.LOG_GROUP)
    CONTAINER_INSIGHTS_LOG_GROUP = ("/aws/ecs/containerinsights/{cluster}/performance", Kind.LOG_GROUP)
    SERVICE_SECURITY_GROUP = ("{prefix}-sg", Kind.SECURITY_GROUP)
    EXECUTION_ROLE = ("{prefix}-execution-role", Kind.IAM_ROLE)
    TASK_ROLE = ("{prefix}-task-role", Kind.IAM_ROLE)
    COGNITO_SECRET = ("{prefix}/cognito-config", Kind.SECRET)
    CPU_SCALING_POLICY = ("{prefix}-cpu-target-tracking", Kind.SCALING_POLICY)
    MEMORY_SCALING_POLICY = ("{prefix}-memory-target-tracking", Kind.SCALING_POLICY)

    TARGET_GROUP = ("{prefix}-tg", Kind.TARGET_GROUP)

    DMS_ACCESS_ROLE = ("{prefix}-dms-secrets-access", Kind.IAM_ROLE)
    DMS_SUBNET_GROUP = ("{prefix}-dms", Kind.DMS_IDENTIFIER)
    DMS_SECURITY_GROUP = ("{prefix}-dms-sg", Kind.SECURITY_GROUP)
    DMS_INSTANCE = ("{prefix}-dms", Kind.DMS_INSTANCE)
    DMS_SOURCE_ENDPOINT = ("{prefix}-source", Kind.DMS_IDENTIFIER)
    DMS_TARGET_ENDPOINT = ("{prefix}-target", Kind.DMS_IDENTIFIER)
    DMS_TASK = ("{prefix}-{migration_type}", Kind.DMS_IDENTIFIER)
    DMS_TASK_LOG_GROUP = ("dms-tasks-{dms_instance}", Kind.LOG_GROUP)
    DMS_TASK_EVENTS = ("{prefix}-dms-task-events", Kind.EVENT_RULE)
    DMS_INSTANCE_EVENTS = ("{prefix}-dms-instance-events", Kind.EVENT_RULE)
    DMS_VPC_ROLE = ("dms-vpc-role", Kind.IAM_ROLE)
    DMS_LOGS_ROLE = ("dms-cloudwatch-logs-role", Kind.IAM_ROLE)

    LOADTEST_RESULT = ("/{prefix}/loadtest/result", Kind.SSM_PARAMETER)
    """Written by `runbook loadtest`, read by the pack's first canary step and `canary status` (not a stack resource)."""
    TEST_ROUTE_SECRET = ("{prefix}/test-route-header", Kind.SECRET)
    """The value of the header that sends a request to the test route (`testRoute.enabled`)."""

    BACKUP_SNAPSHOT = ("{prefix}-backup-{source}-{stamp}", Kind.RDS_SNAPSHOT)
    """A manual snapshot `runbook backup` takes before anything moves (`source`: monolith or task-service)."""
    RESTORE_TEST_INSTANCE = ("{prefix}-restore-test-{stamp}", Kind.RDS_INSTANCE)
    """The temporary instance (or cluster) `runbook backup --restore-test` restores a snapshot into, then deletes."""

    ALARM_DB_CPU = ("{prefix}-db-cpu-high", Kind.ALARM)
    ALARM_DB_CONNECTIONS = ("{prefix}-db-connections-high", Kind.ALARM)
    ALARM_DB_STORAGE = ("{prefix}-db-free-storage-low", Kind.ALARM)
    ALARM_DB_MEMORY = ("{prefix}-db-freeable-memory-low", Kind.ALARM)
    ALARM_ECS_CPU = ("{prefix}-ecs-cpu-high", Kind.ALARM)
    ALARM_ECS_MEMORY = ("{prefix}-ecs-memory-high", Kind.ALARM)
    ALARM_API_5XX = ("{prefix}-api-5xx-rate-high", Kind.ALARM)
    ALARM_API_LATENCY = ("{prefix}-api-p95-latency-high", Kind.ALARM)
    ALARM_API_UNHEALTHY = ("{prefix}-api-unhealthy-hosts", Kind.ALARM)

    @property
    def template(self) -> str:
        return str(self.value[0])

    @property
    def kind(self) -> Kind:
        kind: Kind = self.value[1]
        return kind

    @property
    def account_wide(self) -> bool:
        """Named by AWS convention, the same in every stack of an account."""
        return "{" not in self.template


REFERENCES: dict[str, Role] = {
    "db_instance": Role.DB_INSTANCE,
    "cluster": Role.CLUSTER,
    "dms_instance": Role.DMS_INSTANCE,
    "master_rotation": Role.MASTER_ROTATION_FUNCTION,
    "app_rotation": Role.APP_ROTATION_FUNCTION,
}
"""Placeholders naming another role's physical name: the groups AWS names after a resource (`dms-tasks-<instance>`,
`/aws/lambda/<function>`) follow that resource's name even when it had to be shortened."""

PREFIX_PATTERN = r"[a-z](?:-?[a-z0-9])*"
"""An explicit prefix: lower-case letters, digits and single hyphens, starting with a letter."""
PREFIX_MAX_LENGTH = 40


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def _slug(text: str) -> str:
    """Lower-case letters, digits and single hyphens; never empty."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-") or "x"


def stack_prefix(project: str, stack: str, explicit: str | None = None) -> str:
    """The prefix of every per-stack name: the project in the seed stack, else `<project>-<stack>`."""
    if explicit:
        if not (len(explicit) <= PREFIX_MAX_LENGTH and re.fullmatch(PREFIX_PATTERN, explicit)):
            raise ValueError(f"name prefix {explicit!r} must match {PREFIX_PATTERN} and be at most {PREFIX_MAX_LENGTH} characters")
        return explicit
    base = _slug(project)
    if not base[0].isalpha():
        base = f"s-{base}"
    if stack == SEED_STACK:
        return base
    slug = _slug(stack)
    if slug != stack:
        # `feature_x` and `feature-x` must not share names: keep a trace of the exact stack name.
        slug = f"{slug}-{_digest(stack)}"
    return f"{base}-{slug}"


def camel(prefix: str) -> str:
    """`task-service` -> `TaskService`."""
    return "".join(part[:1].upper() + part[1:] for part in prefix.split("-"))


def fit(name: str, rule: Rule) -> str:
    """`name` within the rule's length: cut and suffixed with a hash of the whole name when too long."""
    if len(name) <= rule.max_length:
        return name
    keep = rule.max_length - HASH_LENGTH - 1
    return f"{name[:keep].rstrip('-/._')}-{_digest(name)}"


def physical_name(prefix: str, role: Role, **fields: str) -> str:
    """The AWS name of `role` for a stack with this prefix (`fields` fill other placeholders, e.g. migration_type)."""
    placeholders = {field for _, field, _, _ in string.Formatter().parse(role.template) if field}
    references = {key: physical_name(prefix, REFERENCES[key]) for key in placeholders & set(REFERENCES) - set(fields)}
    name = fit(role.template.format(prefix=prefix, Prefix=camel(prefix), **references, **fields), role.kind.value)
    if not role.kind.value.accepts(name):
        raise ValueError(f"{role.name} name {name!r} breaks AWS's rule for {role.kind.name} ({role.kind.value.pattern})")
    return name


@dataclass(frozen=True)
class Naming:
    """The names of one stack: `Naming.for_stack("task-service", "prod").of(Role.CLUSTER)` -> `task-service-cluster`."""

    prefix: str

    @classmethod
    def for_stack(cls, project: str, stack: str, explicit_prefix: str | None = None) -> "Naming":
        return cls(stack_prefix(project, stack, explicit_prefix))

    def of(self, role: Role, **fields: str) -> str:
        return physical_name(self.prefix, role, **fields)

    def log_groups(self, *, dms: bool) -> list[str]:
        """Every log group the stack creates, DMS's only with DMS on (the telemetry key's policy names exactly these)."""
        roles = [role for role in Role if role.kind is Kind.LOG_GROUP and (dms or role is not Role.DMS_TASK_LOG_GROUP)]
        return [self.of(role) for role in roles]

    def alarm_names(self) -> list[str]:
        """Every alarm the stack creates, sorted (the `alarmNames` output of a stack with all components)."""
        return sorted(self.of(role) for role in Role if role.kind is Kind.ALARM)


@dataclass(frozen=True)
class Arns:
    """ARNs of the stack's own named resources, built before those exist: key, topic and IAM policies name them."""

    partition: str
    region: str
    account: str

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"

    @property
    def root(self) -> str:
        """The account as a principal: IAM policies of the account's own principals decide from there."""
        return self._arn("iam", "root", region=False)

    def role(self, name: str) -> str:
        return self._arn("iam", f"role/{name}", region=False)

    def log_group(self, name: str) -> str:
        """As CloudWatch Logs puts it in the `aws:logs:arn` encryption context: no trailing `:*`."""
        return self._arn("logs", f"log-group:{name}")

    def function(self, name: str) -> str:
        return self._arn("lambda", f"function:{name}")

    def topic(self, name: str) -> str:
        return self._arn("sns", name)

    def event_rule(self, name: str) -> str:
        """A rule on the account's default event bus."""
        return self._arn("events", f"rule/{name}")

    def alarms(self, prefix: str) -> str:
        """Every alarm whose name starts with the stack's prefix."""
        return self._arn("cloudwatch", f"alarm:{prefix}-*")

    def secrets(self, prefix: str) -> str:
        """Every secret named `<prefix>/...` (Secrets Manager appends `-` and six random characters)."""
        return self._arn("secretsmanager", f"secret:{prefix}/*")

    def via(self, service: str) -> str:
        """The `kms:ViaService` value of a regional AWS service."""
        return f"{service}.{self.region}.amazonaws.com"
