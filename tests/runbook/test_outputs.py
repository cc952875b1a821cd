"""The outputs loader: every way an outputs source can be wrong gives one clear BadInput."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from runbook.errors import BadInput
from runbook.outputs import PREVIEW_UNKNOWN, SECRET_PLACEHOLDER, load_outputs, region_name, stack_name
from task_service import contract
from task_service.naming import Naming, Role
from task_service.tables import qualified
from tests.runbook import moto_stack

FIXTURES = Path(__file__).parent / "fixtures"
DMS_OUTPUTS = [output for output in contract.CONTRACT if output.dms]


def _file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_reads_a_full_outputs_file_with_typed_accessors() -> None:
    out = load_outputs(str(FIXTURES / "outputs-prod.json"), None)
    assert out.integer(contract.DB_PORT) == 5432
    assert out.string(contract.CLUSTER_NAME) == Naming.for_stack("task-service", "prod").of(Role.CLUSTER)
    assert out.strings(contract.DMS_TABLES) == qualified()
    assert out.dms_enabled
    assert stack_name(out, None) == "prod"
    assert region_name(out, "us-east-1") == "us-east-1"


def test_an_accessor_of_the_wrong_kind_is_a_bug_not_bad_input() -> None:
    out = load_outputs(str(FIXTURES / "outputs-prod.json"), None)
    with pytest.raises(TypeError, match=f"{contract.DB_PORT.name} is of kind integer, not string"):
        out.string(contract.DB_PORT)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "should hold a JSON object"),
    ],
)
def test_malformed_files_are_named(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "o.json"
    path.write_text(content)
    with pytest.raises(BadInput, match=fragment) as caught:
        load_outputs(str(path), None)
    assert str(path) in str(caught.value)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist.*pulumi stack output --json --show-secrets"):
        load_outputs(str(tmp_path / "absent.json"), None)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({contract.PREVIEW_UNKNOWN_KEY: [contract.LISTENER_RULE_ARN.name]}, PREVIEW_UNKNOWN),
        ({contract.LISTENER_RULE_ARN.name: SECRET_PLACEHOLDER}, "a secret printed without --show-secrets"),
        ({contract.LISTENER_RULE_ARN.name: None}, "missing from outputs file"),
        ({}, "missing from outputs file"),
    ],
)
def test_unavailable_values_name_the_output_and_its_meaning(tmp_path: Path, values: dict[str, Any], fragment: str) -> None:
    out = load_outputs(_file(tmp_path, {contract.STACK.name: "prod", **values}), None)
    rule = contract.LISTENER_RULE_ARN
    assert not out.available(rule)
    with pytest.raises(BadInput) as caught:
        out.string(rule)
    assert str(caught.value).startswith(f"stack output '{rule.name}' ({rule.meaning}) is {fragment}")


def test_wrong_types_are_reported_with_the_meaning(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        {contract.DB_PORT.name: "5432", contract.ALARM_NAMES.name: "task-service-db-cpu-high", contract.CANARY_WEIGHT.name: True},
    )
    out = load_outputs(path, None)
    with pytest.raises(BadInput, match=f"'{contract.DB_PORT.name}' \\({contract.DB_PORT.meaning}\\) in outputs file .* should be an integer, got str '5432'"):
        out.integer(contract.DB_PORT)
    with pytest.raises(BadInput, match=f"'{contract.ALARM_NAMES.name}'.*a list of strings"):
        out.strings(contract.ALARM_NAMES)
    with pytest.raises(BadInput, match=f"'{contract.CANARY_WEIGHT.name}'.*an integer"):
        out.integer(contract.CANARY_WEIGHT)


def test_dev_without_dms_is_disabled_not_an_error() -> None:
    out = load_outputs(str(FIXTURES / "outputs-dev.json"), None)
    assert not out.dms_enabled
    out.require(contract.STACK, *DMS_OUTPUTS)


def test_null_dms_outputs_also_mean_disabled(tmp_path: Path) -> None:
    out = load_outputs(_file(tmp_path, {contract.STACK.name: "dev", **{output.name: None for output in DMS_OUTPUTS}}), None)
    assert not out.dms_enabled
    out.require(*DMS_OUTPUTS)


def test_with_dms_enabled_a_missing_dms_output_is_required(tmp_path: Path) -> None:
    values = moto_stack.program_outputs()
    del values[contract.DMS_TABLES.name]
    out = load_outputs(_file(tmp_path, values), None)
    assert out.dms_enabled
    with pytest.raises(BadInput, match=f"'{contract.DMS_TABLES.name}' .* is missing from outputs file"):
        out.require(*DMS_OUTPUTS)


def test_require_lists_every_problem_at_once(tmp_path: Path) -> None:
    values = {**moto_stack.program_outputs(), contract.DB_PORT.name: "x"}
    del values[contract.CLUSTER_NAME.name]
    out = load_outputs(_file(tmp_path, values), None)
    with pytest.raises(BadInput) as caught:
        out.require(contract.CLUSTER_NAME, contract.DB_PORT, contract.SERVICE_NAME)
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 stack outputs are not usable:"
    assert [line.split("'")[1] for line in lines[1:]] == [contract.CLUSTER_NAME.name, contract.DB_PORT.name]


def test_a_renamed_export_names_the_new_name_and_its_meaning(tmp_path: Path) -> None:
    values = moto_stack.program_outputs()
    values["dbHost"] = values.pop(contract.DB_ADDRESS.name)
    with pytest.raises(BadInput) as caught:
        load_outputs(_file(tmp_path, values), None)
    message = str(caught.value)
    assert "\n" not in message
    assert f"lacks '{contract.DB_ADDRESS.name}' ({contract.DB_ADDRESS.meaning}) but has 'dbHost'" in message
    assert "renamed?" in message


def test_an_output_the_contract_no_longer_has_is_harmless(tmp_path: Path) -> None:
    out = load_outputs(_file(tmp_path, {**moto_stack.program_outputs(), "retiredOutput": "x"}), None)
    assert out.string(contract.CLUSTER_NAME)


def test_a_malformed_unknown_list_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=f"'{contract.PREVIEW_UNKNOWN_KEY}' in outputs file .* should be a list of output names"):
        load_outputs(_file(tmp_path, {contract.PREVIEW_UNKNOWN_KEY: "dbAddress"}), None)


def test_stack_mismatch_is_refused() -> None:
    with pytest.raises(BadInput, match="--stack dev does not match.*'prod'"):
        load_outputs(str(FIXTURES / "outputs-prod.json"), "dev")


def _fake_pulumi(bindir: Path, script: str) -> None:
    exe = bindir / "pulumi"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_without_a_file_asks_the_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "args"
    _fake_pulumi(tmp_path, f'echo "$@" > {log}\ncat {FIXTURES / "outputs-prod.json"}\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    out = load_outputs(None, "prod")
    assert out.string(contract.SERVICE_NAME) == moto_stack.program_outputs()[contract.SERVICE_NAME.name]
    assert log.read_text().split() == ["stack", "output", "--json", "--show-secrets", "--stack", "prod"]


def test_a_failing_pulumi_cli_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pulumi(tmp_path, 'echo "error: no stack named prod found" >&2\nexit 255\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(BadInput, match="failed \\(exit 255\\): error: no stack named prod found"):
        load_outputs(None, "prod")


def test_no_file_and_no_cli_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BadInput, match="pass --outputs FILE"):
        load_outputs(None, None)
