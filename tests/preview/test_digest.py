"""`--json` is the CLI's PreviewDigest plus `policyViolations`, in the shape of the committed example, and the
Markdown summary reaches $GITHUB_STEP_SUMMARY and `--summary FILE`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from preview.cli import main
from preview.stack_files import SECURE_PLACEHOLDER
from preview.wire import UNKNOWN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "preview-json-example.json"
PROD_POLICY = str(ROOT / "policy" / "config" / "prod.json")
FREE_FORM = {"config", "changeSummary", "steps[].newState.inputs", "steps[].newState.outputs", "steps[].newState.propertyDependencies"}
"""Maps whose keys are data (config keys, property names, ops), not part of the shape."""
BROKEN = {"task-service:db.multiAz": False, "task-service:db.monitoringInterval": 0, "aws:secretKey": {"secure": "v1:c2VjcmV0"}}
"""Prod with one mandatory and one advisory finding and a secret in its config: every part of the shape is used."""


def shape(value: Any, path: str = "") -> set[tuple[str, str]]:
    """Every (path, JSON type) in `value`; list items share a path (`[]`), free-form maps are one `object`."""
    if isinstance(value, dict) and path not in FREE_FORM:
        return {(path, "object")}.union(*(shape(v, f"{path}.{k}" if path else k) for k, v in value.items()))
    if isinstance(value, list):
        return {(path, "array")}.union(*(shape(v, f"{path}[]") for v in value))
    return {(path, "object" if isinstance(value, dict) else type(value).__name__)}


@pytest.fixture
def broken_digest(capsys: pytest.CaptureFixture[str], project: Path, write_stack: Callable[..., str]) -> dict[str, Any]:
    stack = write_stack("prod", BROKEN)
    assert main(["-C", str(project), "-s", stack, "--policy-pack-config", PROD_POLICY, "--json"]) == 1
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_the_json_has_exactly_the_shape_of_the_committed_example(broken_digest: dict[str, Any]) -> None:
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert shape(broken_digest) == shape(example)
    assert list(broken_digest) == ["config", "steps", "diagnostics", "duration", "changeSummary", "policyViolations"]


def test_one_naming_style_throughout(broken_digest: dict[str, Any]) -> None:
    keys = {path.rsplit(".", 1)[-1].removesuffix("[]") for path, _ in shape(broken_digest) if path}
    assert {key for key in keys if not re.fullmatch(r"[a-z][a-zA-Z0-9]*", key)} == set()


def test_policy_results_are_diagnostics_and_one_list(broken_digest: dict[str, Any]) -> None:
    violations = {(v["policyName"], v["enforcementLevel"]) for v in broken_digest["policyViolations"]}
    assert violations == {("multi-az", "mandatory"), ("rds-enhanced-monitoring", "advisory")}
    assert all(v["policyPackName"] == "task-service-policies" and v["urn"].endswith("::task-service-db-instance") for v in broken_digest["policyViolations"])
    by_prefix = {(d["prefix"], d["severity"]) for d in broken_digest["diagnostics"]}
    assert by_prefix == {("mandatory: ", "error"), ("advisory: ", "warning"), ("not applicable: ", "info")}
    assert all(d["message"].startswith(d["prefix"]) for d in broken_digest["diagnostics"])


def test_config_is_blinded_and_compact_as_the_cli_prints_it(broken_digest: dict[str, Any]) -> None:
    config = broken_digest["config"]
    assert config["aws:secretKey"] == "[secret]" and "v1:c2VjcmV0" not in json.dumps(broken_digest)
    assert SECURE_PLACEHOLDER not in json.dumps(broken_digest)
    assert config["task-service:canaryWeight"] == "0"
    assert json.loads(config["task-service:db"])["multiAz"] is False and ": " not in config["task-service:db"]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_jq_scripts_for_real_previews_work(broken_digest: dict[str, Any]) -> None:
    def jq(program: str) -> str:
        done = subprocess.run(["jq", "-r", program], input=json.dumps(broken_digest), capture_output=True, text=True, check=True)
        return done.stdout.strip()

    assert jq(".changeSummary.create") == str(len(broken_digest["steps"]))
    assert jq('[.steps[] | select(.op == "create" and .newState.type == "aws:rds/instance:Instance")] | length') == "1"
    assert jq('[.diagnostics[] | select(.severity == "error")] | length') == "1"
    assert jq('.steps[] | select(.newState.type == "pulumi:pulumi:Stack") | .newState.outputs.dbAddress') == UNKNOWN
    assert jq('.policyViolations[] | select(.enforcementLevel == "mandatory") | .policyName') == "multi-az"


def test_summary_goes_to_the_step_summary_and_the_file(
    capsys: pytest.CaptureFixture[str], project: Path, write_stack: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    stack = write_stack("prod", BROKEN)
    summary = tmp_path / "summary.md"
    assert main(["-C", str(project), "-s", stack, "--policy-pack-config", PROD_POLICY, "--summary", str(summary)]) == 1
    capsys.readouterr()
    text = summary.read_text()
    assert step_summary.read_text() == "earlier step\n" + text  # appended, as GitHub expects
    assert text.startswith("### Hermetic preview of `task-service/prod`\n\n❌ 1 mandatory policy violation(s): exit 1.")
    assert "| create | 92 (the stack and 91 resources) |" in text and "| `aws:rds/instance:Instance` | 1 |" in text
    mandatory = text.split("**❌ mandatory (1)**", 1)[1].split("\n\n", 2)[1]
    assert mandatory.splitlines()[2] == (
        "| `multi-az` | `task-service-db-instance` (aws:rds/instance:Instance) "
        "| multiAz is not true: an AZ outage or a maintenance reboot takes the service down. "
        "| set multiAz=True (dev may run single-AZ: its config sets this policy to advisory). |"
    )
    assert "**⚠️ advisory (1)**" in text and "| `rds-enhanced-monitoring` |" in text
    assert "**∅ not applicable (1)**" in text and "| `alb-canary-progression` | `task-service-route-rule`" in text
    assert "| `canaryWeight` | `0` |" in text and "| `targetGroupArn` | *known after deploy* |" in text
    assert UNKNOWN not in text and "v1:c2VjcmV0" not in text


def test_a_clean_run_says_so_and_an_unwritable_summary_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    summary = tmp_path / "summary.md"
    assert main(["-C", str(ROOT), "-s", "dev", "--summary", str(summary)]) == 0
    assert "✅ exit 0." in summary.read_text() and "**⚠️ advisory (1)**" in summary.read_text()
    capsys.readouterr()
    assert main(["-C", str(ROOT), "-s", "dev", "--no-policy", "--summary", str(tmp_path / "missing" / "summary.md")]) == 2
    assert capsys.readouterr().err == f"error: cannot write summary file {tmp_path / 'missing' / 'summary.md'}: No such file or directory\n"
