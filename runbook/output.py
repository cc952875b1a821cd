"""What a command prints, in one place: a Report shown as text or as JSON, and the commands it suggests next.

The convention for a command with `--json` (give its parser `parents=[..., JSON_OPTION]`): build a Report and
return it; the CLI hands it to `show`. Each text line is `say`d together with the fields it shows, each table's
rows are records keyed like its columns, and each suggested command goes through `suggest`, so the JSON holds
what the text holds, in one naming style (camelCase, as Pulumi's own JSON). Text is a rich table on a terminal
and plain text elsewhere (pipes, files, CI logs); colour only on a terminal and never with NO_COLOR set
(https://no-color.org).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from runbook.errors import EXIT_OK

JSON_OPTION = argparse.ArgumentParser(add_help=False)
JSON_OPTION.add_argument("--json", action="store_true", help="the result as JSON on stdout (the same fields as the text)")

STYLES = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow", "ok": "green", "DIFFERS": "bold red"}
"""Verdict cells, coloured on a colour terminal."""


@dataclass(frozen=True)
class Table:
    """Rows as records: `columns` maps each shown key to its header; rows may carry more keys (JSON only)."""

    key: str
    columns: dict[str, str]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Invocation:
    """The stack options of this run, repeated in every command it suggests so that command runs as printed."""

    outputs: str | None
    stack: str
    region: str | None = None

    def command(self, *words: str) -> str:
        """`python -m runbook <words>` with this run's --outputs/--stack/--region, quoted for a POSIX shell."""
        argv = ["python", "-m", "runbook", *words, *(["--outputs", self.outputs] if self.outputs else []), "--stack", self.stack]
        return shlex.join(argv + (["--region", self.region] if self.region else []))


@dataclass
class Report:
    """A command's result: the exit code, JSON fields, text blocks in order, and the commands it suggests."""

    exit_code: int = EXIT_OK
    fields: dict[str, Any] = field(default_factory=dict)
    blocks: list[str | Table] = field(default_factory=list)
    next: list[dict[str, str]] = field(default_factory=list)

    def say(self, text: str, **fields: Any) -> None:
        """A line of text and the fields it is made of."""
        self.blocks.append(text)
        self.fields.update(fields)

    def table(self, key: str, columns: dict[str, str], rows: list[dict[str, Any]]) -> None:
        self.blocks.append(Table(key, columns, rows))
        self.fields[key] = rows

    def suggest(self, reason: str, command: str) -> None:
        """A next command, complete and runnable as printed."""
        self.blocks.append(f"  {reason}: {command}")
        self.next.append({"reason": reason, "command": command})

    def document(self) -> dict[str, Any]:
        return {**self.fields, "next": self.next}


def progress(line: str) -> None:
    """A command's progress as it happens, on stderr: stdout holds the report (or its JSON)."""
    print(line, file=sys.stderr, flush=True)


def plain_table(table: Table) -> str:
    """A Markdown table: readable in a log, pasteable into a ticket; every column but the last padded."""
    keys = list(table.columns)
    rows = [list(table.columns.values())] + [[_cell(row.get(key)) for key in keys] for row in table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keys) - 1)] + [0]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) if width else "---" for width in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _rich_table(table: Table) -> RichTable:
    shown = RichTable(*table.columns.values(), box=box.SIMPLE_HEAD, header_style="bold")
    for row in table.rows:
        cells = [_cell(row.get(key)) for key in table.columns]
        shown.add_row(*(f"[{STYLES[cell]}]{cell}[/]" if cell in STYLES else _escape(cell) for cell in cells))
    return shown


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def console(stream: TextIO) -> Console:
    """rich on `stream`, coloured unless NO_COLOR is set (non-empty, as no-color.org defines it)."""
    return Console(file=stream, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=True)


def show(report: Report, as_json: bool, stream: TextIO) -> int:
    """Print `report` as JSON, as rich text on a terminal, or as plain text; return its exit code."""
    if as_json:
        stream.write(json.dumps(report.document(), indent=2, default=str) + "\n")
    elif stream.isatty():
        shown = console(stream)
        for block in report.blocks:
            if isinstance(block, Table):
                shown.print(_rich_table(block))
            else:
                shown.print(block, markup=False)
    else:
        for block in report.blocks:
            stream.write((plain_table(block) if isinstance(block, Table) else block) + "\n")
    stream.flush()
    return report.exit_code
