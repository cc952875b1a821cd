"""Bad input: one clear message, exit 2, no traceback, nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook.cli import main
from runbook.outputs import PREVIEW_UNKNOWN
from task_service import contract
from tests.pgserver import free_port
from tests.runbook import moto_stack

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runbook", *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


def test_missing_outputs_file_from_the_real_entry_point(tmp_path: Path) -> None:
    done = _cli("verify", "--outputs", str(tmp_path / "nope.json"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: outputs file {tmp_path / 'nope.json'} does not exist; expected the JSON written by "
        "`pulumi stack output --json --show-secrets --stack <stack> > FILE`."
    ]


def test_malformed_outputs_from_the_real_entry_point(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"region": "ap-northeast-1",')
    done = _cli("rollback", "--yes", "--outputs", str(bad))
    assert done.returncode == 2
    assert "is not valid JSON" in done.stderr and "Traceback" not in done.stderr


def test_help_for_every_command() -> None:
    for command in (["render"], ["verify"], ["backup"], ["loadtest"], ["canary", "status"], ["rollback"], ["dms", "status"], ["dms", "start"], ["dms", "stop"], ["integrity"], ["schema", "apply"], ["schema", "app-role"]):
        with pytest.raises(SystemExit) as caught:
            main([*command, "--help"])
        assert caught.value.code == 0


def test_rollback_without_a_needed_key_changes_nothing(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = moto_stack.without(stack.outputs, contract.MONOLITH_TARGET_GROUP_ARN)
    before = stack.rule_weights()
    assert main(["rollback", "--yes", "--outputs", outputs_file(outputs)]) == 2
    err = capsys.readouterr().err
    assert f"'{contract.MONOLITH_TARGET_GROUP_ARN.name}' ({contract.MONOLITH_TARGET_GROUP_ARN.meaning}) is missing from outputs file" in err
    assert stack.rule_weights() == before


def test_live_commands_refuse_preview_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--outputs", str(FIXTURES / "outputs-preview-prod.json")]) == 2
    err = capsys.readouterr().err
    assert "stack outputs are not usable" in err
    for output in (contract.LISTENER_RULE_ARN, contract.TARGET_GROUP_ARN, contract.DB_SECRET_ARN):
        assert f"'{output.name}' ({output.meaning}) is {PREVIEW_UNKNOWN}." in err
    assert main(["canary", "status", "--outputs", str(FIXTURES / "outputs-preview-prod.json")]) == 2
    assert f"'{contract.LISTENER_RULE_ARN.name}' ({contract.LISTENER_RULE_ARN.meaning}) is {PREVIEW_UNKNOWN}." in capsys.readouterr().err


def test_an_outputs_file_with_a_renamed_export_from_the_real_entry_point(tmp_path: Path) -> None:
    values = moto_stack.program_outputs()
    values["listenerRule"] = values.pop(contract.LISTENER_RULE_ARN.name)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(values))
    done = _cli("render", "--outputs", str(old))
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert f"lacks '{contract.LISTENER_RULE_ARN.name}' ({contract.LISTENER_RULE_ARN.meaning}) but has 'listenerRule'" in line


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    path = str(FIXTURES / "outputs-prod.json")
    for command in (["verify"], ["rollback", "--yes"], ["dms", "status"], ["canary", "status"]):
        assert main([*command, "--outputs", path]) == 2, command
        err = capsys.readouterr().err
        assert f"cannot reach {endpoint}" in err, (command, err)


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["verify", "--outputs", str(FIXTURES / "outputs-prod.json")]) == 2
    assert "no usable AWS credentials" in capsys.readouterr().err


def test_failing_dsn_names_the_side_and_hides_the_password(pg_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = f"host=127.0.0.1 port={free_port()} dbname=x user=u password=hunter2 connect_timeout=2"
    assert main(["integrity", "--source", bad, "--target", f"{pg_server} dbname=postgres"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the source database (host=127.0.0.1 port=" in err and "dbname=x user=u): connection" in err
    assert "hunter2" not in err
    assert main(["schema", "apply", "--dsn", f"{pg_server} dbname=does_not_exist"]) == 2
    assert 'database "does_not_exist" does not exist' in capsys.readouterr().err


def test_malformed_dsn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "apply", "--dsn", "this is not a dsn"]) == 2
    assert "--dsn DSN is malformed" in capsys.readouterr().err


def test_render_to_an_unwritable_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--outputs", str(FIXTURES / "outputs-prod.json"), "--out", str(tmp_path / "no" / "such" / "dir.md")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_stack_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--stack", "dev", "--outputs", str(FIXTURES / "outputs-prod.json")]) == 2
    assert "does not match" in capsys.readouterr().err


def test_outputs_without_region_and_no_override(outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    values = moto_stack.program_outputs()
    del values[contract.REGION.name]
    assert main(["verify", "--outputs", outputs_file(values)]) == 2
    assert f"stack output '{contract.REGION.name}' ({contract.REGION.meaning}) is missing" in capsys.readouterr().err
