"""Every runbook command a command suggests runs as printed: pasted into a shell against moto, it succeeds."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from runbook.cli import main
from task_service import contract
from tests.runbook import moto_stack, seed

REPO = Path(__file__).resolve().parents[2]


def _paste(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `command` the way an operator pastes it: a POSIX shell in the checkout, `python` the project's."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["sh", "-c", command], cwd=REPO, env=os.environ | {"PATH": path} | env, capture_output=True, text=True, timeout=120
    )


def _suggested(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    main([*argv, "--json"])
    return {s["reason"]: s["command"] for s in json.loads(capsys.readouterr().out)["next"]}


def test_canary_status_suggests_a_rollback_that_runs(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = outputs_file(stack.outputs, "outputs prod.json")  # a space: the command must quote it
    command = _suggested(["canary", "status", "--outputs", path, "--region", stack.region], capsys)["to go back instead"]
    assert shlex.split(command) == [
        "python", "-m", "runbook", "rollback", "--yes", "--outputs", path, "--stack", "prod", "--region", stack.region,
    ]
    done = _paste(command)
    assert done.returncode == 0, done.stderr
    assert "rollback took" in done.stdout
    monolith, service = stack.value(contract.MONOLITH_TARGET_GROUP_ARN), stack.value(contract.TARGET_GROUP_ARN)
    assert stack.rule_weights() == {monolith: 100, service: 0}


def test_the_dms_commands_chain_start_watch_stop_resume(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = outputs_file(stack.outputs)
    start = _suggested(["dms", "status", "--outputs", path], capsys)["start it"]
    done = _paste(start)
    assert done.returncode == 0 and "started with start-replication" in done.stdout, done.stderr
    assert stack.dms_task().status == "running"

    (watch,) = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("watch the full load: ")]
    watched = _paste(watch + " --interval 0.1 --timeout 1")
    assert watched.returncode == 0 and "waited until the full load is complete" in watched.stdout, watched.stderr

    assert main(["dms", "stop", "--outputs", path]) == 0
    (resume,) = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if "To resume later" in line]
    resumed = _paste(resume)
    assert resumed.returncode == 0 and "started with resume-processing" in resumed.stdout, resumed.stderr
    assert stack.dms_task().status == "running"


def test_a_finished_canary_suggests_an_integrity_check_that_runs(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, outputs_file: Any, new_database: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = new_database("source"), new_database("target")
    seed.schema_and_rows(source)
    seed.schema_and_rows(target)
    built = moto_stack.build(monkeypatch, canary_weight=100)
    server = conninfo_to_dict(target)
    outputs = moto_stack.with_values(
        built.outputs,
        {contract.DB_ADDRESS: server["host"], contract.DB_PORT: int(server["port"]), contract.DB_NAME: server["dbname"], contract.DB_USERNAME: server["user"]},
    )
    command = _suggested(["canary", "status", "--outputs", outputs_file(outputs)], capsys)[
        "compare the tables (SOURCE_DSN: the monolith database)"
    ]
    assert "sslmode=require" in command and '--source "$SOURCE_DSN"' in command
    done = _paste(command, SOURCE_DSN=source)
    assert done.returncode == 0, done.stderr
    assert "6/6 tables identical" in done.stdout


def test_the_rendered_runbooks_emergency_rollback_runs(
    stack: moto_stack.Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The box at the top of the runbook names the outputs file step 2 writes; run it where that file is."""
    (tmp_path / "outputs-prod.json").write_text(json.dumps(stack.outputs))
    assert main(["render", "--outputs", str(tmp_path / "outputs-prod.json")]) == 0
    text = capsys.readouterr().out
    box = text.split("> **Emergency rollback**", 1)[1].split("## 1. Prerequisites", 1)[0]
    (command,) = [line[2:] for line in box.splitlines() if line.startswith("> python -m runbook")]
    done = subprocess.run(
        ["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert "now: listener rule at monolith 100 / service 0" in done.stdout
