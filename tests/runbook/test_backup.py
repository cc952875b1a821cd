"""`backup` against moto's RDS: snapshots taken, reused, refused and recorded; a restore test on a real PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from runbook import backup
from runbook.cli import main
from task_service import contract
from tests.runbook import moto_stack, seed
from tests.runbook.rewriting_proxy import rewriting_proxy

MONOLITH_ID = "myteacher-db"
FAST = ["--poll-seconds", "0.1", "--wait-minutes", "1"]


def _monolith(stack: moto_stack.Stack, *, encrypted: bool = True) -> str:
    """The monolith's RDS instance in moto; the outputs name its host as the stack config would."""
    db = stack.client("rds").create_db_instance(
        DBInstanceIdentifier=MONOLITH_ID, DBInstanceClass="db.t3.medium", Engine="postgres", EngineVersion="16.4",
        MasterUsername="myteacher", MasterUserPassword="monolith-password", AllocatedStorage=120, StorageEncrypted=encrypted,
    )["DBInstance"]
    stack.assign({contract.MONOLITH_DB_HOST: db["Endpoint"]["Address"]})
    return str(db["Endpoint"]["Address"])


def _manual(stack: moto_stack.Stack, source: str = MONOLITH_ID) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.client("rds").describe_db_snapshots(DBInstanceIdentifier=source, SnapshotType="manual")["DBSnapshots"]
    return found


def _run(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any] | None]:
    record = tmp_path / "backup-prod.json"
    code = main(["backup", "--outputs", outputs_file(stack.outputs), "--record", str(record), *FAST, *extra])
    return code, json.loads(record.read_text()) if record.exists() else None


def test_takes_waits_verifies_and_records_a_snapshot(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _monolith(stack)
    code, record = _run(stack, outputs_file, tmp_path)
    assert code == 0, capsys.readouterr()
    [live] = _manual(stack)
    assert live["DBSnapshotIdentifier"].startswith(f"{stack.value(contract.NAME_PREFIX)}-backup-monolith-")
    assert {"Key": "ManagedBy", "Value": "task-service-runbook"} in live["TagList"]
    assert record is not None and record["stack"] == "prod"
    [entry] = record["snapshots"]
    assert entry["snapshotId"] == live["DBSnapshotIdentifier"] and entry["snapshotArn"] == live["DBSnapshotArn"]
    assert (entry["source"], entry["kind"], entry["sourceId"], entry["reused"]) == ("monolith", "instance", MONOLITH_ID, False)
    assert (entry["engine"], entry["engineVersion"], entry["allocatedStorageGb"], entry["encrypted"]) == ("postgres", "16.4", 120, True)
    assert backup.monolith_snapshot(backup.load_record(str(tmp_path / "backup-prod.json"), "prod")) == entry
    out = capsys.readouterr().out
    assert "encrypted" in out and "PASS" in out and "FAIL" not in out


def test_a_second_run_reuses_the_recent_snapshot_and_an_old_one_does_not_count(
    stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path
) -> None:
    _monolith(stack)
    assert _run(stack, outputs_file, tmp_path)[0] == 0
    code, record = _run(stack, outputs_file, tmp_path)
    assert code == 0 and record is not None and record["snapshots"][0]["reused"] is True
    assert len(_manual(stack)) == 1
    time.sleep(1.1)  # snapshot names carry the second they were taken
    code, record = _run(stack, outputs_file, tmp_path, "--max-age-hours", "0.0002")  # under a second
    assert code == 0 and record is not None and record["snapshots"][0]["reused"] is False
    assert len(_manual(stack)) == 2


def test_an_unencrypted_snapshot_is_refused_and_not_recorded(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _monolith(stack, encrypted=False)
    code, record = _run(stack, outputs_file, tmp_path)
    assert code == 1 and record is None
    out = capsys.readouterr().out
    assert "NOT encrypted: refused (copy it encrypted with `aws rds copy-db-snapshot --kms-key-id <key>`" in out and "NOT recorded" in out
    [plain] = _manual(stack)
    key = stack.client("kms").create_key()["KeyMetadata"]["Arn"]
    stack.client("rds").copy_db_snapshot(
        SourceDBSnapshotIdentifier=plain["DBSnapshotIdentifier"], TargetDBSnapshotIdentifier=f"{plain['DBSnapshotIdentifier']}-encrypted", KmsKeyId=key
    )
    code, record = _run(stack, outputs_file, tmp_path)  # the remedy it printed works
    assert code == 0 and record is not None
    assert (record["snapshots"][0]["snapshotId"], record["snapshots"][0]["encrypted"]) == (f"{plain['DBSnapshotIdentifier']}-encrypted", True)


def test_an_aurora_monolith_gets_a_cluster_snapshot(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path) -> None:
    rds = stack.client("rds")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="myteacher-aurora", Engine="aurora-postgresql", EngineVersion="16.4",
        MasterUsername="myteacher", MasterUserPassword="monolith-password", StorageEncrypted=True,
    )["DBCluster"]
    rds.create_db_instance(DBInstanceIdentifier="myteacher-aurora-1", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql", DBClusterIdentifier="myteacher-aurora")
    writer = rds.describe_db_instances(DBInstanceIdentifier="myteacher-aurora-1")["DBInstances"][0]["Endpoint"]["Address"]
    for host in (cluster["Endpoint"], writer):  # the cluster endpoint, or its writer's own
        stack.assign({contract.MONOLITH_DB_HOST: host})
        code, record = _run(stack, outputs_file, tmp_path)
        assert code == 0 and record is not None
        assert (record["snapshots"][0]["kind"], record["snapshots"][0]["sourceId"]) == ("cluster", "myteacher-aurora")
    [snapshot] = rds.describe_db_cluster_snapshots(DBClusterIdentifier="myteacher-aurora", SnapshotType="manual")["DBClusterSnapshots"]
    assert snapshot["DBClusterSnapshotIdentifier"] == record["snapshots"][0]["snapshotId"]


def test_the_task_service_database_on_request_and_by_id(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path) -> None:
    _monolith(stack)
    stack.assign({contract.MONOLITH_DB_HOST: "not-the-monolith.example.com"})  # --monolith-db wins over the host
    code, record = _run(stack, outputs_file, tmp_path, "--monolith-db", MONOLITH_ID, "--include-task-service")
    assert code == 0 and record is not None
    assert [(s["source"], s["sourceId"]) for s in record["snapshots"]] == [
        ("monolith", MONOLITH_ID), ("task-service", stack.value(contract.DB_INSTANCE_ID))
    ]


def test_dry_run_changes_nothing(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _monolith(stack)
    code, record = _run(stack, outputs_file, tmp_path, "--dry-run")
    assert (code, record, _manual(stack)) == (0, None, [])
    assert f"would call rds.create_db_snapshot(DBSnapshotIdentifier='{stack.value(contract.NAME_PREFIX)}-backup-monolith-" in capsys.readouterr().out


def test_bad_input_exits_2_and_changes_nothing(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _monolith(stack)
    stack.assign({contract.MONOLITH_DB_HOST: "nowhere.example.com"})
    assert _run(stack, outputs_file, tmp_path) == (2, None)
    assert "no RDS DB instance or Aurora cluster in this region answers at nowhere.example.com" in capsys.readouterr().err
    assert _run(stack, outputs_file, tmp_path, "--monolith-db", "nope") == (2, None)
    assert "no RDS DB instance or Aurora cluster is called 'nope'" in capsys.readouterr().err
    assert _run(stack, outputs_file, tmp_path, "--restore-test") == (2, None)
    assert "--restore-test needs --restore-dsn" in capsys.readouterr().err
    assert _manual(stack) == []


@pytest.mark.parametrize("dsn", ["postgresql://u:Hunter2-S3cret%zz@db.example.com/task_service", "user=u password='Hunter2-S3cret"])
def test_a_malformed_restore_dsn_is_refused_without_its_password(
    dsn: str, stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _monolith(stack)
    assert _run(stack, outputs_file, tmp_path, "--restore-test", "--restore-dsn", dsn) == (2, None)
    captured = capsys.readouterr()
    assert "--restore-dsn DSN is malformed" in captured.err
    assert "Hunter2-S3cret" not in captured.out + captured.err
    assert _manual(stack) == []


def test_a_snapshot_that_never_becomes_available_ends_the_wait(
    stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _monolith(stack)

    def still_creating(action: str, body: bytes) -> bytes:
        return body.replace(b"<Status>available</Status>", b"<Status>creating</Status>") if action == "DescribeDBSnapshots" else body

    with rewriting_proxy(moto_stack.os.environ["AWS_ENDPOINT_URL"], still_creating) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        record = tmp_path / "backup-prod.json"
        started = time.monotonic()
        code = main(["backup", "--outputs", outputs_file(stack.outputs), "--record", str(record), "--wait-minutes", "0.02", "--poll-seconds", "0.3"])
        elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 1 and not record.exists() and elapsed < 10
    assert captured.err.count("waiting for snapshot") >= 3  # visible as it happens: one line per poll, on stderr
    assert "still creating after 1 s (limit 1 s)" in captured.out and "NOT recorded" in captured.out


def test_json_output(stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _monolith(stack)
    assert _run(stack, outputs_file, tmp_path, "--json")[0] == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["record"].endswith("backup-prod.json") and document["stack"] == "prod"
    assert {c["result"] for c in document["checks"]} == {"PASS"}
    assert document["snapshots"][0]["snapshotId"].startswith(f"{stack.value(contract.NAME_PREFIX)}-backup-monolith-")
    assert [n["command"] for n in document["next"]][0] == "python -m runbook preflight --stack prod"
    assert "created" in captured.err  # progress stays off stdout


def test_restore_test_counts_rows_in_the_restored_copy_and_deletes_it(
    stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, new_database: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto restores the instance; its endpoint is not reachable, so `hostaddr` (as through a tunnel) reaches a real PostgreSQL."""
    _monolith(stack)
    restored = new_database("restored")
    seed.schema_and_rows(restored)
    monkeypatch.setenv("PGPASSWORD", "do-not-print-this-password")
    code, record = _run(stack, outputs_file, tmp_path, "--restore-test", "--restore-dsn", restored.replace("host=", "hostaddr="))
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert record is not None
    result = record["snapshots"][0]["restoreTest"]
    assert result["passed"] is True
    assert result["rows"] == {f"public.{table}": count for table, count in seed.ROWS.items()}
    remaining = [i["DBInstanceIdentifier"] for i in stack.client("rds").describe_db_instances()["DBInstances"]]
    assert result["instance"] not in remaining and result["instance"].startswith(f"{stack.value(contract.NAME_PREFIX)}-restore-test-")
    assert "do-not-print-this-password" not in captured.out + captured.err
    code, again = _run(stack, outputs_file, tmp_path)  # reusing the snapshot keeps its restore test
    assert code == 0 and again is not None and again["snapshots"][0]["reused"] is True
    assert again["snapshots"][0]["restoreTest"] == result


def test_a_failed_restore_test_fails_the_backup_and_still_deletes(
    stack: moto_stack.Stack, outputs_file: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _monolith(stack)
    code, record = _run(stack, outputs_file, tmp_path, "--restore-test", "--restore-dsn", "hostaddr=127.0.0.1 port=1 user=nobody connect_timeout=2")
    out = capsys.readouterr().out
    assert code == 1 and record is None
    assert "restores" in out and "cannot connect to the restored database" in out
    restored = [i for i in stack.client("rds").describe_db_instances()["DBInstances"] if "restore-test" in i["DBInstanceIdentifier"]]
    assert restored == []


def test_a_missing_or_foreign_record_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(backup.BadInput, match="no backup record"):
        backup.load_record(str(tmp_path / "none.json"))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"version": 1, "stack": "dev", "region": "ap-northeast-1", "takenAt": "", "snapshots": [{"snapshotId": "x"}]}))
    with pytest.raises(backup.BadInput, match="is for stack 'dev', not 'prod'"):
        backup.load_record(str(other), "prod")
    other.write_text("{")
    with pytest.raises(backup.BadInput, match="cannot be read"):
        backup.load_record(str(other))
    other.write_text('{"version": NaN}')
    with pytest.raises(backup.BadInput, match="cannot be read"):
        backup.load_record(str(other))
