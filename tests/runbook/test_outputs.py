"""The outputs loader: every way an outputs source can be wrong gives one clear BadInput."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from runbook.errors import BadInput
from runbook.outputs import SECRET_PLACEHOLDER, UNKNOWN_SENTINEL, load_outputs, region_name, stack_name

FIXTURES = Path(__file__).parent / "fixtures"


def test_reads_a_full_outputs_file_with_typed_accessors() -> None:
    out = load_outputs(str(FIXTURES / "outputs-prod.json"), None)
    assert out.integer("dbPort") == 5432
    assert out.string("clusterName") == "task-service-cluster"
    assert len(out.strings("dmsTables")) == 6
    assert stack_name(out, None) == "prod"
    assert region_name(out, "us-east-1") == "us-east-1"


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
    ("value", "fragment"),
    [
        (UNKNOWN_SENTINEL, "unknown until the stack is deployed"),
        (SECRET_PLACEHOLDER, "without --show-secrets"),
        (None, "missing from"),
    ],
)
def test_unavailable_values_name_the_key(tmp_path: Path, value: object, fragment: str) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"stack": "prod", "listenerRuleArn": value}))
    out = load_outputs(str(path), None)
    with pytest.raises(BadInput, match=f"'listenerRuleArn'.*{fragment}"):
        out.string("listenerRuleArn")


def test_wrong_types_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"dbPort": "5432", "alarmNames": "task-service-cpu", "canaryWeight": True}))
    out = load_outputs(str(path), None)
    with pytest.raises(BadInput, match="'dbPort'.*an integer"):
        out.integer("dbPort")
    with pytest.raises(BadInput, match="'alarmNames'.*a list of strings"):
        out.strings("alarmNames")
    with pytest.raises(BadInput, match="'canaryWeight'.*an integer"):
        out.integer("canaryWeight")


def test_null_dms_is_disabled_not_an_error() -> None:
    out = load_outputs(str(FIXTURES / "outputs-dev.json"), None)
    assert out.optional_string("dmsReplicationTaskArn") is None
    assert out.optional_string("dmsSourceEndpointArn") is None


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
    assert out.string("serviceName") == "task-service"
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
