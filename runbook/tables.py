"""The six tables that move from the monolith to the Task Service database (seed 001)."""

SCHEMA = "public"

TABLES: tuple[str, ...] = (
    "tasks",
    "task_images",
    "task_tag",
    "scheduled_group_tasks",
    "scheduled_task_executions",
    "scheduled_task_tags",
)

CANARY_STEPS: tuple[int, ...] = (0, 5, 25, 50, 100)
