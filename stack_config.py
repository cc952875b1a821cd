"""Typed, validated stack configuration for the task-service program.

Every key is read and checked here, before any resource is declared, so a typo or an out-of-range value stops
`pulumi up` with one line naming the key, the stack file and what is expected, instead of a half-built estate or
a provider error ten minutes in. Each component owns the pydantic model of its own section (`DatabaseSettings`
in components/database.py, ...); this module composes them into the model of the `task-service:` namespace, adds
the rules that span sections, and formats the first validation error. The existing network and monolith come
either from explicit ids or from the monolith stack's outputs (`task-service:monolithStack`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Collection, Mapping, Sequence

import pulumi
from pydantic import BaseModel, Field, StrictInt, StrictStr, TypeAdapter, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pulumi.runtime import config as runtime_config

from components.alb_route import RouteSettings
from components.database import DatabaseSettings
from components.dms_replication import DmsSettings
from components.fargate_service import AutoscalingSettings, CognitoSettings, ServiceSettings
from components.loadtest_route import LoadTestRouteSettings
from components.secret_rotation import SecretsSettings
from components.settings import (
    IDENTIFIER,
    LOG_RETENTION_DAYS,
    NON_EMPTY,
    UNIQUE,
    Bool,
    CliInt,
    Identifier,
    SecurityGroupId,
    Settings,
    SubnetIds,
    Text,
    VpcId,
    invalid,
    matches,
    one_of,
)
from task_service.canary import CANARY_TAG
from task_service.contract import REGION_NAME
from task_service.naming import PREFIX_MAX_LENGTH, PREFIX_PATTERN, Naming
from task_service.untrusted import quote

PROJECT = "task-service"
NAMESPACES = (PROJECT, "aws", "pulumi")
"""Config namespaces this program reads (`pulumi:` holds the engine's own keys); any other is a typo."""
MANAGED_TAGS = ("ManagedBy", "PulumiStack")
"""Tags the program sets on every resource."""
RESERVED_TAGS = (*MANAGED_TAGS, "Name", CANARY_TAG)
"""Tags the program sets itself (`Name` per resource, the canary tag on the weighted rule); a user tag of the same
name would silently replace ours or be silently dropped."""
MAX_TAGS = 50 - len(RESERVED_TAGS)
"""AWS allows 50 tags per resource; the program adds up to four of its own."""
TAG_KEY = r"[\w +\-=.:/@]{1,128}"
TAG_VALUE = r"[\w +\-=.:/@]{0,256}"
"""AWS tag rules: letters, digits, spaces and `+ - = . _ : / @`; keys at most 128 characters, values 256."""

_ARN = r"arn:aws[a-z-]*:"
ListenerArn = Annotated[
    StrictStr,
    NON_EMPTY,
    matches(_ARN + r"elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[\w-]+/[0-9a-f]+/[0-9a-f]+", "an ALB listener ARN"),
]
TargetGroupArn = Annotated[
    StrictStr, NON_EMPTY, matches(_ARN + r"elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[\w-]+/[0-9a-f]+", "a target group ARN")
]
SecretArn = Annotated[
    StrictStr, NON_EMPTY, matches(_ARN + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+", "a Secrets Manager secret ARN")
]
Host = Annotated[StrictStr, NON_EMPTY, matches(r"[A-Za-z0-9.-]+", "a host name")]
Email = Annotated[
    StrictStr, matches(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", "e-mail addresses")
]
TagKey = Annotated[StrictStr, matches(TAG_KEY, "a tag key: letters, digits, spaces, + - = . _ : / @, at most 128", unicode=True)]
TagValue = Annotated[
    StrictStr, matches(TAG_VALUE, "a tag value: letters, digits, spaces, + - = . _ : / @, at most 256", unicode=True)
]


class NetworkSettings(Settings):
    """`task-service:network`: the monolith's VPC and subnets (or read from the monolith stack)."""

    vpc_id: VpcId | None = None
    service_subnet_ids: SubnetIds | None = None
    """Private subnets in >= 2 AZs for the service and DMS."""
    db_subnet_ids: SubnetIds | None = None
    """Isolated subnets in >= 2 AZs for the database."""
    nat_gateway: Bool = True
    """The private subnets reach AWS APIs through a NAT gateway; false adds a Secrets Manager endpoint for rotation."""


class MonolithSettings(Settings):
    """`task-service:monolith`: the ALB and database the Task Service borrows from (never created here)."""

    listener_arn: ListenerArn | None = None
    alb_security_group_id: SecurityGroupId | None = None
    target_group_arn: TargetGroupArn | None = None
    db_host: Host | None = None
    db_port: StrictInt = Field(5432, ge=1, le=65535)
    db_name: Identifier = "myteacher_production"
    db_security_group_id: SecurityGroupId | None = None
    db_secret_arn: SecretArn | None = None
    db_app_user: Annotated[StrictStr, NON_EMPTY, matches(IDENTIFIER, "a PostgreSQL role name")] = "myteacher_app_user"


REFERENCEABLE: dict[str, tuple[str, ...]] = {
    "network": ("vpc_id", "service_subnet_ids", "db_subnet_ids"),
    "monolith": ("listener_arn", "alb_security_group_id", "target_group_arn", "db_host", "db_security_group_id", "db_secret_arn"),
}
"""Settings (by field name; the stack file spells them in camelCase) the monolith stack's outputs may supply when
the stack file leaves them out."""


class MonolithStackSettings(Settings):
    """`task-service:monolithStack`: where to read the existing estate's ids."""

    name: Annotated[StrictStr, NON_EMPTY, matches(r"[\w.-]+/[\w.-]+/[\w.-]+", "a fully qualified stack name org/project/stack")]
    outputs: dict[StrictStr, Text] = {}
    """Setting name -> output name in that stack, where they differ."""

    @model_validator(mode="after")
    def _known_settings(self) -> "MonolithStackSettings":
        known = [to_camel(name) for names in REFERENCEABLE.values() for name in names]
        unknown = sorted(set(self.outputs) - set(known))
        if unknown:
            raise invalid(f"is not a known setting (expected one of: {', '.join(known)})", f"outputs.{unknown[0]}")
        return self


ENVIRONMENTS = ("production", "development")
PRODUCTION_LOG_RETENTION_DAYS = 365


class StackFile(Settings):
    """The whole `task-service:` namespace of a stack file."""

    environment: Annotated[StrictStr, one_of(*ENVIRONMENTS)] = "production"
    """What the stack holds; production stacks must keep logs a year, keep deleted secrets restorable and wait for
    deployments to finish. Unset means production: a new stack gets the strict rules until it says otherwise."""
    log_retention_days: Annotated[CliInt, one_of(*LOG_RETENTION_DAYS)] = PRODUCTION_LOG_RETENTION_DAYS
    """Every log group of the stack (database, service, DMS, Container Insights, rotation functions)."""
    canary_weight: CliInt = Field(0, ge=0, le=100)
    alarm_emails: Annotated[tuple[Email, ...], UNIQUE] = ()
    name_prefix: Annotated[
        StrictStr,
        Field(max_length=PREFIX_MAX_LENGTH),
        matches(PREFIX_PATTERN, "a lower-case name prefix such as task-service-staging"),
    ] | None = None
    """Replaces the derived prefix of every physical name (prod: `task-service`, others: `task-service-<stack>`)."""
    monolith_stack: MonolithStackSettings | None = None
    network: NetworkSettings
    monolith: MonolithSettings
    db: DatabaseSettings
    service: ServiceSettings
    autoscaling: AutoscalingSettings
    route: RouteSettings
    test_route: LoadTestRouteSettings
    dms: DmsSettings
    cognito: CognitoSettings
    secrets: SecretsSettings
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] = {}
    """At most MAX_TAGS: with the program's own tags a resource stays within AWS's 50."""

    @model_validator(mode="after")
    def _across_sections(self) -> "StackFile":
        scaling, desired = self.autoscaling, self.service.desired_count
        if not scaling.min <= desired <= scaling.max:
            raise invalid(f"must be within autoscaling min..max ({scaling.min}..{scaling.max})", "service.desiredCount", desired)
        if self.service.parked and self.canary_weight:
            raise invalid("must be 0 until service.image is set (no task serves /api/tasks yet)", "canaryWeight", self.canary_weight)
        if self.environment == "production":
            self._production_rules()
        if self.test_route.enabled:
            self._test_route_rules()
        if self.monolith_stack is None:
            for section, names in REFERENCEABLE.items():
                missing = next((name for name in names if getattr(getattr(self, section), name) is None), None)
                if missing:
                    raise invalid(
                        "is required (or set monolithStack to read it from the monolith's stack)", f"{section}.{to_camel(missing)}"
                    )
        for key in self.tags:
            if key.lower().startswith("aws:"):
                raise invalid("must not start with 'aws:' (reserved by AWS)", f"tags.{key}")
            if key in RESERVED_TAGS:
                raise invalid(f"must not be set: the program sets {', '.join(RESERVED_TAGS)} itself", f"tags.{key}")
        return self

    def _test_route_rules(self) -> None:
        """The test route must reach a running service, before the weighted rule, within ALB's condition limits."""
        route, test_route = self.route, self.test_route
        if self.service.parked:
            raise invalid("must be false until service.image is set (no task would answer)", "testRoute.enabled", True)
        if test_route.priority >= route.priority:
            raise invalid(
                f"must be lower than route.priority ({route.priority}): ALB evaluates the lowest number first",
                "testRoute.priority",
                test_route.priority,
            )

    def _production_rules(self) -> None:
        """What a production stack may not relax (`environment: development` may)."""
        if self.log_retention_days < PRODUCTION_LOG_RETENTION_DAYS:
            raise invalid(
                f"must be at least {PRODUCTION_LOG_RETENTION_DAYS} in a production stack (environment: production)",
                "logRetentionDays",
                self.log_retention_days,
            )
        if self.secrets.recovery_window_days == 0:
            raise invalid("must be between 7 and 30 in a production stack: deleted credentials stay restorable", "secrets.recoveryWindowDays", 0)
        if self.service.image is not None and _tag_of(self.service.image) == "latest":
            raise invalid(
                "must name a version tag or digest in a production stack, not latest (a deploy must pin what runs)",
                "service.image",
                self.service.image,
            )
        if not self.service.wait_for_steady_state:
            raise invalid(
                "must be true in a production stack: a rolled-back deployment must fail `pulumi up`",
                "service.waitForSteadyState",
                False,
            )


SECTIONS = ("network", "monolith", "db", "service", "autoscaling", "route", "testRoute", "dms", "cognito", "secrets")
"""Structured keys that may be left out (or null, which the CLI hands over as "") entirely: every setting in them
then takes its default. Null means "not set" nowhere else."""


def _tag_of(image: str) -> str | None:
    """The tag of an image reference (`registry:5000/repo:tag@sha256:...` -> `tag`), None when it has none."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


class ConfigError(pulumi.RunError):
    """A stack configuration problem. RunError makes the engine print the message without a traceback."""


@dataclass(frozen=True)
class Network:
    vpc_id: pulumi.Input[str]
    service_subnet_ids: pulumi.Input[Sequence[str]]
    db_subnet_ids: pulumi.Input[Sequence[str]]
    nat_gateway: bool


@dataclass(frozen=True)
class Monolith:
    """The monolith's ALB and database, from config or the monolith stack's outputs."""

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
class StackConfig:
    """The whole stack configuration, validated, with the settings each component takes."""

    stack: str
    region: str
    account: str
    """The one account of `aws:allowedAccountIds`."""
    partition: str
    naming: Naming
    environment: str
    log_retention_days: int
    canary_weight: int
    alarm_emails: tuple[str, ...]
    tags: Mapping[str, str]
    """The user's tags plus ManagedBy and PulumiStack."""
    network: Network
    monolith: Monolith
    db: DatabaseSettings
    service: ServiceSettings
    autoscaling: AutoscalingSettings
    route: RouteSettings
    test_route: LoadTestRouteSettings
    dms: DmsSettings
    cognito: CognitoSettings
    secrets: SecretsSettings


def _config_keys() -> set[str]:
    """Every namespaced key the engine handed over (so a misspelt one fails instead of being ignored)."""
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def _value(raw: str) -> Any:
    """The CLI hands structured values over as JSON and every top-level scalar as text."""
    if raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = (annotation, *typing.get_args(annotation))
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _field_at(path: Sequence[Any]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model holding the setting at `path` (camelCase keys) and the setting's field, where they exist."""
    model: type[BaseModel] | None = StackFile
    info: FieldInfo | None = None
    for index, part in enumerate(path):
        if model is None:
            return None, None
        info = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if index == len(path) - 1:
            return model, info
        model = _model_of(info.annotation) if info is not None else None
    return model, info


def _bounds(path: Sequence[Any]) -> str:
    _, info = _field_at(path)
    lo = next((m.ge for m in (info.metadata if info else []) if hasattr(m, "ge")), None)
    hi = next((m.le for m in (info.metadata if info else []) if hasattr(m, "le")), None)
    if lo is not None and hi is not None:
        return f"must be between {lo} and {hi}"
    return f"must be >= {lo}" if lo is not None else f"must be <= {hi}"


_EXPECTED = {
    "missing": "is required",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a non-empty string",
    "list_type": "must be a list of strings",
    "tuple_type": "must be a list of strings",
    "dict_type": "must be a map of settings",
    "model_type": "must be a map of settings",
    "model_attributes_type": "must be a map of settings",
}


KEY_PART_LIMIT = 40
"""A key in a message is cut too: a bad tag key is quoted in its own message."""


def describe(error: ErrorDetails, where: str, secret_keys: Collection[str] = ()) -> str:
    """One line: the namespaced key, what is expected, the (shortened) value given, and where it came from (the
    stack file, or a stack's output). The value of a key in `secret_keys` (top level) is never shown."""
    path = [part for part in error["loc"]]
    ctx = dict(error.get("ctx") or {})
    got = error.get("input")
    if ctx.get("field"):
        path += str(ctx["field"]).split(".")
        got = ctx.get("got")
    if path and path[-1] == "[key]":  # pydantic's marker for a bad key of a map
        path = path[:-1]
    items = bool(path) and isinstance(path[-1], int)
    if items:
        path = path[:-1]
    kind = error["type"]
    if kind == "setting":
        expected = error["msg"]
    elif kind == "extra_forbidden":
        model, _ = _field_at(path)
        known = [f.alias or n for n, f in model.model_fields.items()] if model else []
        what = "key" if len(path) == 1 else "setting"
        expected, got = f"is not a known {what} (expected one of: {', '.join(known)})", None
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        expected = _bounds(path)
    elif kind == "too_short":
        expected = f"must list at least {ctx.get('min_length')} item(s)"
    elif kind == "too_long":
        expected = f"must list at most {ctx.get('max_length')} item(s)"
    else:
        expected = _EXPECTED.get(kind, f"is not valid ({error['msg']})")
    if kind == "missing":
        got = None
    key = f"{PROJECT}:{'.'.join(_shortened(str(part)) for part in path)}"
    secret = bool(path) and str(path[0]) in secret_keys
    shown = "" if got is None else " (got a secret value)" if secret else f" (got {quote(got)})"
    return f"{key} {'items ' if items else ''}{expected}{shown} in {where}"


def _shortened(part: str) -> str:
    return part if len(part) <= KEY_PART_LIMIT else part[: KEY_PART_LIMIT - 3] + "..."


def _region(aws_config: pulumi.Config, stack_file: str) -> tuple[str, str]:
    """The region and the one account the stack deploys into (`aws:allowedAccountIds`, which the provider enforces).

    The key and topic policies name the account, so the stack must pin exactly one: the provider then refuses any
    other credentials, and a preview knows every policy without asking AWS.
    """
    region = aws_config.get("region")
    if region is None:
        raise ConfigError(f"aws:region is required (e.g. ap-northeast-1) in {stack_file}")
    if not re.fullmatch(REGION_NAME, region, re.ASCII):
        raise ConfigError(f"aws:region must be an AWS region such as ap-northeast-1 (got {quote(region)}) in {stack_file}")
    accounts = aws_config.get("allowedAccountIds")
    parsed = None if accounts is None else _value(accounts)
    if not (isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], str) and re.fullmatch(r"[0-9]{12}", parsed[0])):
        shown = "" if parsed is None else f" (got {quote(parsed)})"
        raise ConfigError(
            f"aws:allowedAccountIds must list exactly one 12-digit AWS account id, the account this stack deploys into"
            f"{shown} in {stack_file}"
        )
    return region, parsed[0]


def partition_of(region: str) -> str:
    """The AWS partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def parse(values: Mapping[str, Any], stack_file: str, secret_keys: Collection[str] = ()) -> StackFile:
    """Validate the namespace's values (camelCase keys, JSON-decoded); raises ConfigError naming the first bad key.

    `secret_keys` are the top-level keys set with `--secret`: their values never appear in a message."""
    given = dict(values)
    for section in SECTIONS:
        if given.get(section) in (None, ""):
            given[section] = {}
    try:
        return StackFile.model_validate(given)
    except ValidationError as err:
        raise ConfigError(describe(err.errors()[0], stack_file, secret_keys)) from None


def _check_namespaces(keys: Collection[str], stack_file: str) -> None:
    """A key in a namespace nothing reads (`task-servce:db`, `taskservice:db`) would be ignored without a word."""
    for key in sorted(keys):
        namespace = key.split(":", 1)[0]
        if namespace not in NAMESPACES:
            raise ConfigError(
                f"{quote(key)} is in namespace {quote(namespace)}, which this program does not read (expected "
                f"{', '.join(n + ':' for n in NAMESPACES)}; a misspelt project name?) in {stack_file}"
            )


def load(config: pulumi.Config | None = None, aws_config: pulumi.Config | None = None, stack: str | None = None) -> StackConfig:
    """Read and validate the whole stack configuration (raises ConfigError naming the first bad key)."""
    config = config or pulumi.Config(PROJECT)
    stack = stack or pulumi.get_stack()
    stack_file = f"Pulumi.{stack}.yaml"
    keys = _config_keys()
    _check_namespaces(keys, stack_file)
    region, account = _region(aws_config or pulumi.Config("aws"), stack_file)
    names = sorted(key.split(":", 1)[1] for key in keys if key.startswith(f"{PROJECT}:"))
    raw = {key: config.get(key) for key in names}
    secret = {key for key in names if runtime_config.is_config_secret(f"{PROJECT}:{key}")}
    settings = parse({key: _value(value) for key, value in raw.items() if value is not None}, stack_file, secret)
    # Only now, with every key valid, may the StackReference (a resource) be declared.
    network, monolith = _existing_estate(settings)
    dms = settings.dms
    if dms.multi_az is None:
        dms = dms.model_copy(update={"multi_az": settings.db.multi_az})
    return StackConfig(
        stack=stack,
        region=region,
        account=account,
        partition=partition_of(region),
        naming=Naming.for_stack(PROJECT, stack, settings.name_prefix),
        environment=settings.environment,
        log_retention_days=settings.log_retention_days,
        canary_weight=settings.canary_weight,
        alarm_emails=settings.alarm_emails,
        tags={**settings.tags, "ManagedBy": "pulumi", "PulumiStack": f"{PROJECT}/{stack}"},
        network=network,
        monolith=monolith,
        db=settings.db,
        service=settings.service,
        autoscaling=settings.autoscaling,
        route=settings.route,
        test_route=settings.test_route,
        dms=dms,
        cognito=settings.cognito,
        secrets=settings.secrets,
    )


def _referenced(reference: pulumi.StackReference, ref: MonolithStackSettings, section: str, name: str) -> pulumi.Output[Any]:
    """An output of the monolith's stack, validated exactly like the setting `section.name` (field name) it stands in
    for: a missing output, or one that is not what the setting expects, stops the program with one line naming the
    output and the stack."""
    key = to_camel(name)
    output_name = ref.outputs.get(key, key)
    raw = reference.get_output(output_name)
    _, info = _field_at([section, key])
    assert info is not None  # REFERENCEABLE names fields of these sections
    setting = next(t for t in typing.get_args(info.annotation) if t is not type(None))
    adapter: TypeAdapter[Any] = TypeAdapter(setting)
    where = f"output {quote(output_name)} of stack {ref.name}"

    async def checked() -> Any:
        value = await raw.future()
        if not await raw.is_known():
            return value
        if value is None:
            raise ConfigError(
                f"{PROJECT}:{section}.{key} is read from {where}, which does not exist (set {section}.{key}, or map it"
                f" with monolithStack.outputs.{key})"
            )
        try:
            adapter.validate_python(value)
        except ValidationError as err:
            error = err.errors()[0]
            error["loc"] = (section, key, *error["loc"])
            raise ConfigError(describe(error, where, {section} if await raw.is_secret() else ())) from None
        return value

    known, secret = asyncio.ensure_future(raw.is_known()), asyncio.ensure_future(raw.is_secret())
    return pulumi.Output(raw.resources(), asyncio.ensure_future(checked()), known, secret)


def _existing_estate(settings: StackFile) -> tuple[Network, Monolith]:
    """Explicit ids as given; the rest from the monolith stack's outputs (one StackReference, declared only if needed)."""
    explicit: dict[str, dict[str, Any]] = {section: getattr(settings, section).model_dump() for section in REFERENCEABLE}
    ref_settings = settings.monolith_stack
    pending = [(s, n) for s, names in REFERENCEABLE.items() for n in names if explicit[s][n] is None]
    if pending and ref_settings is not None:
        reference = pulumi.StackReference("monolith", stack_name=ref_settings.name)
        for section, name in pending:
            explicit[section][name] = _referenced(reference, ref_settings, section, name)
    net, mono = explicit["network"], explicit["monolith"]
    network = Network(**{name: net[name] for name in REFERENCEABLE["network"]}, nat_gateway=settings.network.nat_gateway)
    monolith = Monolith(**{field.name: mono[field.name] for field in dataclasses.fields(Monolith)})
    return network, monolith
