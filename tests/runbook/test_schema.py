"""`schema apply` on a real PostgreSQL: what it creates, counted from the catalog; idempotence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook import schema
from runbook.cli import main
from task_service.tables import TABLES


def _catalog(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'").fetchone()
        triggers = {
            (r[0], r[1]) for r in conn.execute("SELECT trigger_name, event_object_table FROM information_schema.triggers WHERE trigger_schema = 'public'")
        }
        referenced = {
            r[0] for r in conn.execute("SELECT DISTINCT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f'")
        }
    return {"tables": tables, "indexes": indexes[0] if indexes else None, "triggers": triggers, "referenced": referenced}


def test_creates_six_tables_thirteen_indexes_two_triggers(new_database: Any, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = new_database()
    assert main(["schema", "apply", "--dsn", dsn]) == 0
    assert "6 tables (expected 6), 13 indexes (expected 13), 2 triggers (expected 2)" in capsys.readouterr().out
    found = _catalog(dsn)
    assert found["tables"] == set(TABLES)
    assert found["indexes"] == 13
    assert found["triggers"] == {("trg_tasks_updated_at", "tasks"), ("trg_scheduled_group_tasks_updated_at", "scheduled_group_tasks")}


def test_no_foreign_keys_leave_the_six_tables(new_database: Any) -> None:
    dsn = new_database()
    assert schema.apply(dsn, emit=lambda _: None) == 0
    referenced = _catalog(dsn)["referenced"]
    assert referenced <= set(TABLES)
    assert not referenced & {"users", "groups", "tags", "task_proposals"}


def test_second_apply_changes_nothing_and_keeps_rows(new_database: Any) -> None:
    dsn = new_database()
    assert schema.apply(dsn, emit=lambda _: None) == 0
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tasks (id, user_id, title) VALUES (1, 7, 'keep me')")
    before = _catalog(dsn)
    assert schema.apply(dsn, emit=lambda _: None) == 0
    assert _catalog(dsn) == before
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT title FROM tasks").fetchall() == [("keep me",)]


def test_updated_at_trigger_bumps_unless_the_writer_sets_it(new_database: Any) -> None:
    dsn = new_database()
    assert schema.apply(dsn, emit=lambda _: None) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO tasks (id, user_id, title, updated_at) VALUES (1, 7, 'a', '2020-01-01'), (2, 7, 'b', '2020-01-01')")
        conn.execute("UPDATE tasks SET title = 'a2' WHERE id = 1")
        conn.execute("UPDATE tasks SET title = 'b2', updated_at = '2021-06-01' WHERE id = 2")
        rows: dict[int, str] = dict(conn.execute("SELECT id, updated_at::date::text FROM tasks").fetchall())
    assert rows[1] != "2020-01-01"
    assert rows[2] == "2021-06-01"


def test_a_failing_file_is_rolled_back(new_database: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = new_database()
    broken = tmp_path / "broken.sql"
    broken.write_text("CREATE TABLE tasks (id BIGINT PRIMARY KEY);\nCREATE TABLE oops (id NOT_A_TYPE);\n")
    assert schema.apply(dsn, schema_file=broken) == 1
    assert "rolled back" in capsys.readouterr().out
    assert _catalog(dsn)["tables"] == set()


@pytest.mark.parametrize("option", ["--outputs", "--stack", "--region"])
def test_stack_options_are_not_accepted_since_the_schema_is_always_all_six(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["schema", "apply", "--dsn", "host=127.0.0.1", option, "x"])
    assert caught.value.code == 2
    assert f"unrecognized arguments: {option} x" in capsys.readouterr().err
