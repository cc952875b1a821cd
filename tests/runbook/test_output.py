"""The output convention: `--json` holds the text's fields, rich only on a terminal, colour never with NO_COLOR."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from preview.cli import main as preview_main
from runbook import dms, integrity
from runbook.cli import main
from runbook.report import CHECK_COLUMNS
from tests.runbook import moto_stack, seed

REPO = Path(__file__).resolve().parents[2]
ANSI_COLOUR = "\x1b[3"  # SGR foreground colours 30-39 (and 38;5/38;2)


def _text_tables(text: str) -> list[list[dict[str, str]]]:
    """Each Markdown table in `text` as rows keyed by its header."""
    tables: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        if set(line) <= set("|-"):
            continue
        cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]
        if header is None:
            header = cells
            tables.append([])
        else:
            tables[-1].append(dict(zip(header, cells)))
    return tables


def _shown(value: Any) -> str:
    return "-" if value is None else ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _same_fields(argv: list[str], tables: dict[str, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Run `argv` as text and as JSON: same exit code, every table cell equal to its JSON field, every
    suggested command in the text. Returns the JSON document."""
    code = main(argv)
    text = capsys.readouterr().out
    assert main([*argv, "--json"]) == code
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    shown = _text_tables(text)
    assert len(shown) == len(tables)
    for rows, (key, columns) in zip(shown, tables.items()):
        as_json = [{title: _shown(record[field]) for field, title in columns.items()} for record in document[key]]
        assert rows == as_json, key
    for suggestion in document["next"]:
        assert f"  {suggestion['reason']}: {suggestion['command']}" in text
    return document


def test_verify_json(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    document = _same_fields(["verify", "--outputs", outputs_file(stack.outputs)], {"checks": CHECK_COLUMNS}, capsys)
    results = [row["result"] for row in document["checks"]]
    assert (document["passed"], document["failed"], document["notAvailable"]) == tuple(results.count(r) for r in ("PASS", "FAIL", "N/A"))
    assert document["failed"] == 0 and "rds performance insights" in document["confirmByHand"]
    assert document["confirmByHand"] == [row["check"] for row in document["checks"] if row["result"] == "N/A"]


def test_canary_status_json(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    document = _same_fields(["canary", "status", "--outputs", outputs_file(stack.outputs)], {"checks": CHECK_COLUMNS}, capsys)
    assert (document["livePercent"], document["configuredPercent"], document["nextPercent"]) == (50, 50, 100)
    assert document["allowed"] is False and "p95 latency" in document["blockedBy"]
    assert [s["reason"] for s in document["next"]] == ["watch the step", "when it ends healthy", "to go back instead"]


def test_dms_status_json(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack.dms_load("running", FullLoadProgressPercent=40, TablesLoading=2, TablesQueued=1)
    document = _same_fields(["dms", "status", "--outputs", outputs_file(stack.outputs)], {}, capsys)
    assert document["status"] == "running" and document["progress"]["FullLoadProgressPercent"] == 40
    assert document["tableStatistics"] is None and "DescribeTableStatistics failed" in document["tableStatisticsUnavailable"]
    assert [s["reason"] for s in document["next"]] == ["wait for the full load"]


def test_integrity_json(new_database: Any, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = new_database("source"), new_database("target")
    seed.schema_and_rows(source)
    seed.schema_and_rows(target)
    seed.as_replica(target, "DELETE FROM task_tag WHERE task_id = 3")
    argv = ["integrity", "--source", source, "--target", target]
    document = _same_fields(argv, {"tables": integrity.REPORT_COLUMNS}, capsys)
    (differing,) = [row for row in document["tables"] if row["result"] == "DIFFERS"]
    assert differing["table"] == "task_tag" and differing["missingInTarget"] == 2 and differing["samples"]
    assert (document["identical"], document["compared"]) == (5, 6)


def _on_terminal(argv: list[str], env: dict[str, str], stderr_only: bool = False) -> tuple[int, str, str]:
    """Run `python -m runbook` with stdout (or only stderr) on a pseudo-terminal; (code, terminal, piped stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", *argv], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if stderr_only else slave, stderr=slave,
    )
    os.close(slave)
    piped = proc.stdout.read().decode() if proc.stdout else ""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(), piped


@pytest.fixture
def terminal_env(aws_env: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"}}
    return env | {"TERM": "xterm-256color", "COLUMNS": "200"}


def test_tables_are_rich_and_coloured_on_a_terminal(stack: moto_stack.Stack, outputs_file: Any, terminal_env: dict[str, str]) -> None:
    code, shown, _ = _on_terminal(["verify", "--outputs", outputs_file(stack.outputs)], terminal_env)
    assert code == 0
    assert ANSI_COLOUR in shown and "PASS" in shown and "─" in shown  # rich's rule under the header
    assert "| check" not in shown and "|---" not in shown


def test_no_color_keeps_the_rich_table_without_colour(stack: moto_stack.Stack, outputs_file: Any, terminal_env: dict[str, str]) -> None:
    code, shown, _ = _on_terminal(["verify", "--outputs", outputs_file(stack.outputs)], terminal_env | {"NO_COLOR": "1"})
    assert code == 0 and "PASS" in shown and "─" in shown
    assert ANSI_COLOUR not in shown


def test_plain_text_without_a_terminal(stack: moto_stack.Stack, outputs_file: Any, terminal_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "verify", "--outputs", outputs_file(stack.outputs)],
        cwd=REPO, env=terminal_env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("| check ") and "\x1b" not in done.stdout


def test_dms_watch_shows_progress_on_a_terminal_only(stack: moto_stack.Stack, outputs_file: Any, terminal_env: dict[str, str]) -> None:
    path = outputs_file(stack.outputs)
    assert main(["dms", "start", "--outputs", path]) == 0
    argv = ["dms", "status", "--watch", "--interval", "0.1", "--timeout", "1", "--outputs", path]
    code, bar, stdout = _on_terminal(argv, terminal_env, stderr_only=True)
    assert code == 0 and "DMS full load (running: 1 loaded, 0 loading, 0 queued, 0 errored)" in bar and "100%" in bar
    assert "waited until the full load is complete" in stdout and "\x1b" not in stdout
    quiet = subprocess.run([sys.executable, "-m", "runbook", *argv], cwd=REPO, env=terminal_env, capture_output=True, text=True, timeout=60)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert "waited until the full load is complete" in quiet.stdout


def test_progress_bar_is_none_without_a_terminal(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as log, dms.progress_bar(log) as bar:
        assert bar is None


def test_version_of_both_clis_is_the_project_version(capsys: pytest.CaptureFixture[str]) -> None:
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for entry, prog in ((main, "python -m runbook"), (preview_main, "python -m preview")):
        with pytest.raises(SystemExit) as caught:
            entry(["--version"])
        assert caught.value.code == 0
        assert capsys.readouterr().out == f"{prog} {expected}\n"
