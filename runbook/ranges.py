"""Key ranges of one table, hashed inside PostgreSQL: what `integrity` asks each side instead of its rows.

A range is `lo <= primary key < hi` in the server's own btree order (None: unbounded), so the same keys can be
applied to both sides whatever rows each holds, and no key is ever compared in Python. Many ranges go into one
statement: their bounds travel as one array per key column and each range is read LATERAL through the primary-key
index (row comparisons such as `(task_id, tag_id) >= ($1, $2)` are index conditions).

Every function here reads one side; `integrity` runs them on both sides at once and decides where to descend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

Key = tuple[Any, ...]
SAMPLE_PAGES = 200  # heap pages read to place a table's first cuts


@dataclass(frozen=True)
class Table:
    """One side's view of a table: key columns (with their types, to cast bounds) and the hashed columns."""

    schema: str
    name: str
    pk: tuple[str, ...]
    pk_types: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    @property
    def key(self) -> sql.Composable:
        """The key columns of alias `t`, for ORDER BY and row comparisons."""
        return sql.SQL(", ").join(sql.Identifier("t", c) for c in self.pk)

    @property
    def key_out(self) -> sql.Composable:
        """The key columns as k_0, k_1, ... (names that cannot clash with the LATERAL range's columns)."""
        return sql.SQL(", ").join(sql.SQL("{} AS {}").format(sql.Identifier("t", c), sql.Identifier(f"k_{n}")) for n, c in enumerate(self.pk))

    @property
    def row_md5(self) -> sql.Composable:
        """The row hash of the documented SQL: md5 of the row's text, columns sorted by name."""
        return sql.SQL("md5(ROW({})::text)").format(sql.SQL(", ").join(sql.Identifier("t", c) for c in self.columns))


@dataclass(frozen=True)
class Range:
    """Keys `lo <= key < hi`; `path` (positions from the whole table down) sorts ranges in key order."""

    lo: Key | None = None
    hi: Key | None = None
    path: tuple[int, ...] = ()

    def split(self, bounds: Sequence[Key]) -> list[Range]:
        """Consecutive sub-ranges cut at `bounds` (keys inside this range, in key order)."""
        edges = [self.lo, *bounds, self.hi]
        return [Range(edges[j], edges[j + 1], self.path + (j,)) for j in range(len(edges) - 1)]


@dataclass(frozen=True)
class Summary:
    """A range on one side: its row count and the MD5 of its row hashes in key order (None when empty)."""

    rows: int
    md5: str | None


# Per-range statements: {cond} is the range's key condition, {key} the key columns of `t` in order, {key_out}
# the same as k_0, k_1, ..., {row_md5} the row hash, {table} the table. `r.arg` is the per-range integer, if any.
WHOLE = "SELECT count(*) AS n, string_agg({row_md5}, '' ORDER BY {key}) AS s FROM {table} AS t WHERE {cond}"
SUMMARY = "SELECT count(*) AS n, md5(string_agg({row_md5}, '' ORDER BY {key})) AS m FROM {table} AS t WHERE {cond}"
BOUNDS = (
    "SELECT k.* FROM (SELECT {key_out}, row_number() OVER (ORDER BY {key}) AS rn FROM {table} AS t WHERE {cond}) AS k"
    " WHERE k.rn > 1 AND mod(k.rn - 1, r.arg) = 0"
)
ROWS = "SELECT {key_out}, {row_md5} AS h FROM {table} AS t WHERE {cond}"
FIRST_KEYS = "SELECT {key_out}, row_number() OVER (ORDER BY {key}) AS rn FROM {table} AS t WHERE {cond} ORDER BY {key} LIMIT r.arg"
# Whole-table cuts from a block sample (deterministic: REPEATABLE); parameters: percent, minimum step, parts, parts.
SAMPLED_BOUNDS = (
    "SELECT k.* FROM (SELECT {key_out}, row_number() OVER (ORDER BY {key}) AS rn, count(*) OVER () AS n"
    " FROM {table} AS t TABLESAMPLE SYSTEM (%s::real) REPEATABLE (0)) AS k"
    " WHERE k.rn > 1 AND mod(k.rn - 1, greatest(%s, (k.n + %s - 1) / %s)) = 0"
)


def _statement(table: Table, template: str, cond: sql.Composable = sql.SQL("TRUE")) -> sql.Composed:
    return sql.SQL(template).format(cond=cond, key=table.key, key_out=table.key_out, row_md5=table.row_md5, table=table.ident)


def _in_ranges(table: Table, ranges: Sequence[Range], statement: str, args: Sequence[int] | None = None) -> tuple[sql.Composed, list[Any]]:
    """`SELECT r.i, x.* ...`: `statement` run LATERAL once per range, `r.i` its index in `ranges`.

    An unbounded end needs a condition of its own, so ranges are grouped by which ends are bounded (only a table's
    first and last range have an open end) and the groups joined with UNION ALL. `args` adds one integer per range
    as `r.arg`.
    """
    shapes: dict[tuple[bool, bool], list[int]] = {}
    for i, rng in enumerate(ranges):
        shapes.setdefault((rng.lo is not None, rng.hi is not None), []).append(i)
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for (has_lo, has_hi), members in shapes.items():
        arrays: list[sql.Composable] = [sql.SQL("%s::integer[]")]
        names: list[sql.Composable] = [sql.Identifier("i")]
        params.append(members)
        conditions: list[sql.Composable] = []
        for end, present, op in (("lo", has_lo, ">="), ("hi", has_hi, "<")):
            if not present:
                continue
            bound: list[sql.Composable] = []
            for n, type_name in enumerate(table.pk_types):
                arrays.append(sql.SQL("%s::{}[]").format(sql.SQL(type_name)))  # type name from format_type()
                names.append(sql.Identifier(f"{end}_{n}"))
                bound.append(sql.Identifier("r", f"{end}_{n}"))
                params.append([getattr(ranges[i], end)[n] for i in members])
            conditions.append(sql.SQL("({}) {} ({})").format(table.key, sql.SQL(op), sql.SQL(", ").join(bound)))
        if args is not None:
            arrays.append(sql.SQL("%s::bigint[]"))
            names.append(sql.Identifier("arg"))
            params.append([args[i] for i in members])
        inner = _statement(table, statement, sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE"))
        parts.append(
            sql.SQL("SELECT r.i, x.* FROM unnest({}) AS r({}) CROSS JOIN LATERAL ({}) AS x").format(
                sql.SQL(", ").join(arrays), sql.SQL(", ").join(names), inner
            )
        )
    return sql.SQL(" UNION ALL ").join(parts), params


def sampled_bounds(conn: psycopg.Connection, table: Table, pages: int, parts: int, min_rows: int) -> list[Key]:
    """Cuts for the whole table into about `parts` ranges of at least `min_rows` rows, from about SAMPLE_PAGES pages.

    Reading every key would cost a scan of the index; the cuts only need to be roughly even, as a range that turns
    out large is cut again, with exact row numbers, only if it differs.
    """
    percent = min(100.0, 100.0 * SAMPLE_PAGES / max(pages, 1))
    min_step = max(1, math.ceil(min_rows * percent / 100))
    rows = conn.execute(_statement(table, SAMPLED_BOUNDS), (percent, min_step, parts, parts))
    return _ordered([(row[-2], tuple(row[:-2])) for row in rows])


def whole(conn: psycopg.Connection, table: Table, ranges: Sequence[Range]) -> tuple[str, list[Summary]]:
    """The table's MD5 (the documented SQL's value) and a summary per range, from one scan.

    Each range aggregates its row hashes in key order; the table's MD5 is taken over those strings in range order,
    which is the documented SQL's concatenation. The server holds 32 bytes a row for it, as that SQL does.
    """
    union, params = _in_ranges(table, ranges, WHOLE)
    query = sql.SQL(
        "SELECT md5(coalesce(string_agg(q.s, '' ORDER BY q.i), '')), array_agg(q.n ORDER BY q.i), "
        "array_agg(md5(q.s) ORDER BY q.i) FROM ({}) AS q"
    ).format(union)
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0], [Summary(int(n), md5) for n, md5 in zip(row[1], row[2])]


def summaries(conn: psycopg.Connection, table: Table, ranges: Sequence[Range]) -> list[Summary]:
    union, params = _in_ranges(table, ranges, SUMMARY)
    found = {i: Summary(int(n), md5) for i, n, md5 in conn.execute(union, params)}
    return [found[i] for i in range(len(ranges))]


def _ordered(rows: Sequence[tuple[int, Key]]) -> list[Key]:
    return [key for _, key in sorted(rows, key=lambda row: row[0])]


def bounds(conn: psycopg.Connection, table: Table, ranges: Sequence[Range], step: Sequence[int]) -> list[list[Key]]:
    """For each range, the keys of its rows number step+1, 2*step+1, ...: cuts into parts of `step` rows."""
    union, params = _in_ranges(table, ranges, BOUNDS, step)
    found: list[list[tuple[int, Key]]] = [[] for _ in ranges]
    for row in conn.execute(union, params):
        found[row[0]].append((row[-1], tuple(row[1:-1])))
    return [_ordered(cuts) for cuts in found]


def row_hashes(conn: psycopg.Connection, table: Table, ranges: Sequence[Range]) -> list[dict[Key, str]]:
    """Every row's key and hash, per range: only for small ranges known to differ."""
    union, params = _in_ranges(table, ranges, ROWS)
    found: list[dict[Key, str]] = [{} for _ in ranges]
    for row in conn.execute(union, params):
        found[row[0]][tuple(row[1:-1])] = row[-1]
    return found


def first_keys(conn: psycopg.Connection, table: Table, ranges: Sequence[Range], limits: Sequence[int]) -> list[list[Key]]:
    """The first `limit` keys of each range in key order: samples of a range that exists on this side only."""
    union, params = _in_ranges(table, ranges, FIRST_KEYS, limits)
    found: list[list[tuple[int, Key]]] = [[] for _ in ranges]
    for row in conn.execute(union, params):
        found[row[0]].append((row[-1], tuple(row[1:-1])))
    return [_ordered(keys) for keys in found]
