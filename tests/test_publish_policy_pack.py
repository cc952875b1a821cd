"""scripts/publish-policy-pack against a stand-in `pulumi` that records its calls and answers `policy ls`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "publish-policy-pack"
VERSION = next(line.split(":", 1)[1].strip() for line in (ROOT / "policy" / "PulumiPolicy.yaml").read_text().splitlines() if line.startswith("version:"))
FAKE_PULUMI = """#!{python}
import json, os, sys
with open(os.environ["CALLS"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\\n")
if sys.argv[1:3] == ["policy", "ls"]:
    print(os.environ.get("LS_OUTPUT", "[]"))
if sys.argv[1:3] == ["policy", "publish"] and os.environ.get("PUBLISH_FAILS"):
    print("error: [409] Conflict: the version already exists", file=sys.stderr)
    sys.exit(255)
"""


@pytest.fixture
def cli(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI.format(python=sys.executable))
    (bin_dir / "pulumi").chmod(0o755)
    calls = tmp_path / "calls.jsonl"

    def run(*args: str, path: str | None = None, **env: str) -> tuple[int, str, str, list[dict]]:
        environ = {**os.environ, "PATH": path if path is not None else f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), **env}
        result = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
        recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
        calls.unlink(missing_ok=True)
        return result.returncode, result.stdout, result.stderr, recorded

    return run


ARGS = ("--org", "acme", "--policy-group", "prod-stacks", "--config", "policy/config/prod.json")


def test_first_publish_then_enable_with_the_prod_config(cli) -> None:
    code, out, err, calls = cli(*ARGS)
    assert (code, err) == (0, "")
    assert [c["argv"] for c in calls] == [
        ["policy", "ls", "acme", "--json"],
        ["policy", "publish", "acme"],
        ["policy", "enable", "acme/task-service-policies", VERSION, "--policy-group", "prod-stacks", "--config", str(ROOT / "policy/config/prod.json")],
    ]
    assert calls[1]["cwd"] == str(ROOT / "policy")  # publish uploads the pack directory only
    assert f"acme/task-service-policies {VERSION} is enabled for policy group 'prod-stacks'" in out


def test_a_published_version_is_only_enabled(cli) -> None:
    listing = json.dumps([{"name": "other", "versions": [VERSION]}, {"name": "task-service-policies", "versions": ["0.0.9", VERSION]}])
    code, out, _, calls = cli(*ARGS, LS_OUTPUT=listing)
    assert code == 0 and "already published" in out
    assert [c["argv"][:2] for c in calls] == [["policy", "ls"], ["policy", "enable"]]


def test_a_failed_publish_exits_1_and_enables_nothing(cli) -> None:
    code, _, err, calls = cli(*ARGS, PUBLISH_FAILS="1")
    assert code == 1 and [c["argv"][1] for c in calls] == ["ls", "publish"]
    assert err.strip() == "publish-policy-pack: `pulumi policy publish acme` failed (exit 255): error: [409] Conflict: the version already exists"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--org", "acme/x", "--policy-group", "g", "--config", "policy/config/prod.json"), "--org 'acme/x' must be a Pulumi organization name"),
        (("--org", "acme", "--policy-group", " ", "--config", "policy/config/prod.json"), "--policy-group must name the policy group"),
        (("--org", "acme", "--policy-group", "g", "--config", "policy/config/nope.json"), "policy/config/nope.json not found"),
        (("--org", "acme", "--policy-group", "g", "--config", "README.md"), "README.md is not valid JSON (line 1"),
        (("--org", "acme", "--policy-group", "g", "--config", "policy/config/prod.json", "--policy-pack", "schema"), "schema/PulumiPolicy.yaml not found"),
        (("--org", "acme", "--config", "policy/config/prod.json"), "the following arguments are required: --policy-group"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_calls_nothing(cli, args: tuple[str, ...], message: str) -> None:
    code, _, err, calls = cli(*args)
    assert code == 2 and calls == []
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_missing_cli_exits_2(cli) -> None:
    code, _, err, calls = cli(*ARGS, path="/nonexistent")
    assert code == 2 and calls == [] and "pulumi CLI not found on PATH" in err
