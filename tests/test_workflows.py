"""The workflows build what the Pulumi CLI needs, pin what they run, hold the least permissions, and lint clean."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = {p.name: yaml.safe_load(p.read_text()) for p in WORKFLOW_DIR.glob("*.yml")}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BIN = Path(sys.executable).parent  # actionlint, shellcheck and zizmor come with the test group
PINNED_USES = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")


def _jobs() -> list[tuple[str, str, dict]]:
    return [(name, job_id, job) for name, workflow in WORKFLOWS.items() for job_id, job in workflow["jobs"].items()]


def _uses(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def _pin(requirement_name: str) -> str:
    (pin,) = [r.split("==")[1] for r in PYPROJECT["project"]["dependencies"] if r.split("==")[0] == requirement_name]
    return pin


def test_every_action_is_pinned_by_commit_with_its_release_in_a_comment() -> None:
    seen: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOW_DIR.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "uses:" not in line:
                continue
            match = PINNED_USES.match(line)
            assert match, f"{path.name}: not pinned as `owner/repo@<sha> # vX.Y.Z`: {line.strip()}"
            seen.setdefault(match[1], set()).add((match[2], match[3]))
    assert all(len(pins) == 1 for pins in seen.values()), f"one commit per action everywhere: {seen}"
    assert set(seen) == {
        "actions/checkout", "actions/setup-python", "astral-sh/setup-uv", "aws-actions/configure-aws-credentials", "pulumi/actions",
        "actions/upload-artifact", "actions/download-artifact",
    }


def test_checkout_never_persists_the_token_and_permissions_are_per_job() -> None:
    for name, workflow in WORKFLOWS.items():
        assert workflow["permissions"] == {}, f"{name}: the workflow grants nothing; each job asks for its own"
    for name, job_id, job in _jobs():
        for step in _uses(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False, f"{name}:{job_id}"
        assumes_role = bool(_uses(job, "aws-actions/configure-aws-credentials"))
        expected = {"contents": "read"} | ({"id-token": "write"} if assumes_role else {})
        if (name, job_id) == ("pull-request.yml", "pr-comment"):
            expected = {"pull-requests": "write"}  # and it checks out nothing: no pull-request code runs with it
            assert not _uses(job, "actions/checkout") and all("uses" in step or "gh api" in step["run"] for step in job["steps"])
        assert job["permissions"] == expected, f"{name}:{job_id}"
        assert not any(step.get("with", {}).get("comment-on-pr") for step in _uses(job, "pulumi/actions")), "one comment, by pr-comment"


def test_python_uv_and_the_pulumi_cli_are_the_pinned_versions() -> None:
    python = (ROOT / ".python-version").read_text().strip()
    assert python == PYPROJECT["tool"]["mypy"]["python_version"] and PYPROJECT["project"]["requires-python"] == f">={python}"
    for name, job_id, job in _jobs():
        if not _uses(job, "actions/checkout"):
            continue  # pr-comment runs no project code
        (setup_python,) = _uses(job, "actions/setup-python")
        assert setup_python["with"] == {"python-version-file": ".python-version"}, f"{name}:{job_id}"
        (setup_uv,) = _uses(job, "astral-sh/setup-uv")
        assert "version" not in setup_uv["with"], "setup-uv reads [tool.uv] required-version from pyproject.toml"
        for step in _uses(job, "pulumi/actions"):
            assert step["with"]["pulumi-version"] == _pin("pulumi"), f"{name}:{job_id}: CLI != SDK"
    makefile = (ROOT / "Makefile").read_text()
    assert "required-version" in makefile  # the Makefile installs the same uv


def test_tests_run_unprivileged_on_the_declared_python() -> None:
    for name, workflow in WORKFLOWS.items():
        steps = workflow["jobs"]["test"]["steps"]
        runs = [step["run"] for step in steps if "run" in step]
        assert runs == ["sudo scripts/ensure-postgres", "make test"], name
        assert all(not step.get("run", "").startswith("sudo make") for _, _, job in _jobs() for step in job["steps"])


def test_the_cli_venvs_are_built_before_pulumi_runs() -> None:
    for name, job_id, job in _jobs():
        commands = [i for i, step in enumerate(job["steps"]) if "command" in step.get("with", {}) and step["uses"].startswith("pulumi/actions@")]
        if not commands:
            continue
        before = " ".join(step.get("run", "") for step in job["steps"][: commands[0]])
        assert "uv sync --locked" in before and "--group" not in before and "--all-groups" not in before, f"{name}:{job_id}"
        assert "uv venv --seed policy/venv" in before and "-r policy/requirements.txt" in before, f"{name}:{job_id}"


def test_publishing_the_pack_is_optional_and_precedes_the_deploy() -> None:
    steps = WORKFLOWS["deploy.yml"]["jobs"]["up"]["steps"]
    (publish,) = [i for i, step in enumerate(steps) if "scripts/publish-policy-pack" in step.get("run", "")]
    (up,) = [i for i, step in enumerate(steps) if step.get("with", {}).get("command") == "up"]
    assert publish < up and steps[publish]["if"] == "${{ vars.PULUMI_POLICY_GROUP != '' }}"
    assert "--config policy/config/prod.json" in steps[publish]["run"]
    cli = [i for i, step in enumerate(steps) if step.get("uses", "").startswith("pulumi/actions@") and "command" not in step["with"]]
    assert cli and cli[0] < publish  # the CLI is installed before the script calls it


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "zizmor"), "--offline", "--no-progress", "--color=never", "--persona=auditor", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_actionlint_and_zizmor_report_nothing() -> None:
    lint = _actionlint(*sorted(WORKFLOW_DIR.glob("*.yml")))
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
    audit = _zizmor(WORKFLOW_DIR)
    assert audit.returncode == 0 and "No findings to report" in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.parametrize("tool", ["actionlint", "zizmor"])
def test_the_linters_do_find_problems(tool: str, tmp_path: Path) -> None:
    """Guard against a linter that checks nothing: an unpinned action with a persisted token and a typo'd key."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.head_commit.message }}\n")
    result = _actionlint(bad) if tool == "actionlint" else _zizmor(bad.parent)
    assert result.returncode != 0
    assert ("stepz" in result.stdout) if tool == "actionlint" else ("unpinned-uses" in result.stdout)
