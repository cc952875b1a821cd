"""`schema apply`: apply schema/task_service.sql in one transaction and report what exists after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from runbook.db import connect
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from task_service.tables import SCHEMA, TABLES

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "task_service.sql"
EXPECTED = {"tables": len(TABLES), "indexes": 13, "triggers": 2}

COUNTS = """
SELECT
  (SELECT count(*) FROM pg_tables WHERE schemaname = %(schema)s AND tablename = ANY(%(tables)s)),
  (SELECT count(*) FROM pg_indexes WHERE schemaname = %(schema)s AND tablename = ANY(%(tables)s)),
  (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT t.tgisinternal AND n.nspname = %(schema)s AND c.relname = ANY(%(tables)s))
"""


def counts(conn: psycopg.Connection) -> dict[str, int]:
    """Tables, indexes (primary keys included) and user triggers on the six tables."""
    row = conn.execute(COUNTS, {"schema": SCHEMA, "tables": list(TABLES)}).fetchone()
    assert row is not None
    return dict(zip(EXPECTED, row))


def apply(dsn: str, emit: Callable[[str], Any] = print, schema_file: Path = SCHEMA_FILE) -> int:
    try:
        sql = schema_file.read_text(encoding="utf-8")
    except OSError as err:
        raise BadInput(f"schema file {schema_file} cannot be read: {err}") from None
    with connect(dsn, "--dsn") as conn:
        try:
            with conn.transaction():
                conn.execute(sql)  # a trusted file, not user input
        except psycopg.Error as err:
            emit(f"schema apply failed and was rolled back: {str(err).strip()}")
            return EXIT_FAILED
        found = counts(conn)
    emit(f"applied {schema_file.name}: " + ", ".join(f"{found[k]} {k} (expected {v})" for k, v in EXPECTED.items()))
    return EXIT_OK if found == EXPECTED else EXIT_FAILED
