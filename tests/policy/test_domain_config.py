"""The pack is published alone (`pulumi policy publish` uploads only policy/), so it never imports the domain
package; its per-stack config states the domain's values instead, and these tests keep the two in step."""

from __future__ import annotations

import ast
import functools
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from policy_support import POLICY_DIR, ROOT
from task_service import canary
from task_service.naming import Naming, Role
from task_service_policies.pack import ALL_POLICIES

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
STACKS = sorted(path.name[len("Pulumi."):-len(".yaml")] for path in ROOT.glob("Pulumi.*.yaml"))


def takers(key: str) -> list[str]:
    """The policies whose config schema has `key`."""
    return [p.name for p in ALL_POLICIES if p.config_schema and key in p.config_schema.properties]


def literal(pattern: str) -> Optional[str]:
    """The one string an anchored literal regex matches (`^task-service-tg$`, escapes allowed), else None."""
    match = re.fullmatch(r"\^((?:\\[^A-Za-z0-9]|[^\\.^$*+?{}\[\]|()])*)\$", pattern)
    return re.sub(r"\\(.)", r"\1", match.group(1)) if match else None


def stack_config(stack: str) -> dict[str, dict[str, Any]]:
    path = POLICY_DIR / "config" / f"{stack}.json"
    assert path.is_file(), f"Pulumi.{stack}.yaml has no policy config {path.relative_to(ROOT)}"
    raw = json.loads(path.read_text())
    return {name: value if isinstance(value, dict) else {"enforcementLevel": value} for name, value in raw.items()}


def domain_values(naming: Naming) -> dict[str, Any]:
    """Config keys whose value the domain package defines exactly, for the stack `naming` names."""
    return {
        "allowedSteps": list(canary.STEPS),
        "canaryTagKey": canary.CANARY_TAG,
        "testRouteHeaderName": canary.TEST_ROUTE_HEADER,
        "ecsCluster": naming.of(Role.CLUSTER),
        "ecsService": naming.of(Role.SERVICE),
        "alarmNames": naming.alarm_names(),
        "loadTestParameter": naming.of(Role.LOADTEST_RESULT),
    }


def test_every_stack_is_checked_and_canary_policies_take_the_keys() -> None:
    assert {"dev", "prod"} <= set(STACKS)
    assert len(takers("allowedSteps")) == 2
    assert len(takers("canaryTagKey")) == len(takers("canaryNamePattern")) == len(takers("testRouteHeaderName")) == 4
    assert takers("serviceNamePattern") == ["canary-guardrails"]
    for key in ("ecsCluster", "ecsService", "alarmNames", "loadTestParameter"):
        assert takers(key) == ["alb-canary-health-gate"], key


@pytest.mark.parametrize("stack", STACKS)
def test_stack_config_states_the_domain_values(stack: str) -> None:
    config = stack_config(stack)
    naming = Naming.for_stack(PROJECT, stack)
    wrong: dict[str, Any] = {}
    for key, expected in domain_values(naming).items():
        for name in takers(key):
            if config.get(name, {}).get(key) != expected:
                wrong[f"{name}.{key}"] = config.get(name, {}).get(key)
    for key, role in (("canaryNamePattern", Role.TARGET_GROUP), ("serviceNamePattern", Role.SERVICE)):
        for name in takers(key):
            pattern = config.get(name, {}).get(key, "")
            if literal(pattern) != naming.of(role):
                wrong[f"{name}.{key}"] = f"{pattern!r} does not match exactly {naming.of(role)!r}"
    assert wrong == {}


def test_literal_reads_only_anchored_literals() -> None:
    assert literal("^task-service-tg$") == literal(f"^{re.escape('task-service-tg')}$") == "task-service-tg"
    assert [literal(p) for p in ("task-service-tg", "^task-service-tg", "^task.service$", "^a\\d$")] == [None] * 4


def test_pack_defaults_are_the_domain_values() -> None:
    """Called without a stack config, the pack rolls out in the domain's steps, reads its tag and header, and
    gates on the seed stack's (prod's) own names."""
    for key, expected in domain_values(Naming.for_stack(PROJECT, "prod")).items():
        for policy in ALL_POLICIES:
            if policy.config_schema and key in policy.config_schema.properties:
                assert policy.config_schema.properties[key]["default"] == expected, (policy.name, key)


# The pack imports only itself, the standard library and what policy/requirements.txt installs.

def _distribution(requirement: str) -> Optional[str]:
    """The normalised distribution a requirement line installs, None for extras-only lines and comments."""
    line = requirement.split("#", 1)[0].strip()
    if not line or "extra ==" in line or "extra==" in line:
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else None


def installed_by(requirements: list[str]) -> set[str]:
    """The distributions `pip install -r` brings in: the listed ones and everything they depend on."""
    todo = [d for d in map(_distribution, requirements) if d]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(d for d in map(_distribution, metadata.requires(name) or []) if d)
    return seen


def outside_imports(tree: ast.AST, allowed: frozenset[str]) -> set[str]:
    """Top-level modules imported by absolute imports that are not in `allowed` (relative imports stay inside)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - allowed


PACK_SOURCES = sorted(p for p in POLICY_DIR.rglob("*.py")
                      if not {"venv", "__pycache__"} & set(p.relative_to(POLICY_DIR).parts))


@functools.cache
def pack_allowed_modules() -> frozenset[str]:
    distributions = installed_by((POLICY_DIR / "requirements.txt").read_text().splitlines())
    third_party = {
        module for module, dists in metadata.packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", d).lower() in distributions for d in dists)
    }
    local = {p.stem for p in POLICY_DIR.glob("*.py")} | {p.parent.name for p in POLICY_DIR.glob("*/__init__.py")}
    return frozenset(sys.stdlib_module_names | third_party | local)


def test_the_import_check_catches_the_domain_package() -> None:
    allowed = pack_allowed_modules()
    assert {"pulumi_policy", "boto3", "botocore", "task_service_policies"} <= allowed
    source = "import task_service\nfrom preview.wire import UNKNOWN\nimport botocore.config\nfrom . import live\n"
    assert outside_imports(ast.parse(source), allowed) == {"task_service", "preview"}


@pytest.mark.parametrize("path", PACK_SOURCES, ids=lambda p: str(p.relative_to(POLICY_DIR)))
def test_pack_imports_nothing_from_outside(path: Path) -> None:
    assert outside_imports(ast.parse(path.read_text(), str(path)), pack_allowed_modules()) == set()
