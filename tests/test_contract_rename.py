"""Renaming one export in the contract is noticed by every reader of the old name: the runbook, the fixtures check
and the README check. Run in a scratch copy of the repository, so the real contract is never touched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from task_service import contract

ROOT = Path(__file__).resolve().parents[1]
OLD, NEW = contract.MONOLITH_DB_APP_USER.name, "monolithDbAppRole"


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("renamed") / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, scratch / name)
    path = scratch / "task_service" / "contract.py"
    text = path.read_text(encoding="utf-8")
    assert text.count(f'"{OLD}"') == 1
    path.write_text(text.replace(f'"{OLD}"', f'"{NEW}"'), encoding="utf-8")
    return scratch


def _run(scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=scratch, capture_output=True, text=True, timeout=300, check=False)


def test_the_runbook_refuses_outputs_with_the_old_name(renamed: Path) -> None:
    done = _run(renamed, "-m", "runbook", "render", "--outputs", "tests/runbook/fixtures/outputs-prod.json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert NEW in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_fixtures_check_fails_naming_the_new_name(renamed: Path) -> None:
    done = _run(renamed, "-m", "pytest", "-p", "no:cacheprovider", "tests/runbook/test_fixtures.py")
    assert done.returncode == 1 and NEW in done.stdout, done.stdout[-2000:]


def test_the_readme_check_fails(renamed: Path) -> None:
    done = _run(renamed, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_repo.py::test_readme_outputs_table_is_the_contract")
    assert done.returncode == 1 and NEW in done.stdout, done.stdout[-2000:]
