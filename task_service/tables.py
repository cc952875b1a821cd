"""The six tables that move from the monolith to the Task Service database (seed 001).

`schema/task_service.sql` creates exactly these; a stack's `dms.tables` may select a subset, never add one.
"""

from collections.abc import Sequence

SCHEMA = "public"

TABLES: tuple[str, ...] = (
    "tasks",
    "task_images",
    "task_tag",
    "scheduled_group_tasks",
    "scheduled_task_executions",
    "scheduled_task_tags",
)


def qualified(tables: Sequence[str] = TABLES, schema: str = SCHEMA) -> list[str]:
    """`schema.table` for each table, in the given order (the `dmsTables` output's form)."""
    return [f"{schema}.{table}" for table in tables]
