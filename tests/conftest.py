"""Run the real program under Pulumi's mock runtime, with config from the committed stack files."""

from __future__ import annotations

from pathlib import Path

import pytest

from preview.engine import Recording, run_program

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prod() -> Recording:
    return run_program(ROOT, "prod")


@pytest.fixture(scope="session")
def dev() -> Recording:
    return run_program(ROOT, "dev")


@pytest.fixture(scope="session")
def prod_deployed() -> Recording:
    """The prod program with provider-computed values faked, as after `pulumi up`, to see resolved strings."""
    return run_program(ROOT, "prod", preview=False)
