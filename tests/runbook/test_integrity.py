"""`integrity` on two real databases: identical passes; a changed, missing or extra row in any table fails."""

from __future__ import annotations

import io
import itertools
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook import integrity, schema
from runbook.cli import main
from runbook.db import connect
from task_service import contract
from task_service.tables import TABLES, qualified
from tests.runbook import seed
from tests.runbook import moto_stack


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


# Larger tables: 20,000 rows in tasks and in task_tag, so the key space is cut into many ranges.
BIG = ("tasks", "task_tag")
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"  # md5(''): the documented SQL on an empty table


@pytest.fixture
def big_pair(new_database: Any) -> tuple[str, str]:
    source, target = new_database("source"), new_database("target")
    seed.big(source)
    seed.big(target)
    return source, target


def _documented_md5(dsn: str, table: str, pk: str) -> str:
    with psycopg.connect(dsn) as conn:
        for statement in integrity.SESSION_SETTINGS:
            conn.execute(statement)
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY column_name", (table,)
        )]
        row = conn.execute(
            f"SELECT md5(coalesce(string_agg(md5(ROW({', '.join(columns)})::text), '' ORDER BY {pk}), '')) FROM {table}"
        ).fetchone()
        assert row is not None
        return str(row[0])


def test_identical_large_tables_send_summaries_not_rows(big_pair: tuple[str, str]) -> None:
    results = {r.table: r for r in integrity.check(*big_pair, tables=BIG)}
    for table, pk in (("tasks", "id"), ("task_tag", "task_id, tag_id")):
        result = results[table]
        assert not result.differs and (result.source_rows, result.target_rows) == (20_000, 20_000)
        assert result.rows_fetched == 0, table
        assert 1 < result.ranges_compared <= integrity.TOP_RANGES, table  # cut into ranges, each summarised once
        assert result.source_md5 == _documented_md5(big_pair[0], table, pk), table  # ranges concatenate in key order


def test_one_changed_row_fetches_a_bounded_number_of_rows(big_pair: tuple[str, str]) -> None:
    seed.as_replica(big_pair[1], "UPDATE tasks SET title = 'changed' WHERE id = 20000")
    results = {r.table: r for r in integrity.check(*big_pair, tables=BIG)}
    tasks = results["tasks"]
    assert (tasks.changed, tasks.missing, tasks.extra) == (1, 0, 0)
    assert tasks.samples == ["(id=20000) differs"]
    assert 0 < tasks.rows_fetched <= 2 * integrity.LEAF_ROWS
    assert results["task_tag"].rows_fetched == 0 and not results["task_tag"].differs


TASK_CUTS = [(2000 * j + 2,) for j in range(1, 20)]  # 20 ranges of 1,000 tasks: ids [2, 2002), [2002, 4002), ...
TAG_CUTS = [(1000, 4), (5000, 2), (5000, 4)]


def test_differences_on_range_boundaries_and_at_both_ends(big_pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """First cuts pinned so the differences sit exactly on them. Inside [20002, 22002), where only values change,
    the next cuts fall every cut_step(1000) rows (same keys on both sides); `on_cut` is the first row after one."""
    pinned: list[str] = []
    later_cuts: list[tuple[int, ...]] = []
    bounds = integrity.ranges.bounds

    def first_cuts(conn: psycopg.Connection, table: Any, *_: Any) -> list[tuple[int, ...]]:
        pinned.append(table.name)
        return list(TASK_CUTS if table.name == "tasks" else TAG_CUTS)

    def spy(*args: Any) -> list[list[tuple[int, ...]]]:
        found = bounds(*args)
        later_cuts.extend(key for keys in found for key in keys)
        return found

    monkeypatch.setattr(integrity.ranges, "sampled_bounds", first_cuts)
    monkeypatch.setattr(integrity.ranges, "bounds", spy)
    on_cut = 20002 + 2 * integrity.cut_step(1000)
    insert = "INSERT INTO tasks (id, user_id, title, created_at, updated_at) VALUES ({}, 1, 'extra', '2025-01-01', '2025-01-01')"
    seed.as_replica(big_pair[1], ";\n".join([
        f"UPDATE tasks SET title = 'changed' WHERE id IN (2, 2000, 2002, {on_cut - 2}, {on_cut})",
        "DELETE FROM tasks WHERE id IN (10002, 40000)",
        *(insert.format(i) for i in (1, 2001, 10003, 40001)),
        "DELETE FROM task_tag WHERE (task_id, tag_id) IN ((2, 2), (1000, 4))",
        "INSERT INTO task_tag VALUES (2, 1), (1000, 3), (1000, 5), (20000, 5)",
    ]))
    results = {r.table: r for r in integrity.check(*big_pair, samples=20, tables=BIG)}
    assert pinned == ["tasks", "task_tag"] and (on_cut,) in later_cuts
    tasks, tags = results["tasks"], results["task_tag"]
    assert (tasks.changed, tasks.missing, tasks.extra) == (5, 2, 4)
    assert tasks.samples == [
        "(id=1) extra in target", "(id=2) differs", "(id=2000) differs", "(id=2001) extra in target",
        "(id=2002) differs", "(id=10002) missing in target", "(id=10003) extra in target", f"(id={on_cut - 2}) differs",
        f"(id={on_cut}) differs", "(id=40000) missing in target", "(id=40001) extra in target",
    ]
    assert (tags.changed, tags.missing, tags.extra) == (0, 2, 4)
    assert tags.samples == [
        "(task_id=2, tag_id=1) extra in target", "(task_id=2, tag_id=2) missing in target",
        "(task_id=1000, tag_id=3) extra in target", "(task_id=1000, tag_id=4) missing in target",
        "(task_id=1000, tag_id=5) extra in target", "(task_id=20000, tag_id=5) extra in target",
    ]
    assert (tasks.target_rows, tags.target_rows) == (20_002, 20_002)


def test_composite_keys_changed_missing_and_extra_in_a_large_table(big_pair: tuple[str, str]) -> None:
    seed.as_replica(big_pair[1], ";".join([
        "UPDATE task_tag SET tag_id = 3 WHERE (task_id, tag_id) = (7000, 4)",  # the key changes: missing + extra
        "DELETE FROM task_tag WHERE task_id BETWEEN 15000 AND 15098",  # 50 tasks, 100 rows
        "INSERT INTO task_tag SELECT 2 * i, 9 FROM generate_series(1, 3) AS i",
    ]))
    result = {r.table: r for r in integrity.check(*big_pair, tables=BIG)}["task_tag"]
    assert (result.changed, result.missing, result.extra) == (0, 101, 4)
    assert result.samples == [
        "(task_id=2, tag_id=9) extra in target", "(task_id=4, tag_id=9) extra in target",
        "(task_id=6, tag_id=9) extra in target", "(task_id=7000, tag_id=3) extra in target",
        "(task_id=7000, tag_id=4) missing in target",
    ]
    assert result.rows_fetched < 20_000 // 4  # only ranges near the differences were fetched


def test_a_table_empty_on_one_side_is_counted_without_fetching_its_rows(new_database: Any) -> None:
    source, target = new_database("source"), new_database("target")
    seed.big(source)
    assert schema.apply(target, emit=lambda _: None) == 0
    seed.as_replica(source, "DELETE FROM task_tag")
    seed.as_replica(target, "INSERT INTO task_tag SELECT 2 * i, 1 FROM generate_series(1, 5000) AS i")
    results = {r.table: r for r in integrity.check(source, target, samples=3)}
    tasks, tags = results["tasks"], results["task_tag"]
    assert (tasks.source_rows, tasks.target_rows, tasks.missing, tasks.extra) == (20_000, 0, 20_000, 0)
    assert tasks.samples == ["(id=2) missing in target", "(id=4) missing in target", "(id=6) missing in target"]
    assert (tags.source_rows, tags.target_rows, tags.missing, tags.extra) == (0, 5000, 0, 5000)
    assert tags.samples == [f"(task_id={i}, tag_id=1) extra in target" for i in (2, 4, 6)]
    assert tasks.rows_fetched == 0 and tags.rows_fetched == 0
    assert tasks.target_md5 == tags.source_md5 == EMPTY_MD5
    for table in TABLES[3:]:  # empty on both sides
        assert not results[table].differs and results[table].source_md5 == EMPTY_MD5, table


def test_a_table_missing_in_the_source(pair: tuple[str, str]) -> None:
    seed.as_replica(pair[0], "DROP TABLE task_tag")
    result = _by_table(*pair)["task_tag"]
    assert result.differs and result.problems == ["table public.task_tag is missing in the source"]


def test_column_and_primary_key_mismatches(pair: tuple[str, str]) -> None:
    seed.as_replica(pair[1], "ALTER TABLE tasks ADD COLUMN note text; ALTER TABLE scheduled_task_tags DROP CONSTRAINT scheduled_task_tags_pkey")
    results = _by_table(*pair)
    assert results["tasks"].problems == ["columns differ: only in source: -; only in target: note"]
    assert (results["tasks"].changed, results["tasks"].source_md5 == results["tasks"].target_md5) == (0, True)  # common columns
    assert results["scheduled_task_tags"].problems == ["primary keys differ or are missing: source (id), target ()"]
    assert sum(r.differs for r in results.values()) == 2


def test_a_failing_query_on_the_target_is_one_line_and_exit_2(pair: tuple[str, str], pg_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The target's queries run in a worker thread; their errors still end as BadInput."""
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        assert main(["integrity", "--source", pair[0], "--target", f"{pair[1]} user={role}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: integrity query failed: permission denied for table tasks") and err.count("\n") == 1
    finally:
        with psycopg.connect(f"{pg_server} dbname=postgres", autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_after_each_table_and_a_status_line_only_on_a_terminal(pair: tuple[str, str]) -> None:
    seen: list[integrity.Progress] = []
    results = integrity.check(*pair, progress=seen.append)
    assert [p.tables_done for p in seen] == list(range(1, 7)) and {p.tables for p in seen} == {6}
    assert [p.rows_done for p in seen] == list(itertools.accumulate(r.source_rows for r in results))
    assert all(p.rows_total >= p.rows_done and p.seconds >= 0 for p in seen)
    assert integrity.terminal_progress(io.StringIO()) is None  # a pipe or a log file: silent
    terminal = _Terminal()
    show = integrity.terminal_progress(terminal)
    assert show is not None
    for p in seen:
        show(p)
    lines = terminal.getvalue().split("\r\x1b[K")[1:]
    assert len(lines) == 6 and lines[0].startswith("integrity: 1/6 tables, 40 of ~") and lines[-1].endswith("rows/s\n")


FIXTURES = Path(__file__).parent / "fixtures"


def _outputs_with_tables(outputs_file: Any, tables: list[str]) -> str:
    values = moto_stack.program_outputs()
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
