"""Pass/fail checks, the rows of verify, canary status and preflight, and their one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from runbook.output import Table, plain_table


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


CHECK_COLUMNS = {"check": "check", "result": "result", "detail": "detail"}


def records(checks: list[Check]) -> list[dict[str, Any]]:
    """The rows of a checks table, keyed like CHECK_COLUMNS."""
    return [{"check": c.name, "result": c.status.value, "detail": c.detail} for c in checks]


def table(checks: list[Check]) -> str:
    """A Markdown table, readable on a terminal and pasteable into a ticket."""
    return plain_table(Table("checks", CHECK_COLUMNS, records(checks)))


def counts(checks: list[Check]) -> dict[str, Any]:
    """What `summary` says, as fields: how many passed, failed and could not be checked (and which)."""
    failed = [c for c in checks if c.status is Status.FAIL]
    unknown = [c for c in checks if c.status is Status.NA]
    return {
        "passed": len(checks) - len(failed) - len(unknown),
        "failed": len(failed),
        "notAvailable": len(unknown),
        "confirmByHand": [c.name for c in unknown],
    }


def summary(checks: list[Check]) -> str:
    n = counts(checks)
    text = f"{n['passed']} passed, {n['failed']} failed, {n['notAvailable']} not available"
    if n["confirmByHand"]:
        text += " (confirm by hand: " + ", ".join(n["confirmByHand"]) + ")"
    return text
