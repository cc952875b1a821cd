"""A scratch project: the real program and pack, linked, beside stack files a test writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LINKED = ("Pulumi.yaml", "__main__.py", "stack_config.py", "components", "runbook", "policy", "stack-references")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


@pytest.fixture
def write_stack(project: Path) -> Callable[..., str]:
    """Write Pulumi.<stack>.yaml as prod's, with `changes` applied (`ns:key.path` -> value)."""

    def write(stack: str, changes: dict[str, Any]) -> str:
        doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
        for dotted, value in changes.items():
            key, _, path = dotted.partition(".")
            node = doc["config"]
            if path:
                node = node.setdefault(key, {})
                *parents, leaf = path.split(".")
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = value
            else:
                node[key] = value
        (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
        return stack

    return write
