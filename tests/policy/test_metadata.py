"""Pack metadata: names, descriptions, schemas, stack configs and the README agree with each other."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from pulumi_policy import StackValidationPolicy

from policy_support import POLICY_DIR
from task_service_policies.pack import ALL_POLICIES

LEVELS = {"advisory", "mandatory", "remediate", "disabled"}
BY_NAME = {p.name: p for p in ALL_POLICIES}


def schema_of(policy: Any) -> dict[str, Any]:
    return dict(policy.config_schema.properties) if policy.config_schema else {}


def test_names_are_unique_and_url_safe() -> None:
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_policy_is_documented(policy: Any) -> None:
    assert policy.description.endswith(".") and len(policy.description) > 20
    assert policy.remediation_steps and policy.severity is not None and policy.enforcement_level is not None
    assert policy.tags and policy.tags[0] in {"encryption", "backups", "availability", "monitoring", "network",
                                              "canary", "tags", "secrets"}


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_config_schema_is_valid_and_defaults_validate(policy: Any) -> None:
    props = schema_of(policy)
    schema = {"type": "object", "properties": props}
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = {k: v["default"] for k, v in props.items()}
    assert set(defaults) == set(props), "every config key has a default (applied in code)"
    jsonschema.Draft7Validator(schema).validate(defaults)
    assert all(v.get("description") for v in props.values())
    if not isinstance(policy, StackValidationPolicy):
        assert {"includeNamePattern", "excludeNamePattern"} <= set(props)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_configs_name_real_policies_and_keys(stack: str) -> None:
    config = json.loads((POLICY_DIR / "config" / f"{stack}.json").read_text())
    for name, value in config.items():
        assert name in BY_NAME, f"{stack}.json: unknown policy {name}"
        if isinstance(value, str):
            assert value in LEVELS
            continue
        keys = set(value) - {"enforcementLevel"}
        assert keys <= set(schema_of(BY_NAME[name])), f"{stack}.json: {name} has unknown keys {keys}"
        assert value.get("enforcementLevel", "advisory") in LEVELS
        schema = {"type": "object", "properties": schema_of(BY_NAME[name])}
        jsonschema.Draft7Validator(schema).validate({k: value[k] for k in keys})


def test_readme_documents_every_policy_and_key() -> None:
    readme = (POLICY_DIR / "README.md").read_text()
    for policy in ALL_POLICIES:
        assert f"`{policy.name}`" in readme, policy.name
        for key in schema_of(policy):
            assert f"`{key}`" in readme, f"{policy.name}: {key}"
    assert "pulumi preview -s prod --policy-pack policy --policy-pack-config policy/config/prod.json" in readme


def test_pack_manifest() -> None:
    manifest = (POLICY_DIR / "PulumiPolicy.yaml").read_text()
    assert re.search(r"^runtime:\n  name: python\n  options:\n    virtualenv: venv$", manifest, re.M)
    pins = (POLICY_DIR / "requirements.txt").read_text().split()
    assert "pulumi-policy==1.21.0" in pins and "boto3==1.44.5" in pins
