"""Reading a runbook report's check table back, as an operator reads it: check -> (result, detail)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from runbook.cli import main


def check_rows(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"PASS", "FAIL", "N/A"}:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def verify_rows(outputs_file: Callable[[dict[str, Any]], str], outputs: dict[str, Any],
                capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, tuple[str, str]]]:
    """`runbook verify` on `outputs` (written by the `outputs_file` fixture): its exit code and check rows."""
    code = main(["verify", "--outputs", outputs_file(outputs)])
    return code, check_rows(capsys.readouterr().out)
