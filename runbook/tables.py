"""Kept only because `stack_config.py` still imports TABLES from here; the runbook uses `task_service.tables`.

Delete this file once the program imports `task_service.tables` itself.
"""

from task_service.tables import SCHEMA, TABLES

__all__ = ["SCHEMA", "TABLES"]
