"""`integrity`: row counts and an MD5 checksum of the migrated tables on source and target.

Which tables: the ones the stack replicates (`contract.DMS_TABLES`, when outputs are given and hold it),
else all six of `task_service.tables`.

Both sides are read in one read-only REPEATABLE READ transaction each, so every number comes from
one snapshot. Rows are streamed in primary-key order as (pk, md5 of the row) with server-side
cursors and merged, so memory stays bounded whatever the table size; the table checksum is the MD5
of the concatenated row hashes in that order, which equals this SQL on either side:

    SELECT md5(coalesce(string_agg(md5(ROW(<columns by name>)::text), '' ORDER BY <pk>), ''))
    FROM public.<table>;
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from runbook.db import connect
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.output import Report
from runbook.outputs import Outputs
from task_service import contract
from task_service.tables import qualified

SESSION_SETTINGS = (
    "SET TIME ZONE 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
    "SET bytea_output = 'hex'",
)
FETCH_ROWS = 2000

COLUMNS = """
SELECT a.attname FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
"""
PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
ORDER BY k.pos
"""


@dataclass
class TableResult:
    """What one table looks like on both sides; `problems` empty means identical."""

    table: str
    source_rows: int = 0
    target_rows: int = 0
    source_md5: str = ""
    target_md5: str = ""
    problems: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    missing: int = 0
    extra: int = 0
    changed: int = 0

    @property
    def differs(self) -> bool:
        return bool(self.problems or self.missing or self.extra or self.changed or self.source_md5 != self.target_md5)


def _prepare(conn: psycopg.Connection) -> None:
    for statement in SESSION_SETTINGS:
        conn.execute(statement)  # constants


def replicated_tables(out: Outputs | None) -> list[str]:
    """`schema.table` names to compare (and to make read-only): the stack's replicated ones, else all six."""
    six = qualified()
    if out is None or not out.dms_enabled or not out.available(contract.DMS_TABLES):
        return six
    listed = out.strings(contract.DMS_TABLES)
    strange = [name for name in listed if name not in six]
    if strange or not listed:
        raise BadInput(
            f"stack output '{contract.DMS_TABLES.name}' ({contract.DMS_TABLES.meaning}) in {out.source} should list "
            f"some of {', '.join(six)}; got {', '.join(map(repr, strange)) if strange else 'none'}."
        )
    return listed


def dsn(host: str, port: str, dbname: str, user: str) -> str:
    """A libpq DSN over TLS without a password (libpq takes it from PGPASSWORD, never from a file or a command line)."""
    return f"host={host} port={port} dbname={dbname} user={user} sslmode=require"


def _names(conn: psycopg.Connection, query: str, schema: str, table: str) -> list[str]:
    return [row[0] for row in conn.execute(query, (schema, table))]


def _rows(
    conn: psycopg.Connection, schema: str, table: str, pk: list[str], columns: list[str]
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(primary key, md5 of the row's text) in primary-key order, fetched in batches."""
    query = sql.SQL("SELECT {pk}, md5(ROW({cols})::text) FROM {schema}.{table} ORDER BY {pk}").format(
        pk=sql.SQL(", ").join(map(sql.Identifier, pk)),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        schema=sql.Identifier(schema),
        table=sql.Identifier(table),
    )
    with conn.cursor(name=f"integrity_{table}") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query)
        for row in cursor:
            yield tuple(row[:-1]), row[-1]


def _key_text(pk: list[str], key: tuple[Any, ...]) -> str:
    return ", ".join(f"{name}={value}" for name, value in zip(pk, key))


def compare_table(source: psycopg.Connection, target: psycopg.Connection, name: str, samples: int) -> TableResult:
    """Compare one `schema.table`; the result is labelled with the bare table name."""
    schema, _, table = name.partition(".")
    result = TableResult(table)
    src_cols, tgt_cols = set(_names(source, COLUMNS, schema, table)), set(_names(target, COLUMNS, schema, table))
    if not src_cols or not tgt_cols:
        result.problems.append(f"table {name} is missing in the " + ("source" if not src_cols else "target"))
        return result
    if src_cols != tgt_cols:
        result.problems.append(
            "columns differ: only in source: "
            + (", ".join(sorted(src_cols - tgt_cols)) or "-")
            + "; only in target: "
            + (", ".join(sorted(tgt_cols - src_cols)) or "-")
        )
    src_pk, tgt_pk = _names(source, PRIMARY_KEY, schema, table), _names(target, PRIMARY_KEY, schema, table)
    if not src_pk or src_pk != tgt_pk:
        result.problems.append(f"primary keys differ or are missing: source ({', '.join(src_pk)}), target ({', '.join(tgt_pk)})")
        return result
    columns = sorted(src_cols & tgt_cols)
    src_hash, tgt_hash = hashlib.md5(), hashlib.md5()
    src_it, tgt_it = _rows(source, schema, table, src_pk, columns), _rows(target, schema, table, tgt_pk, columns)
    s, t = next(src_it, None), next(tgt_it, None)

    def note(kind: str, key: tuple[Any, ...]) -> None:
        if len(result.samples) < samples:
            result.samples.append(f"({_key_text(src_pk, key)}) {kind}")

    while s is not None or t is not None:
        take_source = s is not None and (t is None or s[0] <= t[0])
        take_target = t is not None and (s is None or t[0] <= s[0])
        if take_source and take_target:
            assert s is not None and t is not None
            if s[1] != t[1]:
                result.changed += 1
                note("differs", s[0])
        elif take_source:
            assert s is not None
            result.missing += 1
            note("missing in target", s[0])
        else:
            assert t is not None
            result.extra += 1
            note("extra in target", t[0])
        if take_source:
            assert s is not None
            src_hash.update(s[1].encode())
            result.source_rows += 1
            s = next(src_it, None)
        if take_target:
            assert t is not None
            tgt_hash.update(t[1].encode())
            result.target_rows += 1
            t = next(tgt_it, None)
    result.source_md5, result.target_md5 = src_hash.hexdigest(), tgt_hash.hexdigest()
    return result


def check(source_dsn: str, target_dsn: str, samples: int = 5, tables: Sequence[str] | None = None) -> list[TableResult]:
    """Compare `tables` (`schema.table`; default all six) between the two databases."""
    if samples < 1:
        raise BadInput("--samples must be at least 1.")
    with connect(source_dsn, "source", read_only=True) as source, connect(target_dsn, "target", read_only=True) as target:
        try:
            _prepare(source)
            _prepare(target)
            return [compare_table(source, target, name, samples) for name in (qualified() if tables is None else tables)]
        except psycopg.Error as err:
            raise BadInput(f"integrity query failed: {str(err).strip()}") from None


REPORT_COLUMNS = {
    "table": "table",
    "sourceRows": "source rows",
    "targetRows": "target rows",
    "sourceMd5": "source md5",
    "targetMd5": "target md5",
    "result": "result",
}


def _record(r: TableResult) -> dict[str, Any]:
    """A table's row, with the counts and samples the text lists under the table."""
    return {
        "table": r.table,
        "sourceRows": r.source_rows,
        "targetRows": r.target_rows,
        "sourceMd5": r.source_md5 or None,
        "targetMd5": r.target_md5 or None,
        "result": "DIFFERS" if r.differs else "ok",
        "changed": r.changed,
        "missingInTarget": r.missing,
        "extraInTarget": r.extra,
        "problems": r.problems,
        "samples": r.samples,
    }


def report(results: list[TableResult]) -> Report:
    differing = [r for r in results if r.differs]
    shown = Report(EXIT_FAILED if differing else EXIT_OK)
    shown.table("tables", REPORT_COLUMNS, [_record(r) for r in results])
    for r in differing:
        shown.say(f"{r.table}: {r.changed} changed, {r.missing} missing in target, {r.extra} extra in target")
        for line in r.problems + r.samples:
            shown.say(f"  {line}")
    shown.say(f"{len(results) - len(differing)}/{len(results)} tables identical", identical=len(results) - len(differing), compared=len(results))
    return shown


def run(source_dsn: str, target_dsn: str, samples: int = 5, tables: Sequence[str] | None = None) -> Report:
    return report(check(source_dsn, target_dsn, samples, tables))
