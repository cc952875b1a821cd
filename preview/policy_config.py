"""The policy config the CLI sends a pack: the `--policy-pack-config` file, reconciled and validated as the CLI does.

Mirrors ReconcilePolicyPackConfig (pkg/resource/analyzer/config.go): each policy starts from its schema defaults
and the pack's own level, then the pack's initial config, then the file, where an `all` entry sets every policy's
level; the result must validate against each policy's config schema or the CLI refuses it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, TypedDict, Union

import jsonschema
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2 as pb

from preview.pack_process import PolicyPackError

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


def load_policy_config(source: Union[PathLike, Mapping[str, Any], None]) -> GivenConfig:
    """Parse the CLI's `--policy-pack-config` format: name -> level string, or {enforcementLevel?, key: value}."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        text = Path(source).read_text()
        raw = json.loads(text) if text.strip() else {}
    out: GivenConfig = {}
    for name, value in raw.items():
        if isinstance(value, str):
            entry: dict[str, Any] = {"enforcementLevel": value}
        elif isinstance(value, Mapping):
            entry = dict(value)
        else:
            raise PolicyConfigError(f"parsing {name!r}: {value!r} is not a valid value; must be a string or object")
        level = entry.get("enforcementLevel")
        if level is not None and level not in LEVEL_VALUES:
            raise PolicyConfigError(f"parsing enforcement level for {name!r}: {level!r} is not a valid level")
        out[name] = entry
    return out


def reconcile_config(info: pb.AnalyzerInfo, given: Mapping[str, Mapping[str, Any]]) -> ReconciledConfig:
    """What the CLI sends to Configure: schema defaults, then the pack's initial config, then `given`."""
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

    _validate(schemas, result)
    return result


def _validate(schemas: Mapping[str, Mapping[str, Any]], config: ReconciledConfig) -> None:
    errors = []
    for name, schema in schemas.items():
        validator = jsonschema.Draft7Validator(schema)
        entry = config.get(name)
        for error in validator.iter_errors(entry["properties"] if entry else {}):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{name}: {where}: {error.message}")
    if errors:
        raise PolicyConfigError("policy pack configuration is invalid:\n  " + "\n  ".join(errors))
