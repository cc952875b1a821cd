"""The README and the workflows stay true: the two commands, every output, config key and policy, valid YAML."""

from __future__ import annotations

import ast
import re
import subprocess
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel

from stack_config import StackFile
from task_service import contract

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
WORKFLOWS = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / ".github" / "workflows").glob("*.yml")}


def _uses(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]


def test_readme_has_exactly_the_two_setup_commands() -> None:
    block = README.split("## Two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make preview", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^preview: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_makefile_preview_runs_the_dev_stack_by_default() -> None:
    dry = subprocess.run(["make", "-n", "preview"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m preview -s dev" in dry


def test_workflows_run_the_readme_commands() -> None:
    assert set(WORKFLOWS) == {"pull-request.yml", "deploy.yml"}
    pr, deploy = WORKFLOWS["pull-request.yml"], WORKFLOWS["deploy.yml"]
    assert "pull_request" in pr[True] and deploy[True] == {"push": {"branches": ["main"]}}  # YAML 1.1: on -> True
    for workflow in (pr, deploy):
        assert [step["run"] for step in workflow["jobs"]["test"]["steps"] if "run" in step][-1] == "make test"
    preview = pr["jobs"]["hermetic-preview"]["steps"][3]
    assert preview["run"] == 'make preview STACK="$STACK" PREVIEW_ARGS="--summary hermetic-$STACK.md"'
    assert preview["env"] == {"STACK": "${{ matrix.stack }}"}
    assert pr["jobs"]["hermetic-preview"]["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    for workflow, command in ((pr, "preview"), (deploy, "up")):
        (pulumi,) = [s for s in _uses(workflow) if s["uses"].startswith("pulumi/actions@") and "command" in s["with"]]
        assert pulumi["with"]["command"] == command
        assert pulumi["with"]["policyPacks"] == "policy"
        assert pulumi["with"]["policyPackConfigs"] == "policy/config/prod.json"
        assert f"pulumi {command} -s prod --policy-pack policy --policy-pack-config policy/config/prod.json" in README
        (aws,) = [s for s in _uses(workflow) if s["uses"].startswith("aws-actions/configure-aws-credentials@")]
        assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]  # OIDC, no stored keys


def test_readme_outputs_table_is_the_contract() -> None:
    """The README's table is generated from task_service.contract (`python -m task_service.contract`)."""
    outputs_section = README.split("## Stack outputs", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", outputs_section, re.M))
    names = {output.name for output in contract.CONTRACT}
    assert documented == names, (
        f"README outputs table: not in the contract {sorted(documented - names)}, missing {sorted(names - documented)}; "
        "regenerate with: python -m task_service.contract"
    )
    assert contract.markdown_table() in outputs_section, "regenerate with: python -m task_service.contract"


def test_readme_documents_every_config_key() -> None:
    config_table = README.split("## Stack configuration", 1)[1].split("\n## ", 1)[0]
    for name, field in StackFile.model_fields.items():
        key = field.alias or name
        section = typing.get_args(field.annotation) + (field.annotation,)
        model = next((m for m in section if isinstance(m, type) and issubclass(m, BaseModel)), None)
        if model is None:
            assert f"`task-service:{key}`" in config_table, f"task-service:{key} is not documented"
            continue
        rows = "\n".join(line for line in config_table.splitlines() if f"`task-service:{key}." in line)
        for setting_name, setting in model.model_fields.items():
            setting_key = setting.alias or setting_name
            assert re.search(rf"\b{setting_key}\b", rows), f"task-service:{key}.{setting_key} is not documented"


def test_readme_documents_every_policy() -> None:
    policies = set(re.findall(r'name="([a-z0-9-]+)"', "".join(p.read_text() for p in (ROOT / "policy" / "task_service_policies").glob("*.py"))))
    assert len(policies) >= 20
    for name in policies:
        assert f"`{name}`" in README, name


def test_every_pulumi_command_the_readme_prints_runs_the_pack() -> None:
    """A preview or deploy someone copies from the README runs the policy pack with its stack's config."""
    text = "\n".join(line for line in README.splitlines() if not line.startswith("#"))  # headings name, not print
    commands = list(re.finditer(r"pulumi (?:up|preview)\b[^`\n]*-s (\w+)[^`\n]*", text))
    assert len(commands) >= 4
    for match in commands:
        assert f"--policy-pack policy --policy-pack-config policy/config/{match[1]}.json" in match[0], match[0]


def test_no_function_outside_tests_is_longer_than_80_lines() -> None:
    """Long functions hide several jobs; split them (tests may be long tables)."""
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    long = []
    for path in (p for p in tracked if not p.startswith("tests/")):
        for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []
