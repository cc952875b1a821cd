"""Reading a runbook report's check table back, as an operator reads it: check -> (result, detail)."""

from __future__ import annotations


def check_rows(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"PASS", "FAIL", "N/A"}:
            rows[cells[0]] = (cells[1], cells[2])
    return rows
