"""The policy config the CLI sends a pack: the `--policy-pack-config` file, reconciled and validated as the CLI does.

Mirrors ReconcilePolicyPackConfig (pkg/resource/analyzer/config.go): each policy starts from its schema defaults
and the pack's own level, then the pack's initial config, then the file, where an `all` entry sets every policy's
level; the result must validate against each policy's config schema or the CLI refuses it.

Stricter than the CLI in two ways, so a typo never silently falls back to a default: a policy name the pack does
not have, and a key a policy's schema does not declare, are errors here. The CLI accepts both without a word (it
validates with the schema's properties only, which allow extra keys, and copies unknown names through).
Errors are one line naming the file: the first problem, and how many more there are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, TypedDict, Union

import jsonschema
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2 as pb

from preview.pack_process import PolicyPackError
from task_service.untrusted import loads, quote, read_text

LEVELS = {
    pb.ADVISORY: "advisory",
    pb.MANDATORY: "mandatory",
    pb.REMEDIATE: "remediate",
    pb.DISABLED: "disabled",
}
LEVEL_VALUES = {name: value for value, name in LEVELS.items()}

PathLike = Union[str, "os.PathLike[str]"]
GivenConfig = dict[str, dict[str, Any]]
"""Policy name -> {enforcementLevel?, config key: value}, as the file states it."""


class PolicyEntry(TypedDict):
    enforcementLevel: str
    properties: dict[str, Any]


ReconciledConfig = dict[str, PolicyEntry]
"""Policy name -> its level and every config value, as Configure receives them."""


class PolicyConfigError(PolicyPackError):
    """The policy config does not validate against the pack's schemas (the CLI refuses it too)."""


def source_name(source: Union[PathLike, Mapping[str, Any], None]) -> str:
    """How messages name the config: the file, or "the policy config" for a dict."""
    return f"policy config {source}" if isinstance(source, (str, os.PathLike)) else "the policy config"


def load_policy_config(source: Union[PathLike, Mapping[str, Any], None]) -> GivenConfig:
    """Parse the CLI's `--policy-pack-config` format: name -> level string, or {enforcementLevel?, key: value}."""
    if source is None:
        return {}
    what = source_name(source)
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        text = read_text(Path(source), what)
        raw = loads(text, what) if text.strip() else {}
    if not isinstance(raw, dict):
        raise PolicyConfigError(f"{what} must be a JSON object of policy name -> level or settings (got {quote(raw)})")
    out: GivenConfig = {}
    for name, value in raw.items():
        if isinstance(value, str):
            entry: dict[str, Any] = {"enforcementLevel": value}
        elif isinstance(value, Mapping):
            entry = dict(value)
        else:
            raise PolicyConfigError(f"{what}: {quote(name)}: {quote(value)} is not a valid value; must be a string or object")
        level = entry.get("enforcementLevel")
        if level is not None and level not in LEVEL_VALUES:
            raise PolicyConfigError(
                f"{what}: {quote(name)}: enforcement level {quote(level)} is not one of {', '.join(LEVEL_VALUES)}")
        out[name] = entry
    return out


def reconcile_config(
    info: pb.AnalyzerInfo, given: Mapping[str, Mapping[str, Any]], source: str = "the policy config"
) -> ReconciledConfig:
    """What the CLI sends to Configure: schema defaults, then the pack's initial config, then `given` (`source` names
    it in messages)."""
    result: ReconciledConfig = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        props = json_format.MessageToDict(policy.configSchema.properties)
        schemas[policy.name] = {"type": "object", "properties": props}
        if policy.configSchema.required:
            schemas[policy.name]["required"] = list(policy.configSchema.required)
        defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
        result[policy.name] = {"enforcementLevel": LEVELS[policy.enforcementLevel], "properties": defaults}

    # As in the CLI, an initial-config entry always carries a level: the proto's zero value reads as advisory.
    initial = {
        name: {"enforcementLevel": LEVELS[c.enforcementLevel], **json_format.MessageToDict(c.properties)}
        for name, c in info.initialConfig.items()
    }
    _check_names(schemas, given, source)
    for layer in (initial, given):
        all_level = (layer.get("all") or {}).get("enforcementLevel")
        if all_level:
            for entry in result.values():
                entry["enforcementLevel"] = all_level
        for name, values in layer.items():
            entry = result.setdefault(name, {"enforcementLevel": "advisory", "properties": {}})
            for key, value in values.items():
                if key == "enforcementLevel":
                    entry["enforcementLevel"] = value
                else:
                    entry["properties"][key] = value

    _validate(schemas, result, source)
    return result


def _refuse(source: str, problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PolicyConfigError(f"{source} is invalid: {problems[0]}{more}")


def _check_names(schemas: Mapping[str, Mapping[str, Any]], given: Mapping[str, Mapping[str, Any]], source: str) -> None:
    """Every policy the file names exists (or is `all`), and every key it sets is declared by that policy."""
    known = ", ".join(sorted(schemas))
    problems = []
    for name, values in given.items():
        if name == "all":
            extra = sorted(set(values) - {"enforcementLevel"})
            problems += [f"all: {quote(key)} is not a setting ('all' only takes enforcementLevel)" for key in extra]
        elif name not in schemas:
            problems.append(f"{quote(name)} is not a policy of this pack (expected one of: {known})")
        else:
            declared = set(schemas[name]["properties"]) | {"enforcementLevel"}
            problems += [
                f"{name}: {quote(key)} is not a setting of this policy (expected one of: {', '.join(sorted(declared))})"
                for key in sorted(set(values) - declared)
            ]
    _refuse(source, problems)


def _validate(schemas: Mapping[str, Mapping[str, Any]], config: ReconciledConfig, source: str) -> None:
    errors = []
    for name, schema in schemas.items():
        validator = jsonschema.Draft7Validator(schema)
        entry = config.get(name)
        for error in validator.iter_errors(entry["properties"] if entry else {}):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{name}: {where}: {quote(error.instance)} {_expected(error)}")
    _refuse(source, errors)


def _expected(error: jsonschema.ValidationError) -> str:
    """jsonschema's message without the value it quotes in full ("'x' is not of type 'integer'")."""
    return {
        "type": f"is not of type {error.validator_value!r}",
        "enum": f"is not one of {error.validator_value!r}",
        "minimum": f"is less than the minimum of {error.validator_value!r}",
        "maximum": f"is more than the maximum of {error.validator_value!r}",
    }.get(str(error.validator), f"is not valid ({error.validator} {quote(error.validator_value)})")
