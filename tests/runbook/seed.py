"""Deterministic rows for the six tables, with NULLs, JSONB and non-ASCII text in them."""

from __future__ import annotations

import psycopg

from runbook import schema

ROWS = {
    "tasks": 40,
    "task_images": 20,
    "task_tag": 50,
    "scheduled_group_tasks": 6,
    "scheduled_task_executions": 12,
    "scheduled_task_tags": 9,
}

FILL_SQL = """
INSERT INTO tasks (id, user_id, assigned_by_user_id, title, description, priority, group_task_id, reward,
                   is_completed, completed_at, created_at, updated_at)
SELECT i, 1000 + i % 7, CASE WHEN i % 5 = 0 THEN 2000 + i END, 'タスク ' || i,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'description 宿題 ' || i END, (i % 5) + 1,
       CASE WHEN i % 4 = 0 THEN md5(i::text)::uuid END, CASE WHEN i % 4 = 0 THEN i * 10 END,
       i % 2 = 0, CASE WHEN i % 2 = 0 THEN timestamp '2025-11-10 09:00' + i * interval '1 minute' END,
       timestamp '2025-11-01 00:00' + i * interval '1 second', timestamp '2025-11-02 00:00' + i * interval '1 second'
FROM generate_series(1, {tasks}) AS i;
INSERT INTO task_images (id, task_id, file_path, approved_at, created_at, updated_at)
SELECT i, i, 'task-images/' || i || '.png', CASE WHEN i % 2 = 0 THEN timestamp '2025-11-03' END,
       timestamp '2025-11-01', timestamp '2025-11-01'
FROM generate_series(1, {task_images}) AS i;
INSERT INTO task_tag (task_id, tag_id)
SELECT i, (i % 5) + 1 FROM generate_series(1, {tasks}) AS i
UNION ALL SELECT i, 10 FROM generate_series(1, {task_tag} - {tasks}) AS i;
INSERT INTO scheduled_group_tasks (id, group_id, created_by, assigned_user_id, title, reward, schedules, start_date,
                                   created_at, updated_at)
SELECT i, 300 + i, 1000 + i, CASE WHEN i % 2 = 0 THEN 1000 + i END, '定期タスク ' || i, i * 100,
       jsonb_build_array(jsonb_build_object('type', 'weekly', 'days', jsonb_build_array(i % 7, (i + 2) % 7), 'time', '09:00')),
       date '2025-12-01' + i % 1000, timestamp '2025-11-01', timestamp '2025-11-01'
FROM generate_series(1, {scheduled_group_tasks}) AS i;
INSERT INTO scheduled_task_executions (id, scheduled_task_id, executed_at, status, created_task_id, note, created_at, updated_at)
SELECT i, (i % {scheduled_group_tasks}) + 1, timestamp '2025-12-01 09:00' + i * interval '1 minute',
       CASE WHEN i % 4 = 0 THEN 'failed' ELSE 'success' END, CASE WHEN i % 4 = 0 THEN NULL ELSE i END, NULL,
       timestamp '2025-11-01', timestamp '2025-11-01'
FROM generate_series(1, {scheduled_task_executions}) AS i;
INSERT INTO scheduled_task_tags (id, scheduled_task_id, tag_name, created_at, updated_at)
SELECT i, (i % {scheduled_group_tasks}) + 1, 'タグ' || i, timestamp '2025-11-01', timestamp '2025-11-01'
FROM generate_series(1, {scheduled_task_tags}) AS i;
"""
"""Rows with NULLs, JSONB and non-ASCII text for the six tables, in any size (the integrity bench uses it too)."""
SEED_SQL = FILL_SQL.format(**ROWS)


def schema_and_rows(dsn: str) -> None:
    """Apply the real schema file, then the seed rows."""
    assert schema.apply(dsn, emit=lambda _: None) == 0
    with psycopg.connect(dsn) as conn:
        conn.execute(SEED_SQL)


def as_replica(dsn: str, statement: str) -> None:
    """Change the target the way DMS writes to it: FK and user triggers off (session_replication_role)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement)


BIG_SQL = """
INSERT INTO tasks (id, user_id, title, description, priority, created_at, updated_at)
SELECT 2 * i, 1000 + i % 7, 'タスク ' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'description ' || i END, i % 5,
       timestamp '2025-11-01' + i * interval '1 minute', timestamp '2025-11-02' + i * interval '1 minute'
FROM generate_series(1, {rows}) AS i;
INSERT INTO task_tag (task_id, tag_id)
SELECT 2 * i, t FROM generate_series(1, {rows} / 2) AS i, (VALUES (2), (4)) AS v(t);
"""


def big(dsn: str, rows: int = 20_000) -> None:
    """The schema, then `rows` tasks with even ids 2..2*rows and `rows` task_tag rows ((2i, 2) and (2i, 4), 2i <= rows):
    every key has a free neighbour on each side, for extra rows that fall between existing ones."""
    assert schema.apply(dsn, emit=lambda _: None) == 0
    with psycopg.connect(dsn) as conn:
        conn.execute(BIG_SQL.format(rows=int(rows)))
