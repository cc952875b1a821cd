"""`render`: golden files for a deployed stack and a preview, plus targeted assertions.

Regenerate the golden files after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runbook.canary import CONFIG_KEY
from runbook.cli import main
from runbook.outputs import PREVIEW_UNKNOWN
from task_service import contract
from task_service.tables import qualified
from tests.runbook import moto_stack

HERE = Path(__file__).parent
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
    values = moto_stack.program_outputs()
    text = _render(capsys, "outputs-prod.json")
    needed = (
        contract.LISTENER_RULE_ARN,
        contract.TARGET_GROUP_ARN,
        contract.MONOLITH_TARGET_GROUP_ARN,
        contract.DMS_REPLICATION_TASK_ARN,
        contract.DB_SECRET_ARN,
        contract.DB_ADDRESS,
        contract.DASHBOARD_URL,
    )
    for output in needed:
        assert values[output.name] in text, output.name
    assert "not available" not in text
    for weight in (5, 25, 50, 100):
        assert (
            f"pulumi config set {CONFIG_KEY} {weight} -s prod && pulumi up -s prod --policy-pack policy "
            "--policy-pack-config policy/config/prod.json" in text
        )
    app_user = values[contract.MONOLITH_DB_APP_USER.name]
    for table in values[contract.DMS_TABLES.name]:
        schema, name = table.split(".")
        assert f'REVOKE INSERT, UPDATE, DELETE ON "{schema}"."{name}" FROM "{app_user}";' in text
    for gate in ("error rate < 1%", "p95 < 500 ms", "CPU < 70%", "memory < 80%", "holds 30 minutes"):
        assert gate in text
    assert "target: under 5 minutes" in text
    assert "python -m runbook integrity --outputs outputs-prod.json --stack prod --source 'host=" in text
    assert f"pulumi config set {CONFIG_KEY} 0 -s prod" in text


def test_preview_says_so_at_the_steps_that_need_unknowns(capsys: pytest.CaptureFixture[str]) -> None:
    text = _render(capsys, "outputs-preview-prod.json")
    assert contract.PREVIEW_UNKNOWN_KEY not in text
    assert "[secret]" not in text
    address, rule = contract.DB_ADDRESS.name, contract.LISTENER_RULE_ARN.name
    schema = text.split("## 3. Apply the schema")[1].split("## 4.")[0]
    assert "Not available yet" in schema and f"`{address}`: {PREVIEW_UNKNOWN}" in schema
    assert f"'host=<{address}> port=5432 " in schema
    canary = text.split("## 8. Canary")[1].split("## 9.")[0]
    assert f"`{rule}`: {PREVIEW_UNKNOWN}" in canary
    assert f"Listener rule `<{rule}: not available>`" in canary
    deploy = text.split("## 2. Deploy")[1].split("## 3.")[0]
    assert "Not available" not in deploy


def test_secrets_without_show_secrets_are_flagged(outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    values = moto_stack.program_outputs()
    secret = contract.DB_SECRET_ARN.name
    values[secret] = "[secret]"
    assert main(["render", "--outputs", outputs_file(values)]) == 0
    prereqs = capsys.readouterr().out.split("## 1. Prerequisites")[1].split("## 2.")[0]
    assert f"`{secret}`: a secret printed without --show-secrets" in prereqs
    assert f"--secret-id '<{secret}: not available>'" in prereqs


def test_dev_without_dms_says_the_step_is_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    text = _render(capsys, "outputs-dev.json")
    assert "DMS is disabled in this stack" in text
    assert "dms stop" not in text
    assert "-s dev" in text
    assert "not available" not in text


def _revoked(text: str) -> list[str]:
    """The tables the REVOKE statements name, as schema.table (the SQL quotes them as identifiers)."""
    return [
        line.split(" ON ")[1].split(" FROM ")[0].replace('"', "")
        for line in text.splitlines()
        if line.startswith("REVOKE ")
    ]


def test_the_end_revokes_writes_on_the_replicated_tables_only(outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    values = moto_stack.program_outputs()
    replicated = qualified()[:2]
    values[contract.DMS_TABLES.name] = replicated
    assert main(["render", "--outputs", outputs_file(values)]) == 0
    text = capsys.readouterr().out
    assert _revoked(text) == replicated
    assert "GRANT SELECT ON " + ", ".join('"' + name.replace(".", '"."') + '"' for name in replicated) + " TO " in text


def test_without_dms_the_end_revokes_writes_on_all_six(capsys: pytest.CaptureFixture[str]) -> None:
    assert _revoked(_render(capsys, "outputs-dev.json")) == qualified()


def test_a_replicated_table_outside_the_six_is_bad_input(outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    values = moto_stack.program_outputs()
    values[contract.DMS_TABLES.name] = [*qualified()[:1], "public.users"]
    assert main(["render", "--outputs", outputs_file(values)]) == 2
    err = capsys.readouterr().err
    assert f"stack output '{contract.DMS_TABLES.name}'" in err and "'public.users'" in err


def test_writes_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "runbook.md"
    assert main(["render", "--outputs", "tests/runbook/fixtures/outputs-prod.json", "--out", str(target)]) == 0
    assert target.read_text() == (GOLDEN / "runbook-prod.md").read_text()


def test_backup_and_load_test_come_before_what_they_guard(capsys: pytest.CaptureFixture[str]) -> None:
    """Seed 001: the verified backup before DMS starts, the load test before the first canary step."""
    text = _render(capsys, "outputs-prod.json")
    titles = [line for line in text.splitlines() if line.startswith("## ")]
    order = [next(i for i, t in enumerate(titles) if word in t) for word in ("backup", "Start DMS", "Load test", "Canary")]
    assert order == sorted(order) and order[1] == order[0] + 1 and order[3] == order[2] + 1
    backup = text.split("Verified backup")[1].split("## ")[0]
    assert "python -m runbook backup --outputs outputs-prod.json --stack prod --include-task-service --restore-test" in backup
    load = text.split("Load test before any traffic")[1].split("## ")[0]
    assert "python -m runbook loadtest --outputs outputs-prod.json --stack prod --url" in load
    parameter = moto_stack.program_outputs()[contract.LOADTEST_RESULT_PARAMETER.name]
    assert f"SSM `{parameter}`" in load and "testRoute.enabled true" in load  # prod has no test route yet


def test_the_rollback_scenarios_name_the_recorded_snapshots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "backup-prod.json"
    snapshot = {"kind": "instance", "createdAt": "2026-12-01T08:00:00Z", "encrypted": True}
    record.write_text(json.dumps({
        "version": 1, "stack": "prod", "region": "ap-northeast-1", "takenAt": "2026-12-01T08:00:00Z",
        "snapshots": [{**snapshot, "source": "monolith", "snapshotId": "task-service-backup-monolith-1"},
                      {**snapshot, "source": "task-service", "snapshotId": "task-service-backup-task-service-1"}],
    }))
    rollback = _render(capsys, "outputs-prod.json", "--backup", str(record)).split("## 10. Rollback")[1].split("## 11.")[0]
    assert "--db-snapshot-identifier task-service-backup-monolith-1" in rollback
    assert "--db-snapshot-identifier task-service-backup-task-service-1" in rollback
    assert main(["render", "--outputs", "tests/runbook/fixtures/outputs-prod.json", "--backup", str(tmp_path / "none.json")]) == 2


@pytest.mark.parametrize("name", ["outputs-prod.json", "outputs-dev.json"])
def test_emergency_rollback_comes_first_and_every_step_says_how_to_tell_it_worked(capsys: pytest.CaptureFixture[str], name: str) -> None:
    text = _render(capsys, name)
    head, procedure = text.split("\n## 1. ", 1)
    assert "> **Emergency rollback**" in head and "rollback --yes --outputs outputs-" in head
    steps = ("1. " + procedure).split("\n## ")
    assert [step.split(".", 1)[0] for step in steps] == [str(n) for n in range(1, 12)]
    done = [step for step in steps if "skip this step" not in step]  # dev has no DMS: its backup and DMS steps are skipped
    assert len(done) == (9 if name == "outputs-dev.json" else 11)
    assert all(step.count("**Worked when:**") == 1 for step in done), [step.split("\n", 1)[0] for step in done if "**Worked when:**" not in step]


def test_the_app_role_and_the_first_rotation_follow_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/first-deploy.md's order: schema, the application's role, then both secrets rotated once by hand (master first)."""
    values = moto_stack.program_outputs()
    step = _render(capsys, "outputs-prod.json").split("## 3. ")[1].split("## 4. ")[0]
    region, master, app = (values[o.name] for o in (contract.REGION, contract.DB_SECRET_ARN, contract.DB_APP_SECRET_ARN))
    commands = (
        "python -m runbook schema apply --dsn",
        "python -m runbook schema app-role --outputs outputs-prod.json --stack prod --dsn",
        f"aws secretsmanager rotate-secret --region {region} --secret-id {master}\n",
        f"aws secretsmanager rotate-secret --region {region} --secret-id {app}\n",
    )
    positions = [step.index(command) for command in commands]
    assert positions == sorted(positions)
    assert "/aws/lambda/task-service-rotate-master" in step and "/aws/lambda/task-service-rotate-app" in step
    assert "read `PGPASSWORD` again" in step
