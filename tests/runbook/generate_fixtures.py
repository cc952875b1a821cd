"""Write the runbook's outputs fixtures from the program itself, never by hand.

`.venv/bin/python -m tests.runbook.generate_fixtures` (from the repository root) runs `__main__.py` under the
preview's mock engine: prod and dev with provider values faked as after `pulumi up`, and prod as a hermetic
preview, whose document is the one `python -m preview --outputs FILE` writes. `test_fixtures.py` fails when a
committed file differs from a fresh run, so a change to the program or the contract shows up here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from preview.cli import stack_outputs
from preview.engine import run_program

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def deployed(stack: str) -> dict[str, Any]:
    """What `pulumi stack output --json --show-secrets` would print after `pulumi up` of `stack`."""
    return stack_outputs(run_program(ROOT, stack, preview=False))


def previewed(stack: str) -> dict[str, Any]:
    """The outputs file of the hermetic preview of `stack`."""
    return stack_outputs(run_program(ROOT, stack))


SOURCES: dict[str, Callable[[], dict[str, Any]]] = {
    "outputs-prod.json": lambda: deployed("prod"),
    "outputs-dev.json": lambda: deployed("dev"),
    "outputs-preview-prod.json": lambda: previewed("prod"),
}


def as_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, make in SOURCES.items():
        path = FIXTURES / name
        path.write_text(as_text(make()), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
