"""Pass/fail tables printed by verify and canary status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NA = "N/A"


@dataclass(frozen=True)
class Check:
    """One row: what was checked, the verdict, and the evidence an operator needs."""

    name: str
    status: Status
    detail: str

    @classmethod
    def verdict(cls, name: str, passed: bool, detail: str) -> "Check":
        """PASS or FAIL, from a condition."""
        return cls(name, Status.PASS if passed else Status.FAIL, detail)


def table(checks: list[Check]) -> str:
    """A Markdown table, readable on a terminal and pasteable into a ticket."""
    rows = [("check", "result", "detail")] + [(c.name, c.status.value, c.detail) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = []
    for index, (name, status, detail) in enumerate(rows):
        lines.append(f"| {name.ljust(widths[0])} | {status.ljust(widths[1])} | {detail} |")
        if index == 0:
            lines.append(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|---|")
    return "\n".join(lines)


def summary(checks: list[Check]) -> str:
    failed = [c for c in checks if c.status is Status.FAIL]
    unknown = [c for c in checks if c.status is Status.NA]
    text = f"{len(checks) - len(failed) - len(unknown)} passed, {len(failed)} failed, {len(unknown)} not available"
    if unknown:
        text += " (confirm by hand: " + ", ".join(c.name for c in unknown) + ")"
    return text
