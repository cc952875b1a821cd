"""The project's version for `--version`, read from its one place: `[project].version` in pyproject.toml.

The project is not installed as a distribution (uv syncs it as a virtual project), so importlib.metadata
cannot answer; the tools always run from a checkout, where pyproject.toml sits next to this package.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def version() -> str:
    try:
        return str(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown (pyproject.toml not readable)"
