"""PostgreSQL connections for `schema apply` and `integrity`: failures become one clear message."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runbook.errors import BadInput

CONNECT_TIMEOUT_SECONDS = 10


def safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    shown = {key: str(params[key]) for key in ("host", "port", "dbname", "user") if params.get(key)}
    return make_conninfo(**shown) or "<default libpq settings>"


def reason(err: psycopg.Error) -> str:
    """A PostgreSQL error on one line (libpq's messages span several)."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__


def connect(dsn: str, role: str, *, read_only: bool = False) -> psycopg.Connection:
    """Open a connection or raise BadInput naming `role` (source/target/--dsn) and the cause."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as err:
        raise BadInput(f"{role} DSN is malformed ({err}); expected e.g. 'host=H port=5432 dbname=D user=U'.") from None
    try:
        conn = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="task-service-runbook")
    except psycopg.Error as err:
        raise BadInput(f"cannot connect to the {role} database ({safe_dsn(dsn)}): {reason(err)}") from None
    if read_only:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    return conn
