"""`render`: golden files for a deployed stack and a preview, plus targeted assertions.

Regenerate the golden files after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runbook.cli import main
from runbook.outputs import UNKNOWN_SENTINEL
from runbook.tables import TABLES

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
GOLDEN = HERE / "golden"


def _render(capsys: pytest.CaptureFixture[str], name: str, *extra: str) -> str:
    # The path printed in commands is the one given, so render from a stable relative path.
    assert main(["render", "--outputs", f"tests/runbook/fixtures/{name}", *extra]) == 0
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE.parent.parent)


@pytest.mark.parametrize("name", ["outputs-prod.json", "outputs-preview-prod.json", "outputs-dev.json"])
def test_matches_golden(capsys: pytest.CaptureFixture[str], name: str) -> None:
    text = _render(capsys, name)
    golden = GOLDEN / name.replace("outputs-", "runbook-").replace(".json", ".md")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_full_outputs_fill_every_value_an_operator_needs(capsys: pytest.CaptureFixture[str]) -> None:
    values = json.loads((FIXTURES / "outputs-prod.json").read_text())
    text = _render(capsys, "outputs-prod.json")
    for key in ("listenerRuleArn", "targetGroupArn", "monolithTargetGroupArn", "dmsReplicationTaskArn", "dbSecretArn", "dbAddress", "dashboardUrl"):
        assert values[key] in text, key
    assert "not available" not in text
    for weight in (5, 25, 50, 100):
        assert (
            f"pulumi config set canaryWeight {weight} -s prod && pulumi up -s prod --policy-pack policy "
            "--policy-pack-config policy/config/prod.json" in text
        )
    for table in TABLES:
        assert f"REVOKE INSERT, UPDATE, DELETE ON public.{table} FROM myteacher_app_user;" in text
    for gate in ("error rate < 1%", "p95 < 500 ms", "CPU < 70%", "memory < 80%", "holds 30 minutes"):
        assert gate in text
    assert "target: under 5 minutes" in text
    assert "pulumi config set canaryWeight 0 -s prod" in text


def test_preview_says_so_at_the_steps_that_need_unknowns(capsys: pytest.CaptureFixture[str]) -> None:
    text = _render(capsys, "outputs-preview-prod.json")
    assert UNKNOWN_SENTINEL not in text
    assert "[secret]" not in text
    schema = text.split("## 3. Apply the schema")[1].split("## 4.")[0]
    assert "Not available yet" in schema and "`dbAddress`: unknown until the stack is deployed" in schema
    assert "host=<dbAddress: not available>" in schema
    canary = text.split("## 6. Canary")[1].split("## 7.")[0]
    assert "`listenerRuleArn`: unknown until the stack is deployed" in canary
    assert "Listener rule `<listenerRuleArn: not available>`" in canary
    deploy = text.split("## 2. Deploy")[1].split("## 3.")[0]
    assert "Not available" not in deploy


def test_secrets_without_show_secrets_are_flagged(outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    values = json.loads((FIXTURES / "outputs-prod.json").read_text())
    values["dbSecretArn"] = "[secret]"
    assert main(["render", "--outputs", outputs_file(values)]) == 0
    prereqs = capsys.readouterr().out.split("## 1. Prerequisites")[1].split("## 2.")[0]
    assert "`dbSecretArn`: a secret printed without --show-secrets" in prereqs
    assert "--secret-id <dbSecretArn: not available>" in prereqs


def test_dev_without_dms_says_the_step_is_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    text = _render(capsys, "outputs-dev.json")
    assert "DMS is disabled in this stack" in text
    assert "dms stop" not in text
    assert "-s dev" in text


def test_writes_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "runbook.md"
    assert main(["render", "--outputs", "tests/runbook/fixtures/outputs-prod.json", "--out", str(target)]) == 0
    assert target.read_text() == (GOLDEN / "runbook-prod.md").read_text()
