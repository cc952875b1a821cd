"""`dms status|start|stop`: the replication task, with the right start type.

AWS wants `start-replication` only for a task that has never run; after a stop (or a failure) the
task must be resumed with `resume-processing`, or DMS reloads the target from scratch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from runbook.aws import Aws, error_text
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.output import Invocation, Report, console
from runbook.outputs import Outputs
from task_service import contract

RUNNING = {"running", "starting"}
RESUMABLE = {"stopped", "failed"}
NEVER_STARTED = "the task has never been started"
STAT_FIELDS = (
    "FullLoadProgressPercent",
    "TablesLoaded",
    "TablesLoading",
    "TablesQueued",
    "TablesErrored",
    "ElapsedTimeMillis",
)


def task_arn(out: Outputs) -> str:
    if not out.dms_enabled:
        raise BadInput(
            f"DMS is disabled in this stack: {out.source} has no DMS outputs "
            f"('{contract.DMS_REPLICATION_TASK_ARN.name}' and the others). Enable DMS in the stack config (prod) to use `dms`."
        )
    return out.string(contract.DMS_REPLICATION_TASK_ARN)


def describe(aws: Aws, arn: str) -> dict[str, Any]:
    try:
        tasks = aws.client("dms").describe_replication_tasks(
            Filters=[{"Name": "replication-task-arn", "Values": [arn]}], WithoutSettings=True
        ).get("ReplicationTasks", [])
    except ClientError as err:
        raise BadInput(f"DMS task {arn} cannot be described: {error_text(err)}") from None
    if not tasks:
        raise BadInput(f"DMS task {arn} does not exist ({contract.DMS_REPLICATION_TASK_ARN.name}).")
    return dict(tasks[0])


def start_type(task: dict[str, Any]) -> str | None:
    """`start-replication` for a task that never ran, `resume-processing` after a stop or failure.

    None means "do not start": it is already running, or in a state AWS would refuse.
    """
    status = task.get("Status", "")
    ever_started = bool(task.get("ReplicationTaskStartDate") or task.get("ReplicationTaskStats", {}).get("StartDate"))
    if status == "ready" and not ever_started:
        return "start-replication"
    if status in RESUMABLE or (status == "ready" and ever_started):
        return "resume-processing"
    return None


TABLE_COLUMNS = {
    "table": "table",
    "state": "state",
    "fullLoadRows": "full load rows",
    "inserts": "inserts",
    "updates": "updates",
    "deletes": "deletes",
    "validation": "validation",
}


def _table_statistics(aws: Aws, arn: str, report: Report) -> None:
    try:
        pages = aws.client("dms").get_paginator("describe_table_statistics").paginate(ReplicationTaskArn=arn)
        stats = [s for page in pages for s in page.get("TableStatistics", [])]
    except (ClientError, BotoCoreError) as err:
        reason = f"DescribeTableStatistics failed: {error_text(err)}"
        report.say(f"table statistics: not available ({reason})", tableStatistics=None, tableStatisticsUnavailable=reason)
        report.say("validation state: not available (it is reported with the table statistics)")
        return
    if not stats:
        report.say("table statistics: none reported yet", tableStatistics=[])
        return
    rows = [
        {
            "table": f"{s.get('SchemaName')}.{s.get('TableName')}",
            "state": s.get("TableState", "?"),
            "fullLoadRows": s.get("FullLoadRows", "?"),
            "inserts": s.get("Inserts", "?"),
            "updates": s.get("Updates", "?"),
            "deletes": s.get("Deletes", "?"),
            "validation": s.get("ValidationState", "not reported"),
        }
        for s in stats
    ]
    report.table("tableStatistics", TABLE_COLUMNS, rows)


def _report(aws: Aws, arn: str, task: dict[str, Any], invocation: Invocation) -> Report:
    """The task as DMS describes it now, its per-table statistics, and what to run next."""
    failed = task.get("Status") == "failed" or bool(task.get("LastFailureMessage"))
    report = Report(EXIT_FAILED if failed else EXIT_OK)
    report.say(f"task: {task.get('ReplicationTaskIdentifier')} ({arn})", task=task.get("ReplicationTaskIdentifier"), taskArn=arn)
    report.say(
        f"status: {task.get('Status')}" + (f" (stop reason: {task['StopReason']})" if task.get("StopReason") else ""),
        status=task.get("Status"),
        stopReason=task.get("StopReason"),
    )
    started = task.get("ReplicationTaskStartDate")
    report.say(
        f"migration type: {task.get('MigrationType')}; started: {started or 'never'}",
        migrationType=task.get("MigrationType"),
        startedAt=started,
    )
    if task.get("LastFailureMessage"):
        report.say(f"last failure: {task['LastFailureMessage']}", lastFailure=task["LastFailureMessage"])
    stats = task.get("ReplicationTaskStats")
    if stats:
        shown = {k: stats[k] for k in STAT_FIELDS if k in stats}
        report.say("progress: " + ", ".join(f"{k}={v}" for k, v in shown.items()), progress=shown)
    else:
        report.say("progress: not available (no ReplicationTaskStats in the response)", progress=None)
    _table_statistics(aws, arn, report)
    if start_type(task) == "start-replication":
        report.suggest("start it", invocation.command("dms", "start"))
    elif _waiting_over(task) is None:
        report.suggest("wait for the full load", invocation.command("dms", "status", "--watch"))
    return report


def status(out: Outputs, aws: Aws, invocation: Invocation) -> Report:
    arn = task_arn(out)
    return _report(aws, arn, describe(aws, arn), invocation)


def _waiting_over(task: dict[str, Any]) -> str | None:
    """Why waiting for the full load is over (done, stopped, failed, never started), or None to keep waiting."""
    state = task.get("Status", "")
    stats = task.get("ReplicationTaskStats") or {}
    if state == "failed" or task.get("LastFailureMessage"):
        return "the task failed"
    if state in {"stopped", "stopping"}:
        return f"the task is {state}"
    if start_type(task) == "start-replication":
        return NEVER_STARTED
    if state == "running" and task.get("MigrationType") == "cdc":
        return "the task replicates changes only (no full load)"
    loaded = stats.get("FullLoadProgressPercent") == 100 and not stats.get("TablesLoading") and not stats.get("TablesQueued")
    if state == "running" and loaded:
        return "the full load is complete"
    return None


@contextmanager
def progress_bar(stream: TextIO) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """A full-load progress bar on a terminal; None (silence) for pipes, files and CI logs."""
    if not stream.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), console=console(stream)) as bar:
        job = bar.add_task("DMS full load", total=100)

        def show(task: dict[str, Any]) -> None:
            stats = task.get("ReplicationTaskStats") or {}
            counts = ", ".join(f"{stats.get(f'Tables{k}', '?')} {k.lower()}" for k in ("Loaded", "Loading", "Queued", "Errored"))
            bar.update(job, completed=stats.get("FullLoadProgressPercent", 0), description=f"DMS full load ({task.get('Status')}: {counts})")

        yield show


def watch(
    out: Outputs,
    aws: Aws,
    invocation: Invocation,
    interval_seconds: float,
    timeout_minutes: float,
    show: Callable[[dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Poll until the full load is over (at most `timeout_minutes`), then report as `status` does."""
    if not all(math.isfinite(n) and n > 0 for n in (interval_seconds, timeout_minutes)):
        raise BadInput("--interval and --timeout must be positive numbers.")
    arn = task_arn(out)
    polls = max(1, math.ceil(timeout_minutes * 60 / interval_seconds))
    for poll in range(polls):
        task = describe(aws, arn)
        if show is not None:
            show(task)
        over = _waiting_over(task)
        if over is not None or poll == polls - 1:
            break
        sleep(interval_seconds)
    report = _report(aws, arn, task, invocation)
    if over is None:
        report.say(f"waited {timeout_minutes:g} minutes: the full load is not over yet", waitedFor=None, timedOut=True)
    else:
        report.say(f"waited until {over}", waitedFor=over, timedOut=False)
    if over in {None, NEVER_STARTED}:
        report.exit_code = EXIT_FAILED
    return report


def start(out: Outputs, aws: Aws, invocation: Invocation, dry_run: bool = False, emit: Callable[[str], Any] = print) -> int:
    arn = task_arn(out)
    task = describe(aws, arn)
    current = task.get("Status", "")
    if current in RUNNING:
        emit(f"DMS task already {current}: nothing to do.")
        return EXIT_OK
    kind = start_type(task)
    if kind is None:
        emit(f"DMS task cannot be started while its status is '{current}'; wait for 'ready' or 'stopped'.")
        return EXIT_FAILED
    call = f"dms.start_replication_task(ReplicationTaskArn={arn!r}, StartReplicationTaskType={kind!r})"
    if dry_run:
        emit(f"dry run; would call: {call}")
        return EXIT_OK
    try:
        after = aws.client("dms").start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType=kind)
    except ClientError as err:
        emit(f"FAILED: {call}: {error_text(err)}")
        return EXIT_FAILED
    emit(f"started with {kind} (status was '{current}'); now {after.get('ReplicationTask', {}).get('Status')}.")
    emit(f"watch the full load: {invocation.command('dms', 'status', '--watch')}")
    return EXIT_OK


def stop(out: Outputs, aws: Aws, invocation: Invocation, dry_run: bool = False, emit: Callable[[str], Any] = print) -> int:
    arn = task_arn(out)
    task = describe(aws, arn)
    current = task.get("Status", "")
    if current in {"stopped", "stopping"}:
        emit(f"DMS task already {current}: nothing to do.")
        return EXIT_OK
    if current != "running":
        emit(f"DMS task cannot be stopped while its status is '{current}'.")
        return EXIT_FAILED
    call = f"dms.stop_replication_task(ReplicationTaskArn={arn!r})"
    if dry_run:
        emit(f"dry run; would call: {call}")
        return EXIT_OK
    try:
        after = aws.client("dms").stop_replication_task(ReplicationTaskArn=arn)
    except ClientError as err:
        emit(f"FAILED: {call}: {error_text(err)}")
        return EXIT_FAILED
    emit(f"stopping; now {after.get('ReplicationTask', {}).get('Status')}. To resume later (resume-processing): {invocation.command('dms', 'start')}")
    return EXIT_OK
