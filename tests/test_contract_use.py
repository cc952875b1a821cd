"""Code refers to every stack output through `task_service.contract`, never by a string of its own.

The runbook (which reads outputs) is held to every name; the program (which exports them) to the camel-case ones:
there, `region`/`stack` are ordinary words of other vocabularies (dashboard JSON, Pulumi's own API). A component's
`register_outputs({...})` names the component's outputs, another namespace, and is skipped. The preview is not
scanned: it speaks the engine's wire vocabulary (provider input names such as `listenerArn`) and writes outputs
generically, never by name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from runbook import canary
from task_service import contract

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "runbook"
PROGRAM = [ROOT / "__main__.py", ROOT / "stack_config.py", *sorted((ROOT / "components").glob("*.py"))]
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


def _component_outputs(tree: ast.AST) -> set[int]:
    """The dicts passed to `register_outputs`, with every node inside them."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "register_outputs"]
    return {id(inner) for call in calls for arg in call.args for inner in ast.walk(arg)}


def names_in_code(source: str, names: set[str] = NAMES) -> set[str]:
    """Output names written out in Python code: as a key (`values["stack"]`, `.get("stack")`, `{"stack": ...}`)
    or, for camel-case names, also as a keyword (`dbPort=`) and anywhere in a string that is not documentation."""
    tree = ast.parse(source)
    prose = _documentation(tree) | _component_outputs(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in prose:
            continue
        keys: list[str | None] = []
        if isinstance(node, ast.Subscript):
            keys = [_text(node.slice)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"get", "pop", "setdefault"}:
            keys = [_text(node.args[0])] if node.args else []
        elif isinstance(node, ast.Dict):
            keys = [_text(key) for key in node.keys]
        found |= {key for key in keys if key in names}
        if isinstance(node, ast.keyword) and node.arg in CAMEL_CASE:
            found.add(node.arg)
        text = _text(node)
        if text is not None and text != canary.CONFIG_KEY:
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


def test_no_camel_case_output_name_is_written_out_in_the_program() -> None:
    found = [f"{path.name}: {name}" for path in PROGRAM for name in sorted(names_in_code(path.read_text(encoding="utf-8"), CAMEL_CASE))]
    assert found == []


def test_the_check_sees_names_written_out() -> None:
    rule, stack = contract.LISTENER_RULE_ARN.name, contract.STACK.name
    assert names_in_code(f'values["{stack}"]') == {stack}
    assert names_in_code(f'values.get("{stack}", None)') == {stack}
    assert names_in_code(f'dict(values, {rule}="x")') == {rule}
    assert names_in_code(f'message = f"stack output {rule} is missing"') == {rule}
    assert names_in_code(f'"""Reads {rule}."""\nsubcommand = ["pulumi", "{stack}", "output"]') == set()
    assert names_in_code(f'self.register_outputs({{"{rule}": arn}})') == set()
