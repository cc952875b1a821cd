"""The vocabulary the components' settings models are written in (pydantic v2).

Each component owns the model of its own config section (ol-infrastructure's pattern); `stack_config` composes
them into the stack file's model and turns validation errors into one line naming the key. Every constraint here
carries the words of its message ("must be a VPC id (vpc-...)"), so the formatter only joins key and text.

Scalars are strict (`true` is never a number, `"5"` never an integer): nested values reach the program as JSON with
their YAML types, and `pulumi config set --path` stores integers and booleans as such. Only the top-level keys,
which the CLI always hands over as strings, parse digits (see `CliInt`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

T = TypeVar("T")


class Settings(BaseModel):
    """A config section: camelCase keys in the stack file, unknown keys refused, immutable once read.

    An explicit null is refused: a setting is "not set" only when its key is left out (`image: ~` would otherwise
    park a live service without a word)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise invalid("must not be null: leave the key out to use its default", str(key))
        return data


def invalid(expected: str, field: str | None = None, got: Any = None, **context: Any) -> PydanticCustomError:
    """A validation error whose message is the expectation ("must be ..."); `field` names a sibling setting when a
    cross-field rule raises it from the model's own validator."""
    ctx: dict[str, Any] = {**context, "field": field, "got": got}
    return PydanticCustomError("setting", expected.replace("{", "{{").replace("}", "}}"), ctx)


def matches(pattern: str, what: str, *, unicode: bool = False) -> AfterValidator:
    """A full match of `pattern` (a trailing newline never slips through), described as `what` in the message.

    ASCII unless `unicode`: `\\d` and `\\w` must not admit Arabic-Indic digits or accented letters AWS refuses.
    """
    compiled = re.compile(pattern, 0 if unicode else re.ASCII)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise invalid(f"must be {what}")
        return value

    return AfterValidator(check)


def one_of(*choices: Any) -> AfterValidator:
    """One of a fixed set of values."""

    def check(value: T) -> T:
        if value not in choices:
            raise invalid(f"must be one of {', '.join(map(str, choices))}")
        return value

    return AfterValidator(check)


def _non_empty(value: str) -> str:
    if not value.strip():
        raise invalid("must be a non-empty string")
    return value


def _unique(values: tuple[T, ...]) -> tuple[T, ...]:
    if len(set(values)) != len(values):
        raise invalid("must not repeat an item")
    return values


def _cli_integer(value: Any) -> Any:
    """Top-level keys arrive as text (`"5"`); whole-number text becomes an int, anything else stays as it is."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


NON_EMPTY = AfterValidator(_non_empty)
UNIQUE = AfterValidator(_unique)

Text = Annotated[StrictStr, NON_EMPTY]
Bool = StrictBool
CliInt = Annotated[StrictInt, BeforeValidator(_cli_integer)]
"""An integer at the top level of the namespace, which the CLI always hands over as text."""

IDENTIFIER = r"[a-z_][a-z0-9_]{0,62}"
"""A PostgreSQL identifier as we allow it: lower case, no quoting needed."""
Identifier = Annotated[StrictStr, NON_EMPTY, matches(IDENTIFIER, "a PostgreSQL identifier")]
VpcId = Annotated[StrictStr, NON_EMPTY, matches(r"vpc-[0-9a-f]{8,17}", "a VPC id (vpc-...)")]
SubnetIds = Annotated[
    tuple[Annotated[StrictStr, matches(r"subnet-[0-9a-f]{8,17}", "subnet ids (subnet-...)")], ...],
    Field(min_length=2),
    UNIQUE,
]
"""At least two subnets (two AZs), never the same one twice."""
SecurityGroupId = Annotated[StrictStr, NON_EMPTY, matches(r"sg-[0-9a-f]{8,17}", "a security group id (sg-...)")]
ListenerPriority = Annotated[StrictInt, Field(ge=1, le=50000)]
"""A listener rule's priority as ALB accepts it (lower numbers are evaluated first)."""
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
"""The retention periods CloudWatch Logs accepts."""
