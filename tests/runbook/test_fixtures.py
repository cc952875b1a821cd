"""The committed outputs fixtures are what the program exports today (see generate_fixtures.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.runbook import generate_fixtures

ABSENT = object()


def first_difference(committed: dict[str, Any], fresh: dict[str, Any]) -> str | None:
    """The first key, in sorted order, whose value differs (or that only one side has), described; None if equal."""
    for key in sorted(set(committed) | set(fresh)):
        old, new = committed.get(key, ABSENT), fresh.get(key, ABSENT)
        if old != new:
            shown = ["(absent)" if value is ABSENT else json.dumps(value) for value in (old, new)]
            return f"key '{key}': committed {shown[0]}, fresh {shown[1]}"
    return None


@pytest.mark.parametrize("name", sorted(generate_fixtures.SOURCES))
def test_committed_fixture_is_a_fresh_run(name: str) -> None:
    path = generate_fixtures.FIXTURES / name
    committed = json.loads(path.read_text(encoding="utf-8"))
    difference = first_difference(committed, generate_fixtures.SOURCES[name]())
    assert difference is None, (
        f"{path.relative_to(generate_fixtures.ROOT)} differs from a fresh run at {difference}; "
        "regenerate with `.venv/bin/python -m tests.runbook.generate_fixtures` and review the diff"
    )


def test_first_difference_names_the_first_differing_key() -> None:
    assert first_difference({"a": 1, "b": [1], "c": 3}, {"a": 1, "b": [1], "c": 3}) is None
    assert first_difference({"a": 1, "b": [1], "c": 3}, {"a": 1, "b": [2], "c": 4}) == "key 'b': committed [1], fresh [2]"
    assert first_difference({"a": 1}, {"a": 1, "z": "new"}) == "key 'z': committed (absent), fresh \"new\""
