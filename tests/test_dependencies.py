"""What the Pulumi CLI installs for the program is the program's runtime and nothing else; every pin is exact.

The CLI's uv toolchain runs `uv sync` (no group flags) against uv.lock, which installs the lock's closure of
[project].dependencies plus the default groups. These tests read that closure from uv.lock itself.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PACKAGES = {package["name"]: package for package in LOCK["package"]}
PROJECT = PACKAGES[PYPROJECT["project"]["name"]]
PROGRAM_FILES = [ROOT / "__main__.py", ROOT / "stack_config.py", *(ROOT / "components").glob("*.py"), *(ROOT / "task_service").glob("*.py")]
LOCAL_PACKAGES = {"components", "task_service", "stack_config"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(deps: list[dict]) -> set[str]:
    """Every package the lock would install for these dependencies (all markers, all requested extras)."""
    seen: set[str] = set()
    seen_extras: set[tuple[str, str]] = set()
    todo = [(dep["name"], tuple(dep.get("extra", ()))) for dep in deps]
    while todo:
        name, extras = todo.pop()
        package = PACKAGES[name]
        children = [] if name in seen else list(package.get("dependencies", []))
        seen.add(name)
        for extra in set(extras) - {e for n, e in seen_extras if n == name}:
            seen_extras.add((name, extra))
            children += package.get("optional-dependencies", {}).get(extra, [])
        todo += [(child["name"], tuple(child.get("extra", ()))) for child in children]
    return seen


def _runtime_closure() -> set[str]:
    groups = PROJECT.get("dev-dependencies", {})
    default = [dep for group in PYPROJECT["tool"]["uv"]["default-groups"] for dep in groups[group]]
    return _closure(PROJECT["dependencies"] + default)


def test_the_cli_syncs_with_uv_and_no_dependency_group() -> None:
    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]
    assert runtime == {"name": "python", "options": {"toolchain": "uv", "virtualenv": ".venv"}}
    assert PYPROJECT["tool"]["uv"]["default-groups"] == [] and PROJECT.get("default-groups") == []
    assert "dev" not in PYPROJECT["dependency-groups"], "uv installs a 'dev' group by default; name it otherwise"


def test_runtime_closure_has_no_test_or_tool_packages() -> None:
    runtime = _runtime_closure()
    assert {"pulumi", "pulumi-aws", "pulumi-random", "pydantic"} <= runtime
    for group in ("test", "tools", "policy"):
        direct = {dep["name"] for dep in PROJECT["dev-dependencies"][group]}
        leaked = (direct - {"pyyaml"}) & runtime  # pyyaml is a dependency of the pulumi SDK itself
        assert not leaked, f"the Pulumi CLI would install {sorted(leaked)} from the '{group}' group"
    assert {"pytest", "moto", "mypy", "psycopg", "checkov", "zizmor", "boto3", "pulumi-policy"}.isdisjoint(runtime)


def test_program_imports_only_its_runtime_dependencies() -> None:
    """A program import missing from [project].dependencies would work in .venv and fail under the CLI."""
    runtime = _runtime_closure()
    distributions = importlib.metadata.packages_distributions()
    for path in PROGRAM_FILES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module.split(".")[0]]
            else:
                continue
            for module in modules:
                if module in sys.stdlib_module_names or module in LOCAL_PACKAGES or module == "__future__":
                    continue
                owners = {_normalise(name) for name in distributions.get(module, [module])}
                assert owners & runtime, f"{path.relative_to(ROOT)} imports {module}, which the CLI does not install"


def test_every_pin_is_exact() -> None:
    declared = PYPROJECT["project"]["dependencies"] + [
        dep for group in PYPROJECT["dependency-groups"].values() for dep in group if isinstance(dep, str)
    ]
    for requirement in declared:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", requirement), requirement
    assert re.fullmatch(r"==\d+\.\d+\.\d+", PYPROJECT["tool"]["uv"]["required-version"])


def test_policy_requirements_are_the_lock_of_the_policy_group() -> None:
    """policy/ is published alone with its own requirements.txt: the policy group's closure at the lock's versions."""
    lines = (ROOT / "policy" / "requirements.txt").read_text().splitlines()
    pins = {_normalise(m[1]): m[2] for line in lines if (m := re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", line))}
    expected = {name: PACKAGES[name]["version"] for name in _closure(PROJECT["dev-dependencies"]["policy"])}
    assert pins == expected, "policy/requirements.txt is stale: run `make lock`"
    assert pins["pulumi"] == PACKAGES["pulumi"]["version"]  # the pack runs on the program's SDK version
