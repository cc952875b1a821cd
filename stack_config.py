"""Typed, validated stack configuration for the task-service program.

Every key is read and checked here, before any resource is declared, so a typo or an out-of-range value stops
`pulumi up` with one line naming the key, the stack file and what is expected, instead of a half-built estate or
a provider error ten minutes in. The existing network and monolith come either from explicit ids or from the
monolith stack's outputs (`task-service:monolithStack`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
from pulumi.runtime import config as runtime_config

# One list of the six migrated tables for the DMS mappings and the runbook's schema and integrity checks.
from runbook.tables import TABLES

PROJECT = "task-service"

# Fargate's valid (cpu -> memory MiB) pairs; anything else fails at RegisterTaskDefinition time.
FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}
RDS_MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
DMS_MIGRATION_TYPES = ("full-load", "cdc", "full-load-and-cdc")

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_ARN_PREFIX = r"^arn:aws[a-z-]*:"
_LISTENER_ARN = re.compile(_ARN_PREFIX + r"elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[\w-]+/[0-9a-f]+/[0-9a-f]+$")
_TARGET_GROUP_ARN = re.compile(_ARN_PREFIX + r"elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[\w-]+/[0-9a-f]+$")
_SECRET_ARN = re.compile(_ARN_PREFIX + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_DB_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_DMS_CLASS = re.compile(r"^dms\.[a-z0-9]+\.[a-z0-9]+$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")
_STACK_NAME = re.compile(r"^[\w.-]+/[\w.-]+/[\w.-]+$")
_USER_POOL_ID = re.compile(r"^[a-z]{2}-[a-z]+-\d_[0-9A-Za-z]+$")
_CLIENT_ID = re.compile(r"^[0-9a-z]{20,128}$")
_WINDOW = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")
_MAINT_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}-(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}$")
_LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


class ConfigError(pulumi.RunError):
    """A stack configuration problem. RunError makes the engine print the message without a traceback."""


@dataclass(frozen=True)
class Network:
    vpc_id: pulumi.Input[str]
    service_subnet_ids: pulumi.Input[Sequence[str]]
    db_subnet_ids: pulumi.Input[Sequence[str]]


@dataclass(frozen=True)
class Monolith:
    """The monolith's ALB and database that the Task Service borrows from (never created here)."""

    listener_arn: pulumi.Input[str]
    alb_security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    db_host: pulumi.Input[str]
    db_port: int
    db_name: str
    db_security_group_id: pulumi.Input[str]
    db_secret_arn: pulumi.Input[str]
    db_app_user: str


@dataclass(frozen=True)
class DbConfig:
    instance_class: str
    allocated_storage: int
    max_allocated_storage: int
    multi_az: bool
    backup_retention_days: int
    backup_window: str
    maintenance_window: str
    deletion_protection: bool
    performance_insights_retention_days: int
    monitoring_interval: int
    log_retention_days: int
    name: str
    username: str


@dataclass(frozen=True)
class ServiceConfig:
    image: str
    cpu: int
    memory: int
    container_port: int
    desired_count: int
    health_check_path: str
    log_retention_days: int


@dataclass(frozen=True)
class AutoscalingConfig:
    min: int
    max: int
    cpu_target: int
    memory_target: int
    scale_out_cooldown: int
    scale_in_cooldown: int


@dataclass(frozen=True)
class RouteConfig:
    path_patterns: tuple[str, ...]
    priority: int


@dataclass(frozen=True)
class DmsConfig:
    enabled: bool
    instance_class: str
    allocated_storage: int
    multi_az: bool
    schema: str
    tables: tuple[str, ...]
    migration_type: str
    create_account_roles: bool


@dataclass(frozen=True)
class CognitoConfig:
    user_pool_id: str
    client_id: str


@dataclass(frozen=True)
class MonolithStackRef:
    name: str
    outputs: Mapping[str, str]


@dataclass(frozen=True)
class StackConfig:
    """The whole stack configuration, validated."""

    stack: str
    region: str
    canary_weight: int
    network: Network
    monolith: Monolith
    db: DbConfig
    service: ServiceConfig
    autoscaling: AutoscalingConfig
    route: RouteConfig
    dms: DmsConfig
    cognito: CognitoConfig
    alarm_emails: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    monolith_stack: MonolithStackRef | None = None


_MISSING = object()
TOP_LEVEL_KEYS = (
    "canaryWeight",
    "alarmEmails",
    "monolithStack",
    "network",
    "monolith",
    "db",
    "service",
    "autoscaling",
    "route",
    "dms",
    "cognito",
    "tags",
)


def _project_keys() -> set[str]:
    """Every `task-service:` key the engine handed over, so a misspelt key fails instead of being ignored."""
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return {key.split(":", 1)[1] for key in keys if key.startswith(f"{PROJECT}:")}


class _Section:
    """Reads one structured key (e.g. `task-service:db`), naming every problem by its full path."""

    def __init__(self, key: str, value: Any, stack_file: str, known: Sequence[str], sep: str = "."):
        self.key = key
        self.sep = sep
        self.stack_file = stack_file
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(key, "must be a map of settings", value)
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ConfigError(
                f"{key}{sep}{unknown[0]} is not a known setting (expected one of: {', '.join(known)}) in {stack_file}"
            )
        self.value: dict[str, Any] = value

    def fail(self, path: str, expected: str, got: Any) -> None:
        raise ConfigError(f"{path} {expected} (got {got!r}) in {self.stack_file}")

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.value and self.value[name] is not None:
            return self.value[name]
        if default is _MISSING:
            raise ConfigError(f"{self.key}{self.sep}{name} is required in {self.stack_file}")
        return default

    def has(self, name: str) -> bool:
        return self.value.get(name) is not None

    def text(self, name: str, default: Any = _MISSING, pattern: re.Pattern[str] | None = None, what: str = "") -> Any:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{self.key}{self.sep}{name}", "must be a non-empty string", value)
        if pattern is not None and not pattern.match(value):
            self.fail(f"{self.key}{self.sep}{name}", f"must be {what or 'matching ' + pattern.pattern}", value)
        return value

    def integer(self, name: str, default: Any = _MISSING, lo: int | None = None, hi: int | None = None) -> int:
        value = self.raw(name, default)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{self.key}{self.sep}{name}", "must be a whole number", value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
            self.fail(f"{self.key}{self.sep}{name}", f"must be {bounds}", value)
        return int(value)

    def choice(self, name: str, choices: Sequence[Any], default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if isinstance(value, str) and re.fullmatch(r"\d+", value):
            value = int(value)
        if value not in choices:
            self.fail(f"{self.key}{self.sep}{name}", f"must be one of {', '.join(map(str, choices))}", value)
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(f"{self.key}{self.sep}{name}", "must be true or false", value)
        return bool(value)

    def texts(
        self,
        name: str,
        default: Any = _MISSING,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        min_items: int = 0,
    ) -> tuple[str, ...]:
        value = self.raw(name, default)
        path = f"{self.key}{self.sep}{name}"
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            self.fail(path, "must be a list of strings", value)
        if len(value) < min_items:
            self.fail(path, f"must list at least {min_items} item(s)", value)
        if len(set(value)) != len(value):
            self.fail(path, "must not repeat an item", value)
        for item in value:
            if pattern is not None and not pattern.match(item):
                self.fail(path, f"items must be {what or 'matching ' + pattern.pattern}", item)
        return tuple(value)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def load(
    config: pulumi.Config | None = None,
    aws_config: pulumi.Config | None = None,
    stack: str | None = None,
) -> StackConfig:
    """Read and validate the whole stack configuration (raises ConfigError naming the first bad key)."""
    config = config or pulumi.Config(PROJECT)
    aws_config = aws_config or pulumi.Config("aws")
    stack = stack or pulumi.get_stack()
    stack_file = f"Pulumi.{stack}.yaml"

    def obj(name: str) -> Any:
        """The CLI hands structured values over as JSON and plain strings as they are."""
        raw = config.get(name)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def section(name: str, known: Sequence[str]) -> _Section:
        return _Section(f"{PROJECT}:{name}", obj(name), stack_file, known)

    unknown = sorted(_project_keys() - set(TOP_LEVEL_KEYS))
    _require(
        not unknown,
        f"{PROJECT}:{unknown[0] if unknown else ''} is not a known key (expected one of: {', '.join(TOP_LEVEL_KEYS)}) in {stack_file}",
    )

    region = aws_config.get("region")
    _require(region is not None, f"aws:region is required (e.g. ap-northeast-1) in {stack_file}")
    _require(bool(region and _REGION.match(region)), f"aws:region must be an AWS region such as ap-northeast-1 (got {region!r}) in {stack_file}")

    top = _Section(
        PROJECT,
        {k: obj(k) for k in ("canaryWeight", "alarmEmails") if config.get(k) is not None},
        stack_file,
        ("canaryWeight", "alarmEmails"),
        sep=":",
    )
    canary_weight = top.integer("canaryWeight", 0, 0, 100)
    alarm_emails = top.texts("alarmEmails", [], _EMAIL, "e-mail addresses")

    monolith_stack = _monolith_stack(section("monolithStack", ("name", "outputs")))
    net = section("network", ("vpcId", "serviceSubnetIds", "dbSubnetIds"))
    mono = section(
        "monolith",
        (
            "listenerArn",
            "albSecurityGroupId",
            "targetGroupArn",
            "dbHost",
            "dbPort",
            "dbName",
            "dbSecurityGroupId",
            "dbSecretArn",
            "dbAppUser",
        ),
    )
    existing = _ExistingReader(monolith_stack)
    network_fields = dict(
        vpc_id=existing.text(net, "vpcId", _VPC_ID, "a VPC id (vpc-...)"),
        service_subnet_ids=existing.texts(net, "serviceSubnetIds", _SUBNET_ID, "subnet ids (subnet-...)", 2),
        db_subnet_ids=existing.texts(net, "dbSubnetIds", _SUBNET_ID, "subnet ids (subnet-...)", 2),
    )
    monolith_fields = dict(
        listener_arn=existing.text(mono, "listenerArn", _LISTENER_ARN, "an ALB listener ARN"),
        alb_security_group_id=existing.text(mono, "albSecurityGroupId", _SG_ID, "a security group id (sg-...)"),
        target_group_arn=existing.text(mono, "targetGroupArn", _TARGET_GROUP_ARN, "a target group ARN"),
        db_host=existing.text(mono, "dbHost", _HOST, "a host name"),
        db_port=mono.integer("dbPort", 5432, 1, 65535),
        db_name=mono.text("dbName", "myteacher_production", _IDENT, "a PostgreSQL identifier"),
        db_security_group_id=existing.text(mono, "dbSecurityGroupId", _SG_ID, "a security group id (sg-...)"),
        db_secret_arn=existing.text(mono, "dbSecretArn", _SECRET_ARN, "a Secrets Manager secret ARN"),
        db_app_user=mono.text("dbAppUser", "myteacher_app_user", _IDENT, "a PostgreSQL role name"),
    )

    d = section(
        "db",
        (
            "instanceClass",
            "allocatedStorage",
            "maxAllocatedStorage",
            "multiAz",
            "backupRetentionDays",
            "backupWindow",
            "maintenanceWindow",
            "deletionProtection",
            "performanceInsightsRetentionDays",
            "monitoringInterval",
            "logRetentionDays",
            "name",
            "username",
        ),
    )
    allocated = d.integer("allocatedStorage", 20, 20, 65536)
    db = DbConfig(
        instance_class=d.text("instanceClass", "db.t3.micro", _DB_CLASS, "an RDS instance class such as db.t3.medium"),
        allocated_storage=allocated,
        max_allocated_storage=d.integer("maxAllocatedStorage", allocated * 2, allocated, 65536),
        multi_az=d.boolean("multiAz", True),
        backup_retention_days=d.integer("backupRetentionDays", 7, 1, 35),
        backup_window=d.text("backupWindow", "17:00-17:30", _WINDOW, "a UTC window hh:mm-hh:mm"),
        maintenance_window=d.text("maintenanceWindow", "sun:18:00-sun:18:30", _MAINT_WINDOW, "a UTC window ddd:hh:mm-ddd:hh:mm"),
        deletion_protection=d.boolean("deletionProtection", True),
        performance_insights_retention_days=d.integer("performanceInsightsRetentionDays", 7, 7, 731),
        monitoring_interval=d.choice("monitoringInterval", RDS_MONITORING_INTERVALS, 60),
        log_retention_days=d.choice("logRetentionDays", _LOG_RETENTION_DAYS, 30),
        name=d.text("name", "task_service", _IDENT, "a PostgreSQL identifier"),
        username=d.text("username", "task_service_user", _IDENT, "a PostgreSQL role name"),
    )
    pi_days = db.performance_insights_retention_days
    _require(
        pi_days == 7 or pi_days % 31 == 0,
        f"{PROJECT}:db.performanceInsightsRetentionDays must be 7 or a multiple of 31 up to 731 (got {pi_days}) in {stack_file}",
    )

    s = section("service", ("image", "cpu", "memory", "containerPort", "desiredCount", "healthCheckPath", "logRetentionDays"))
    cpu = s.choice("cpu", tuple(FARGATE_MEMORY), 512)
    memory = s.integer("memory", 1024, 512, 30720)
    _require(
        memory in FARGATE_MEMORY[cpu],
        f"{PROJECT}:service.memory must be one of Fargate's sizes for cpu {cpu} "
        f"({FARGATE_MEMORY[cpu].start}-{FARGATE_MEMORY[cpu].stop - 1} in steps of {FARGATE_MEMORY[cpu].step}) (got {memory}) in {stack_file}",
    )
    a = section("autoscaling", ("min", "max", "cpuTarget", "memoryTarget", "scaleOutCooldown", "scaleInCooldown"))
    autoscaling = AutoscalingConfig(
        min=a.integer("min", 2, 1, 100),
        max=a.integer("max", 10, 1, 100),
        cpu_target=a.integer("cpuTarget", 70, 10, 95),
        memory_target=a.integer("memoryTarget", 70, 10, 95),
        scale_out_cooldown=a.integer("scaleOutCooldown", 60, 0, 3600),
        scale_in_cooldown=a.integer("scaleInCooldown", 300, 0, 3600),
    )
    _require(
        autoscaling.max >= autoscaling.min,
        f"{PROJECT}:autoscaling.max must be >= min (min={autoscaling.min}, max={autoscaling.max}) in {stack_file}",
    )
    service = ServiceConfig(
        image=s.text("image"),
        cpu=cpu,
        memory=memory,
        container_port=s.integer("containerPort", 3001, 1, 65535),
        desired_count=s.integer("desiredCount", 2, 0, 100),
        health_check_path=s.text("healthCheckPath", "/health", re.compile(r"^/\S*$"), "a path starting with /"),
        log_retention_days=s.choice("logRetentionDays", _LOG_RETENTION_DAYS, 30),
    )
    _require(
        autoscaling.min <= service.desired_count <= autoscaling.max,
        f"{PROJECT}:service.desiredCount must be within autoscaling min..max "
        f"({autoscaling.min}..{autoscaling.max}) (got {service.desired_count}) in {stack_file}",
    )

    r = section("route", ("pathPatterns", "priority"))
    route = RouteConfig(
        path_patterns=r.texts("pathPatterns", ["/api/tasks", "/api/tasks/*"], re.compile(r"^/[\w\-./*?]*$"), "URL paths such as /api/tasks/*", 1),
        priority=r.integer("priority", 10, 1, 50000),
    )
    _require(
        len(route.path_patterns) <= 5,
        f"{PROJECT}:route.pathPatterns must list at most 5 patterns (an ALB condition limit) (got {len(route.path_patterns)}) in {stack_file}",
    )

    m = section("dms", ("enabled", "instanceClass", "allocatedStorage", "multiAz", "schema", "tables", "migrationType", "createAccountRoles"))
    dms = DmsConfig(
        enabled=m.boolean("enabled", False),
        instance_class=m.text("instanceClass", "dms.t3.medium", _DMS_CLASS, "a DMS instance class such as dms.t3.medium"),
        allocated_storage=m.integer("allocatedStorage", 50, 5, 6144),
        multi_az=m.boolean("multiAz", db.multi_az),
        schema=m.text("schema", "public", _IDENT, "a PostgreSQL schema name"),
        tables=m.texts("tables", list(TABLES), _IDENT, "PostgreSQL table names", 1),
        migration_type=m.choice("migrationType", DMS_MIGRATION_TYPES, "full-load-and-cdc"),
        create_account_roles=m.boolean("createAccountRoles", False),
    )

    c = section("cognito", ("userPoolId", "clientId"))
    cognito = CognitoConfig(
        user_pool_id=c.text("userPoolId", pattern=_USER_POOL_ID, what="a Cognito user pool id such as ap-northeast-1_AbC123"),
        client_id=c.text("clientId", pattern=_CLIENT_ID, what="a Cognito app client id (lower-case letters and digits)"),
    )

    tags = obj("tags") or {}
    _require(
        isinstance(tags, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()),
        f"{PROJECT}:tags must be a map of string keys to string values (got {tags!r}) in {stack_file}",
    )
    bad_tag = next((k for k in tags if k.lower().startswith("aws:")), None)
    _require(bad_tag is None, f"{PROJECT}:tags.{bad_tag} must not start with 'aws:' (reserved by AWS) in {stack_file}")

    # Only now, with every key valid, may the StackReference (a resource) be declared.
    network = Network(**existing.materialize(network_fields))
    monolith = Monolith(**existing.materialize(monolith_fields))
    return StackConfig(
        stack=stack,
        region=region or "",
        canary_weight=canary_weight,
        network=network,
        monolith=monolith,
        db=db,
        service=service,
        autoscaling=autoscaling,
        route=route,
        dms=dms,
        cognito=cognito,
        alarm_emails=alarm_emails,
        tags=dict(tags),
        monolith_stack=monolith_stack,
    )


def _monolith_stack(section: _Section) -> MonolithStackRef | None:
    if not section.value:
        return None
    name = section.text("name", pattern=_STACK_NAME, what="a fully qualified stack name org/project/stack")
    outputs = section.raw("outputs", {})
    if not isinstance(outputs, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in outputs.items()):
        section.fail(f"{section.key}.outputs", "must map setting names to output names", outputs)
    return MonolithStackRef(name=name, outputs=dict(outputs))


@dataclass(frozen=True)
class _FromStack:
    output_name: str


class _ExistingReader:
    """Takes an existing-estate id from explicit config, else from the monolith stack's outputs."""

    def __init__(self, ref: MonolithStackRef | None):
        self.ref = ref
        self._stack_reference: pulumi.StackReference | None = None

    def _pending(self, section: _Section, name: str) -> _FromStack | None:
        if section.has(name) or self.ref is None:
            return None
        return _FromStack(self.ref.outputs.get(name, name))

    def text(self, section: _Section, name: str, pattern: re.Pattern[str], what: str) -> Any:
        return self._pending(section, name) or section.text(name, pattern=pattern, what=what)

    def texts(self, section: _Section, name: str, pattern: re.Pattern[str], what: str, min_items: int) -> Any:
        return self._pending(section, name) or section.texts(name, pattern=pattern, what=what, min_items=min_items)

    def materialize(self, fields: dict[str, Any]) -> dict[str, Any]:
        pending = {k: v for k, v in fields.items() if isinstance(v, _FromStack)}
        if not pending or self.ref is None:
            return fields
        if self._stack_reference is None:
            self._stack_reference = pulumi.StackReference("monolith", stack_name=self.ref.name)
        ref = self._stack_reference
        return {**fields, **{k: ref.require_output(v.output_name) for k, v in pending.items()}}
