"""The runbook refers to every stack output through `task_service.contract`, never by a string of its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from runbook import canary
from task_service import contract

RUNBOOK = Path(__file__).resolve().parents[2] / "runbook"
NAMES = {output.name for output in contract.CONTRACT}
CAMEL_CASE = {name for name in NAMES if name != name.lower()}
"""Names that cannot be ordinary words (unlike `stack`), so they are looked for inside any string."""


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", text)) & CAMEL_CASE


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _documentation(tree: ast.AST) -> set[int]:
    """Bare string statements (docstrings): prose may name the config key `canaryWeight`, code may not."""
    return {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and _text(node.value) is not None}


def names_in_code(source: str) -> set[str]:
    """Output names written out in Python code: as a key (`values["stack"]`, `.get("stack")`, `{"stack": ...}`)
    or, for camel-case names, also as a keyword (`dbPort=`) and anywhere in a string that is not documentation."""
    tree = ast.parse(source)
    prose = _documentation(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        keys: list[str | None] = []
        if isinstance(node, ast.Subscript):
            keys = [_text(node.slice)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"get", "pop", "setdefault"}:
            keys = [_text(node.args[0])] if node.args else []
        elif isinstance(node, ast.Dict):
            keys = [_text(key) for key in node.keys]
        found |= {key for key in keys if key in NAMES}
        if isinstance(node, ast.keyword) and node.arg in CAMEL_CASE:
            found.add(node.arg)
        text = _text(node)
        if text is not None and id(node) not in prose and text != canary.CONFIG_KEY:
            found |= _words(text)
    return found


def test_no_output_name_is_written_out_in_runbook_code() -> None:
    found = [f"{path.name}: {name}" for path in sorted(RUNBOOK.rglob("*.py")) for name in sorted(names_in_code(path.read_text(encoding="utf-8")))]
    found += [
        f"{path.name}:{number}: {name}"
        for path in sorted(RUNBOOK.rglob("*.j2"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for name in sorted(_words(line))
    ]
    assert found == []


def test_the_check_sees_names_written_out() -> None:
    rule, stack = contract.LISTENER_RULE_ARN.name, contract.STACK.name
    assert names_in_code(f'values["{stack}"]') == {stack}
    assert names_in_code(f'values.get("{stack}", None)') == {stack}
    assert names_in_code(f'dict(values, {rule}="x")') == {rule}
    assert names_in_code(f'message = f"stack output {rule} is missing"') == {rule}
    assert names_in_code(f'"""Reads {rule}."""\nsubcommand = ["pulumi", "{stack}", "output"]') == set()
