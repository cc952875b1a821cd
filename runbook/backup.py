"""`backup`: a verified manual snapshot of the monolith database before anything moves (seed 001).

The monolith database is found from the stack's `monolithDbHost` (an RDS instance endpoint, or an Aurora cluster's
writer or reader endpoint, which gets a cluster snapshot) unless `--monolith-db` names it; `--include-task-service`
adds the Task Service's own instance. A manual snapshot of a source younger than `--max-age-hours` counts, so the
command can run again safely; otherwise one is created, named from the stack's naming. Each snapshot is awaited until
`available` within `--wait-minutes`, then checked: encrypted, same engine, version and allocated storage as its
source. `--restore-test` restores the monolith's snapshot into a temporary instance, counts the migrated tables'
rows there and deletes it (restore_test.py). Only when every check passes is the record written
(`backup-<stack>.json`): `preflight`, the rendered runbook and the rollback scenarios name the snapshots from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runbook import restore_test, snapshots
from runbook.aws import Aws
from runbook.db import check_dsn
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.integrity import replicated_tables
from runbook.outputs import Outputs
from runbook.output import Invocation, Report, progress
from runbook.report import CHECK_COLUMNS, Check, Status, records
from runbook.snapshots import MONOLITH, TASK_SERVICE, Snapshot, Source, Wait, iso
from runbook.waiting import WaitFailed, WaitTimedOut
from task_service import contract
from task_service.naming import Naming
from task_service.untrusted import InputError, read_json

RECORD_VERSION = 1
MAX_AGE_HOURS = 24.0
"""A snapshot older than this no longer stands for "the data before anything moved"."""


def record_path(stack: str) -> str:
    """Where the record is written and read by default: next to the outputs file an operator keeps."""
    return f"backup-{stack}.json"


@dataclass
class Options:
    monolith_db: str | None = None
    include_task_service: bool = False
    max_age_hours: float = MAX_AGE_HOURS
    wait: Wait = field(default_factory=Wait)
    record: str | None = None
    dry_run: bool = False
    restore_dsn: str | None = None
    """With it, `--restore-test` runs on the monolith's snapshot."""
    restore_class: str | None = None


@dataclass
class Outcome:
    """What a run did: the snapshots, their checks, and whether the record may be written."""

    snapshots: list[Snapshot] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    """What a dry run would do."""

    @property
    def passed(self) -> bool:
        return bool(self.snapshots) and all(c.status is Status.PASS for c in self.checks)


def sources(out: Outputs, aws: Aws, options: Options) -> list[Source]:
    rds = aws.client("rds")
    monolith = options.monolith_db
    found = [snapshots.by_id(rds, MONOLITH, monolith) if monolith else snapshots.by_host(rds, MONOLITH, out.string(contract.MONOLITH_DB_HOST))]
    if options.include_task_service:
        found.append(snapshots.by_id(rds, TASK_SERVICE, out.string(contract.DB_INSTANCE_ID)))
    return found


def _one(rds: Any, naming: Naming, source: Source, stack: str, options: Options, emit: Callable[[str], Any], outcome: Outcome) -> None:
    """Reuse a recent snapshot or take one; await and verify it (or, on a dry run, say what would happen)."""
    now = datetime.now(timezone.utc)
    emit(f"{source.role}: {source.api.kind} {source.identifier} ({source.engine} {source.engine_version}, {source.allocated_storage} GB)")
    existing = snapshots.recent(rds, source, timedelta(hours=options.max_age_hours), now)
    reuse = str(existing[source.api.snapshot_id]) if existing else None
    identifier = reuse or snapshots.new_id(naming, source, now)
    if options.dry_run:
        outcome.plan.append(
            f"{source.role}: would reuse {reuse}, younger than {options.max_age_hours:g} h" if reuse else
            f"{source.role}: would call rds.{source.api.create}({source.api.snapshot_id}={identifier!r}, {source.api.source_id}="
            f"{source.identifier!r}) and wait up to {options.wait.minutes:g} min"
        )
        return
    if reuse:
        emit(f"  reusing {reuse}: a manual snapshot younger than {options.max_age_hours:g} h")
    else:
        snapshots.create(rds, source, identifier, stack)
        emit(f"  created {identifier}")
    try:
        described = snapshots.await_available(rds, source, identifier, options.wait, emit)
    except (WaitTimedOut, WaitFailed) as err:
        outcome.checks.append(Check(f"{identifier} available", Status.FAIL, str(err)))
        return
    outcome.checks += snapshots.verify(source, described)
    outcome.snapshots.append(snapshots.recorded(source, described, reused=reuse is not None))


def take(out: Outputs, aws: Aws, stack: str, options: Options, emit: Callable[[str], Any]) -> Outcome:
    """Find or take, await and verify a snapshot of every source; then the restore test when asked for."""
    rds, naming = aws.client("rds"), Naming(out.string(contract.NAME_PREFIX))
    outcome = Outcome(sources=sources(out, aws, options))
    for source in outcome.sources:
        _one(rds, naming, source, stack, options, emit, outcome)
    monolith = next((s for s in outcome.snapshots if s.source == MONOLITH), None)
    if options.restore_dsn and monolith and outcome.passed:
        restore = restore_test.RestoreOptions(
            dsn=options.restore_dsn,
            dbname=out.string(contract.MONOLITH_DB_NAME),
            tables=replicated_tables(out),
            instance_class=options.restore_class,
        )
        monolith.restoreTest = restore_test.run(rds, naming, outcome.sources[0], monolith, restore, options.wait, emit)
        passed = monolith.restoreTest["passed"]
        detail = f"{len(monolith.restoreTest.get('rows', {}))} tables counted in {monolith.restoreTest['instance']}"
        outcome.checks.append(Check.verdict(f"{monolith.snapshotId} restores", passed,
                                    detail if passed else str(monolith.restoreTest.get("detail"))))
    return outcome


@dataclass
class Record:
    """The record file: the snapshots that stand for "the data before anything moved" in one stack."""

    stack: str
    region: str
    takenAt: str
    snapshots: list[dict[str, Any]]
    version: int = RECORD_VERSION


def load_record(path: str, stack: str | None = None) -> Record:
    """The record `backup` wrote; BadInput when it is missing, malformed or for another stack."""
    if not Path(path).exists():
        raise BadInput(f"no backup record {path}: run `python -m runbook backup` first.")
    try:
        content = read_json(Path(path), "the file")
    except InputError as err:
        raise BadInput(f"backup record {path} cannot be read: {err}") from None
    fields = Record.__dataclass_fields__
    if not isinstance(content, dict) or set(content) != set(fields):
        raise BadInput(f"backup record {path} should hold exactly {', '.join(sorted(fields))}; write it again with `runbook backup`.")
    record = Record(**{name: content[name] for name in fields})
    if not isinstance(record.snapshots, list) or not all(isinstance(s, dict) and "snapshotId" in s for s in record.snapshots):
        raise BadInput(f"backup record {path} has no 'snapshots' list with snapshot ids; write it again with `runbook backup`.")
    if stack and record.stack != stack:
        raise BadInput(f"backup record {path} is for stack {record.stack!r}, not {stack!r}.")
    return record


def monolith_snapshot(record: Record, max_age_hours: float = MAX_AGE_HOURS, now: datetime | None = None) -> dict[str, Any] | None:
    """The record's encrypted monolith snapshot when younger than `max_age_hours`: what `dms start` waits for."""
    now = now or datetime.now(timezone.utc)
    for snapshot in record.snapshots:
        if snapshot.get("source") != MONOLITH or not snapshot.get("encrypted"):
            continue
        try:
            created = snapshots.from_iso(str(snapshot.get("createdAt")))
        except ValueError:
            continue
        if now - created <= timedelta(hours=max_age_hours):
            return dict(snapshot)
    return None


def _keep_restore_tests(path: str, stack: str, taken: list[Snapshot]) -> None:
    """A reused snapshot keeps the restore test an earlier run recorded for it (unless this run made a new one)."""
    try:
        earlier = {s["snapshotId"]: s.get("restoreTest") for s in load_record(path, stack).snapshots}
    except BadInput:
        return
    for snapshot in taken:
        if snapshot.reused and snapshot.restoreTest is None:
            snapshot.restoreTest = earlier.get(snapshot.snapshotId)


NEEDS = (contract.NAME_PREFIX, contract.MONOLITH_DB_NAME)


def run(out: Outputs, aws: Aws, invocation: Invocation, options: Options) -> Report:
    out.require(*NEEDS, *(() if options.monolith_db else (contract.MONOLITH_DB_HOST,)),
                *((contract.DB_INSTANCE_ID,) if options.include_task_service else ()))
    if options.restore_dsn is not None:
        check_dsn(options.restore_dsn, "--restore-dsn")
    stack = invocation.stack
    path = options.record or record_path(stack)
    outcome = take(out, aws, stack, options, progress)
    written = outcome.passed and not options.dry_run
    _keep_restore_tests(path, stack, outcome.snapshots)
    record = Record(stack, aws.region, iso(datetime.now(timezone.utc)), [asdict(s) for s in outcome.snapshots])
    if written:
        Path(path).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    report = Report(EXIT_OK if options.dry_run or outcome.passed else EXIT_FAILED)
    for line in outcome.plan:
        report.say(line, dryRun=True, plan=outcome.plan)
    if outcome.checks:
        report.table("checks", CHECK_COLUMNS, records(outcome.checks))
    report.fields.update(stack=stack, region=aws.region, snapshots=record.snapshots, record=path if written else None)
    if written:
        report.say(f"recorded in {path}: " + ", ".join(f"{s.source} {s.snapshotId}" for s in outcome.snapshots))
        report.suggest("it counts before `dms start`", f"python -m runbook preflight --stack {stack}")
        if out.dms_enabled:
            report.suggest("then start DMS", invocation.command("dms", "start"))
    elif not options.dry_run:
        report.say(f"NOT recorded: a check failed; {path} is unchanged.")
    return report
