"""`integrity`: row counts, an MD5 checksum and the differing keys of the six tables, source vs target.

Both sides are read in one read-only REPEATABLE READ transaction each, so every number comes from one snapshot.
The table checksum is the MD5 of the concatenated row hashes in primary-key order, which equals this SQL on
either side (after SESSION_SETTINGS):

    SELECT md5(coalesce(string_agg(md5(ROW(<columns by name>)::text), '' ORDER BY <pk>), ''))
    FROM public.<table>;

Rows are not sent to the client. The key space is cut into about TOP_RANGES ranges at keys sampled on the side
with the bigger table; one scan a side yields the table MD5 and a (row count, MD5) summary per range, both sides
applying the same key ranges (runbook/ranges.py). Ranges whose summaries agree are identical and skipped; a range
with rows on one side only counts them all as missing or extra; every other differing range is cut again, at exact
row numbers of its bigger side, into parts of about LEAF_ROWS rows (at most SPLIT at a time) until it holds at most
LEAF_ROWS rows a side, and only then are its rows' (key, hash) fetched and compared. Counts stay exact; the client
reads summaries, plus rows near the differences. Source and target work at the same time, one connection each.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

from runbook import ranges
from runbook.db import check_dsn, connect
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.output import Report
from runbook.ranges import Key, Range, Summary, Table
from runbook.outputs import Outputs
from task_service import contract
from task_service.tables import SCHEMA, TABLES, qualified
from task_service.untrusted import clip, quote

SESSION_SETTINGS = (
    "SET TIME ZONE 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
    "SET bytea_output = 'hex'",
)
TOP_RANGES = 256  # summaries a side for a whole table: what the client reads when nothing differs
SPLIT = 64  # most parts a differing range is cut into at once
LEAF_ROWS = 32  # a differing range this small (on both sides) has its rows compared; parts aim at this size
BATCH = 256  # differing ranges handled per statement
MAX_DEPTH = 64  # a range this deep is compared row by row whatever its size (a guard; splits always shrink)
MAX_MD5_ROWS = (2**30 - 1) // 32  # PostgreSQL strings stop at 1 GB; the table MD5 hashes 32 bytes a row

COLUMNS = """
SELECT a.attname FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
"""
PRIMARY_KEY = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
ORDER BY k.pos
"""
SIZE = """
SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, greatest(c.reltuples, 0)::bigint FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s
"""

T = TypeVar("T")
CHANGED, MISSING, EXTRA = "differs", "missing in target", "extra in target"


@dataclass
class TableResult:
    """What one table looks like on both sides; `problems` empty means identical.

    `ranges_compared` and `rows_fetched` (row hashes the client received, both sides) show how much work the
    comparison took: both are small when few rows differ.
    """

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
    ranges_compared: int = 0
    rows_fetched: int = 0

    @property
    def differs(self) -> bool:
        return bool(self.problems or self.missing or self.extra or self.changed or self.source_md5 != self.target_md5)


class Pair:
    """The source and target connections; `both` runs one call on each at the same time."""

    def __init__(self, source: psycopg.Connection, target: psycopg.Connection, pool: ThreadPoolExecutor) -> None:
        self.source, self.target, self.pool = source, target, pool

    def both(self, on_source: Callable[[psycopg.Connection], T], on_target: Callable[[psycopg.Connection], T]) -> tuple[T, T]:
        """The target's call runs in the pool. Whichever side fails first cancels the other's query rather than
        waiting for it, and its own error is the one raised."""
        future = self.pool.submit(self._on_target, on_target)
        try:
            first = on_source(self.source)
        except BaseException:
            if not future.done():
                self.target.cancel_safe()
            target_error = future.exception()
            if target_error is not None and not isinstance(target_error, psycopg.errors.QueryCanceled):
                raise target_error from None
            raise
        return first, future.result()

    def _on_target(self, call: Callable[[psycopg.Connection], T]) -> T:
        try:
            return call(self.target)
        except BaseException:
            self.source.cancel_safe()
            raise


@dataclass(order=True)
class _Sample:
    """A differing key for the samples, sortable in key order: the range's path, then the key's place in it.

    `key` None stands for the first `rows` keys of a range that exists on one side only (fetched at the end).
    """

    path: tuple[int, ...]
    position: int
    kind: str = field(compare=False)
    key: Key | None = field(compare=False, default=None)
    rows: int = field(compare=False, default=0)
    where: Range | None = field(compare=False, default=None)


@dataclass
class _Differences:
    """The counts go straight into the result; only the first `limit` samples in key order are kept."""

    result: TableResult
    limit: int
    samples: list[_Sample] = field(default_factory=list)

    def add(self, sample: _Sample) -> None:
        self.samples.append(sample)
        if len(self.samples) > 4 * self.limit:
            self.samples.sort()
            del self.samples[self.limit :]


def _prepare(conn: psycopg.Connection) -> None:
    for statement in SESSION_SETTINGS:
        conn.execute(statement)  # constants


def _names(conn: psycopg.Connection, query: str, table: str) -> list[str]:
    return [row[0] for row in conn.execute(query, (SCHEMA, table))]


def _key_text(pk: Sequence[str], key: Key) -> str:
    return ", ".join(f"{name}={value}" for name, value in zip(pk, key))


@dataclass(frozen=True)
class _Sides:
    """A table as each side sees it, with its size in pages and the catalog's row estimate (for progress)."""

    src: Table
    tgt: Table
    src_pages: int
    tgt_pages: int
    estimate: int


def _tables(pair: Pair, name: str, result: TableResult) -> _Sides | None:
    """Both sides' view of the table, or None (problem noted) when keys cannot be compared."""

    def describe(conn: psycopg.Connection) -> tuple[set[str], list[tuple[str, str]], tuple[int, int]]:
        key = [(row[0], row[1]) for row in conn.execute(PRIMARY_KEY, (SCHEMA, name))]
        size = conn.execute(SIZE, (SCHEMA, name)).fetchone()
        return set(_names(conn, COLUMNS, name)), key, (int(size[0]), int(size[1])) if size else (0, 0)

    (src_cols, src_key, src_size), (tgt_cols, tgt_key, tgt_size) = pair.both(describe, describe)
    if not src_cols or not tgt_cols:
        result.problems.append(f"table {SCHEMA}.{name} is missing in the " + ("source" if not src_cols else "target"))
        return None
    if src_cols != tgt_cols:
        result.problems.append(
            "columns differ: only in source: "
            + (", ".join(sorted(src_cols - tgt_cols)) or "-")
            + "; only in target: "
            + (", ".join(sorted(tgt_cols - src_cols)) or "-")
        )
    src_pk, tgt_pk = [n for n, _ in src_key], [n for n, _ in tgt_key]
    if not src_pk or src_pk != tgt_pk:
        result.problems.append(f"primary keys differ or are missing: source ({', '.join(src_pk)}), target ({', '.join(tgt_pk)})")
        return None
    columns = tuple(sorted(src_cols & tgt_cols))
    return _Sides(
        Table(SCHEMA, name, tuple(src_pk), tuple(t for _, t in src_key), columns),
        Table(SCHEMA, name, tuple(tgt_pk), tuple(t for _, t in tgt_key), columns),
        src_size[0],
        tgt_size[0],
        max(src_size[1], tgt_size[1]),
    )


def compare_table(pair: Pair, sides: _Sides, result: TableResult, samples: int) -> None:
    src, tgt = sides.src, sides.tgt
    # First cuts from the bigger side's sample; ranges of LEAF_ROWS or fewer rows would only add summaries.
    conn, table, pages = (pair.source, src, sides.src_pages) if sides.src_pages >= sides.tgt_pages else (pair.target, tgt, sides.tgt_pages)
    top = Range().split(ranges.sampled_bounds(conn, table, pages, TOP_RANGES, LEAF_ROWS))
    try:
        (result.source_md5, src_sums), (result.target_md5, tgt_sums) = pair.both(
            lambda c: ranges.whole(c, src, top), lambda c: ranges.whole(c, tgt, top)
        )
    except psycopg.errors.ProgramLimitExceeded:
        raise BadInput(f"{src.name}: its MD5 needs over 1 GB in PostgreSQL (32 bytes a row, over {MAX_MD5_ROWS} rows), as the documented SQL does") from None
    result.source_rows, result.target_rows = sum(s.rows for s in src_sums), sum(s.rows for s in tgt_sums)
    found = _Differences(result, samples)
    _descend(pair, src, tgt, list(zip(top, src_sums, tgt_sums)), found)
    result.samples = _sample_texts(pair, src, tgt, found)


def _descend(pair: Pair, src: Table, tgt: Table, compared: list[tuple[Range, Summary, Summary]], found: _Differences) -> None:
    """Cut differing ranges until they are small, then compare their rows; identical ranges are dropped."""
    pending: list[tuple[Range, int, int]] = []
    _triage(compared, pending, found)
    while pending:
        batch = pending[-BATCH:]  # the deepest first, so pending stays a few batches long
        del pending[-BATCH:]
        leaves = [rng for rng, s, t in batch if max(s, t) <= LEAF_ROWS or len(rng.path) >= MAX_DEPTH]
        wide = [(rng, s, t) for rng, s, t in batch if max(s, t) > LEAF_ROWS and len(rng.path) < MAX_DEPTH]
        if leaves:
            src_rows, tgt_rows = pair.both(lambda c: ranges.row_hashes(c, src, leaves), lambda c: ranges.row_hashes(c, tgt, leaves))
            for rng, a, b in zip(leaves, src_rows, tgt_rows):
                _compare_rows(rng, a, b, found)
        if wide:
            children = _split(pair, src, tgt, wide)
            src_sums, tgt_sums = pair.both(lambda c: ranges.summaries(c, src, children), lambda c: ranges.summaries(c, tgt, children))
            _triage(list(zip(children, src_sums, tgt_sums)), pending, found)


def _triage(compared: list[tuple[Range, Summary, Summary]], pending: list[tuple[Range, int, int]], found: _Differences) -> None:
    """Drop identical ranges, count one-sided ones whole, queue the rest with their row counts."""
    result = found.result
    result.ranges_compared += len(compared)
    for rng, s, t in compared:
        if s == t:
            continue
        if t.rows == 0:
            result.missing += s.rows
            found.add(_Sample(rng.path, 0, MISSING, rows=s.rows, where=rng))
        elif s.rows == 0:
            result.extra += t.rows
            found.add(_Sample(rng.path, 0, EXTRA, rows=t.rows, where=rng))
        else:
            pending.append((rng, s.rows, t.rows))


def _split(pair: Pair, src: Table, tgt: Table, wide: list[tuple[Range, int, int]]) -> list[Range]:
    """Cut each range into parts of about LEAF_ROWS rows (at most SPLIT) on its bigger side: every cut makes progress.

    Ties alternate between the sides so that both find cuts at the same time.
    """
    on_src = [s > t or (s == t and n % 2 == 0) for n, (_, s, t) in enumerate(wide)]
    by_src = [(rng, s) for (rng, s, _), mine in zip(wide, on_src) if mine]
    by_tgt = [(rng, t) for (rng, _, t), mine in zip(wide, on_src) if not mine]

    def cuts(table: Table, items: list[tuple[Range, int]]) -> Callable[[psycopg.Connection], list[list[Key]]]:
        steps = [cut_step(rows) for _, rows in items]
        return lambda conn: ranges.bounds(conn, table, [rng for rng, _ in items], steps) if items else []

    src_cuts, tgt_cuts = pair.both(cuts(src, by_src), cuts(tgt, by_tgt))
    return [child for (rng, _), keys in zip(by_src + by_tgt, src_cuts + tgt_cuts) for child in rng.split(keys)]


def cut_step(rows: int) -> int:
    """Rows per part when a differing range of `rows` rows is cut: about LEAF_ROWS, in at most SPLIT parts."""
    return math.ceil(rows / min(SPLIT, math.ceil(rows / LEAF_ROWS)))


def _compare_rows(rng: Range, src: dict[Key, str], tgt: dict[Key, str], found: _Differences) -> None:
    result = found.result
    result.rows_fetched += len(src) + len(tgt)
    differing: list[tuple[Key, str]] = []
    for key, row_md5 in src.items():
        other = tgt.get(key)
        if other is None:
            result.missing += 1
            differing.append((key, MISSING))
        elif other != row_md5:
            result.changed += 1
            differing.append((key, CHANGED))
    for key in tgt.keys() - src.keys():
        result.extra += 1
        differing.append((key, EXTRA))
    with contextlib.suppress(TypeError):  # keys Python cannot order keep the server's order; samples only
        differing.sort(key=lambda item: item[0])
    for position, (key, kind) in enumerate(differing[: found.limit]):
        found.add(_Sample(rng.path, position, kind, key))


def _sample_texts(pair: Pair, src: Table, tgt: Table, found: _Differences) -> list[str]:
    """The first `limit` differing keys in key order; one-sided ranges now fetch the few first keys needed."""
    chosen: list[tuple[_Sample, int]] = []
    room = found.limit
    for sample in sorted(found.samples):
        if room <= 0:
            break
        chosen.append((sample, 1 if sample.key is not None else min(room, sample.rows)))
        room -= chosen[-1][1]
    on_src = [(s, n) for s, n in chosen if s.key is None and s.kind == MISSING]
    on_tgt = [(s, n) for s, n in chosen if s.key is None and s.kind == EXTRA]

    def first(table: Table, gaps: list[tuple[_Sample, int]]) -> Callable[[psycopg.Connection], list[list[Key]]]:
        where = [s.where or Range() for s, _ in gaps]
        return lambda conn: ranges.first_keys(conn, table, where, [n for _, n in gaps]) if gaps else []

    src_keys, tgt_keys = pair.both(first(src, on_src), first(tgt, on_tgt))
    gap_keys = {id(s): keys for (s, _), keys in zip(on_src + on_tgt, src_keys + tgt_keys)}
    texts: list[str] = []
    for sample, _ in chosen:
        for key in [sample.key] if sample.key is not None else gap_keys[id(sample)]:
            texts.append(f"({_key_text(src.pk, key)}) {sample.kind}")
    return texts


@dataclass(frozen=True)
class Progress:
    """Reported after each table: rows read so far (the bigger side of each table) and the catalog's estimate of all."""

    tables_done: int
    tables: int
    rows_done: int
    rows_total: int
    seconds: float


def terminal_progress(stream: TextIO) -> Callable[[Progress], None] | None:
    """A status line rewritten in place when `stream` is a terminal; None (silence) for pipes, files and CI logs."""
    if not stream.isatty():
        return None

    def show(p: Progress) -> None:
        rate = p.rows_done / p.seconds if p.seconds > 0 else 0.0
        end = "\n" if p.tables_done == p.tables else ""
        stream.write(f"\r\x1b[Kintegrity: {p.tables_done}/{p.tables} tables, {p.rows_done:,} of ~{p.rows_total:,} rows, {rate:,.0f} rows/s{end}")
        stream.flush()

    return show


def dsn(host: str, port: str, dbname: str, user: str) -> str:
    """A libpq DSN over TLS without a password (libpq takes it from PGPASSWORD, never from a file or a command line);
    a value with spaces or quotes is libpq-quoted."""
    return make_conninfo(host=host, port=port, dbname=dbname, user=user, sslmode="require")


def replicated_tables(out: Outputs | None) -> tuple[str, ...]:
    """The tables to compare (and to make read-only): the stack's replicated ones (`contract.DMS_TABLES`), else all six."""
    six = qualified()
    if out is None or not out.dms_enabled or not out.available(contract.DMS_TABLES):
        return TABLES
    listed = out.strings(contract.DMS_TABLES)
    strange = [name for name in listed if name not in six]
    if strange or not listed:
        raise BadInput(
            f"stack output '{contract.DMS_TABLES.name}' ({contract.DMS_TABLES.meaning}) in {out.source} should list "
            f"some of {', '.join(six)}; got {', '.join(map(quote, strange[:5])) if strange else 'none'}."
        )
    return tuple(name.split(".", 1)[1] for name in listed)


def check(
    source_dsn: str,
    target_dsn: str,
    samples: int = 5,
    tables: Sequence[str] = TABLES,
    progress: Callable[[Progress], Any] | None = None,
) -> list[TableResult]:
    """Compare `tables` (bare names in the schema both sides share) between the two databases."""
    if samples < 1:
        raise BadInput("--samples must be at least 1.")
    check_dsn(source_dsn, "source")
    check_dsn(target_dsn, "target")  # a malformed target never waits for the source to connect
    with connect(source_dsn, "source", read_only=True) as source, connect(target_dsn, "target", read_only=True) as target:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="integrity-target") as pool:
            pair = Pair(source, target, pool)
            try:
                pair.both(_prepare, _prepare)
                results = [TableResult(name) for name in tables]
                described = [_tables(pair, result.table, result) for result in results]
                total, done, started = sum(d.estimate for d in described if d), 0, time.perf_counter()
                for n, (result, sides) in enumerate(zip(results, described), start=1):
                    if sides is not None:
                        compare_table(pair, sides, result, samples)
                    done += max(result.source_rows, result.target_rows)
                    if progress is not None:
                        progress(Progress(n, len(results), done, max(total, done), time.perf_counter() - started))
                return results
            except psycopg.Error as err:
                raise BadInput(f"integrity query failed: {clip(str(err))}") from None


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


def run(
    source_dsn: str,
    target_dsn: str,
    samples: int = 5,
    tables: Sequence[str] = TABLES,
    progress: Callable[[Progress], Any] | None = None,
) -> Report:
    return report(check(source_dsn, target_dsn, samples, tables, progress=progress))
