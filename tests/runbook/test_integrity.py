"""`integrity` on two real databases: identical passes; a changed, missing or extra row in any table fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook import integrity
from runbook.cli import main
from runbook.db import connect
from task_service import contract
from task_service.tables import TABLES, qualified
from tests.runbook import seed

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def pair(new_database: Any) -> tuple[str, str]:
    source, target = new_database("source"), new_database("target")
    seed.schema_and_rows(source)
    seed.schema_and_rows(target)
    return source, target


def _by_table(source: str, target: str, samples: int = 5) -> dict[str, integrity.TableResult]:
    return {r.table: r for r in integrity.check(source, target, samples)}


def test_identical_databases_pass(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["integrity", "--source", pair[0], "--target", pair[1]]) == 0
    text = capsys.readouterr().out
    assert "6/6 tables identical" in text
    results = _by_table(*pair)
    assert {t: (r.source_rows, r.target_rows) for t, r in results.items()} == {t: (n, n) for t, n in seed.ROWS.items()}
    assert all(r.source_md5 == r.target_md5 and not r.differs for r in results.values())


def test_checksum_is_the_documented_sql(pair: tuple[str, str]) -> None:
    results = _by_table(*pair)
    with psycopg.connect(pair[0]) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        for table, pk in (("tasks", "id"), ("task_tag", "task_id, tag_id")):
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY column_name", (table,)
            )]
            row = conn.execute(
                f"SELECT md5(coalesce(string_agg(md5(ROW({', '.join(columns)})::text), '' ORDER BY {pk}), '')) FROM {table}"
            ).fetchone()
            assert row is not None and row[0] == results[table].source_md5


CHANGES = {
    "tasks": ("UPDATE tasks SET title = 'changed' WHERE id = 7", "(id=7) differs"),
    "task_images": ("UPDATE task_images SET file_path = 'x.png' WHERE id = 3", "(id=3) differs"),
    "task_tag": ("UPDATE task_tag SET tag_id = 99 WHERE task_id = 4 AND tag_id = 5", "(task_id=4, tag_id=5) missing in target"),
    "scheduled_group_tasks": ("UPDATE scheduled_group_tasks SET schedules = '[]' WHERE id = 2", "(id=2) differs"),
    "scheduled_task_executions": ("UPDATE scheduled_task_executions SET executed_at = executed_at + interval '1 second' WHERE id = 5", "(id=5) differs"),
    "scheduled_task_tags": ("UPDATE scheduled_task_tags SET tag_name = 'タグx' WHERE id = 9", "(id=9) differs"),
}
MISSING = {
    "tasks": ("DELETE FROM tasks WHERE id = 33", "(id=33) missing in target"),
    "task_images": ("DELETE FROM task_images WHERE id = 1", "(id=1) missing in target"),
    "task_tag": ("DELETE FROM task_tag WHERE task_id = 40 AND tag_id = 1", "(task_id=40, tag_id=1) missing in target"),
    "scheduled_group_tasks": ("DELETE FROM scheduled_group_tasks WHERE id = 6", "(id=6) missing in target"),
    "scheduled_task_executions": ("DELETE FROM scheduled_task_executions WHERE id = 12", "(id=12) missing in target"),
    "scheduled_task_tags": ("DELETE FROM scheduled_task_tags WHERE id = 4", "(id=4) missing in target"),
}
EXTRA = {
    "tasks": ("INSERT INTO tasks (id, user_id, title, created_at, updated_at) VALUES (41, 1, 'new', '2025-01-01', '2025-01-01')", "(id=41) extra in target"),
    "task_images": ("INSERT INTO task_images (id, task_id, file_path, created_at, updated_at) VALUES (0, 2, 'a', '2025-01-01', '2025-01-01')", "(id=0) extra in target"),
    "task_tag": ("INSERT INTO task_tag VALUES (20, 10)", "(task_id=20, tag_id=10) extra in target"),
    "scheduled_group_tasks": ("INSERT INTO scheduled_group_tasks (id, group_id, created_by, title, start_date, created_at, updated_at) VALUES (100, 1, 1, 't', '2025-01-01', '2025-01-01', '2025-01-01')", "(id=100) extra in target"),
    "scheduled_task_executions": ("INSERT INTO scheduled_task_executions (id, scheduled_task_id, executed_at, status, created_at, updated_at) VALUES (7000, 1, '2025-01-01', 'ok', '2025-01-01', '2025-01-01')", "(id=7000) extra in target"),
    "scheduled_task_tags": ("INSERT INTO scheduled_task_tags (id, scheduled_task_id, tag_name, created_at, updated_at) VALUES (10, 1, 'z', '2025-01-01', '2025-01-01')", "(id=10) extra in target"),
}


@pytest.mark.parametrize(
    ("changes", "counter"),
    [(CHANGES, "changed"), (MISSING, "missing"), (EXTRA, "extra")],
    ids=["changed-value", "missing-row", "extra-row"],
)
def test_each_table_reports_its_difference_with_the_key(
    pair: tuple[str, str], changes: dict[str, tuple[str, str]], counter: str
) -> None:
    source, target = pair
    seed.as_replica(target, ";\n".join(sql for sql, _ in changes.values()))
    results = _by_table(source, target)
    for table in TABLES:
        result = results[table]
        _, sample = changes[table]
        assert result.differs, table
        assert sample in result.samples, (table, result.samples)
        assert result.source_md5 != result.target_md5, table
        if table != "task_tag" or counter != "changed":
            assert getattr(result, counter) == 1, (table, result)
        expected_rows = seed.ROWS[table] + {"changed": 0, "missing": -1, "extra": 1}[counter]
        assert result.target_rows == expected_rows, table


def test_cli_prints_the_differing_keys_and_exits_1(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    seed.as_replica(pair[1], CHANGES["tasks"][0] + ";" + MISSING["scheduled_task_tags"][0])
    assert main(["integrity", "--source", pair[0], "--target", pair[1]]) == 1
    text = capsys.readouterr().out
    assert "tasks: 1 changed, 0 missing in target, 0 extra in target" in text
    assert "  (id=7) differs" in text
    assert "  (id=4) missing in target" in text
    assert "4/6 tables identical" in text


def test_samples_are_limited_but_counts_are_complete(pair: tuple[str, str]) -> None:
    seed.as_replica(pair[1], "DELETE FROM tasks WHERE id > 30")
    result = _by_table(*pair, samples=2)["tasks"]
    assert result.missing == 10
    assert result.samples == ["(id=31) missing in target", "(id=32) missing in target"]


def test_a_missing_table_is_a_difference(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    seed.as_replica(pair[1], "DROP TABLE scheduled_task_tags")
    assert main(["integrity", "--source", pair[0], "--target", pair[1]]) == 1
    assert "table public.scheduled_task_tags is missing in the target" in capsys.readouterr().out


def test_reads_in_one_read_only_repeatable_read_snapshot(pair: tuple[str, str]) -> None:
    with connect(pair[0], "source", read_only=True) as conn:
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM tasks")


def test_session_settings_of_either_side_do_not_change_the_checksum(pair: tuple[str, str]) -> None:
    """RDS parameter groups differ; the row text must not depend on DateStyle or IntervalStyle."""
    target = pair[1]
    dbname = target.rsplit("dbname=", 1)[1]
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET DateStyle = 'SQL, DMY'")
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET IntervalStyle = 'sql_standard'")
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT timestamp '2025-11-02 10:00'::text").fetchone() == ("02/11/2025 10:00:00",)
    assert not any(r.differs for r in integrity.check(*pair))


def _outputs_with_tables(outputs_file: Any, tables: list[str]) -> str:
    values = json.loads((FIXTURES / "outputs-prod.json").read_text())
    values[contract.DMS_TABLES.name] = tables
    return str(outputs_file(values))


def _compared(text: str) -> list[str]:
    return [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and not line.startswith("| table ")]


def test_with_outputs_only_the_replicated_tables_are_compared(pair: tuple[str, str], outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    seed.as_replica(pair[1], MISSING["scheduled_task_tags"][0])
    replicated = qualified(TABLES[:2])
    path = _outputs_with_tables(outputs_file, replicated)
    assert main(["integrity", "--outputs", path, "--source", pair[0], "--target", pair[1]]) == 0
    text = capsys.readouterr().out
    assert _compared(text) == list(TABLES[:2])
    assert "2/2 tables identical" in text


def test_without_outputs_or_without_dms_all_six_are_compared(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ([], ["--outputs", str(FIXTURES / "outputs-dev.json")]):
        assert main(["integrity", *extra, "--source", pair[0], "--target", pair[1]]) == 0
        assert _compared(capsys.readouterr().out) == list(TABLES)


def test_a_replicated_table_outside_the_six_is_bad_input(pair: tuple[str, str], outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = _outputs_with_tables(outputs_file, ["public.tasks", "public.users"])
    assert main(["integrity", "--outputs", path, "--source", pair[0], "--target", pair[1]]) == 2
    err = capsys.readouterr().err
    assert f"stack output '{contract.DMS_TABLES.name}' ({contract.DMS_TABLES.meaning})" in err and "'public.users'" in err


def test_outputs_of_another_stack_are_refused(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path = str(FIXTURES / "outputs-prod.json")
    assert main(["integrity", "--outputs", path, "--stack", "dev", "--source", pair[0], "--target", pair[1]]) == 2
    assert "--stack dev does not match" in capsys.readouterr().err
