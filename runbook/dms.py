"""`dms status|start|stop`: the replication task, with the right start type.

AWS wants `start-replication` only for a task that has never run; after a stop (or a failure) the
task must be resumed with `resume-processing`, or DMS reloads the target from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runbook.aws import Aws, error_text
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.outputs import Outputs
from task_service import contract

RUNNING = {"running", "starting"}
RESUMABLE = {"stopped", "failed"}
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


def _table_statistics(aws: Aws, arn: str, emit: Callable[[str], Any]) -> None:
    try:
        pages = aws.client("dms").get_paginator("describe_table_statistics").paginate(ReplicationTaskArn=arn)
        stats = [s for page in pages for s in page.get("TableStatistics", [])]
    except (ClientError, BotoCoreError) as err:
        emit(f"table statistics: not available (DescribeTableStatistics failed: {error_text(err)})")
        emit("validation state: not available (it is reported with the table statistics)")
        return
    if not stats:
        emit("table statistics: none reported yet")
        return
    emit("| table | state | full load rows | inserts | updates | deletes | validation |")
    emit("|---|---|---|---|---|---|---|")
    for s in stats:
        emit(
            f"| {s.get('SchemaName')}.{s.get('TableName')} | {s.get('TableState', '?')} | {s.get('FullLoadRows', '?')} "
            f"| {s.get('Inserts', '?')} | {s.get('Updates', '?')} | {s.get('Deletes', '?')} "
            f"| {s.get('ValidationState', 'not reported')} |"
        )


def status(out: Outputs, aws: Aws, emit: Callable[[str], Any] = print) -> int:
    arn = task_arn(out)
    task = describe(aws, arn)
    emit(f"task: {task.get('ReplicationTaskIdentifier')} ({arn})")
    emit(f"status: {task.get('Status')}" + (f" (stop reason: {task['StopReason']})" if task.get("StopReason") else ""))
    emit(f"migration type: {task.get('MigrationType')}; started: {task.get('ReplicationTaskStartDate') or 'never'}")
    if task.get("LastFailureMessage"):
        emit(f"last failure: {task['LastFailureMessage']}")
    stats = task.get("ReplicationTaskStats")
    if stats:
        emit("progress: " + ", ".join(f"{k}={stats[k]}" for k in STAT_FIELDS if k in stats))
    else:
        emit("progress: not available (no ReplicationTaskStats in the response)")
    _table_statistics(aws, arn, emit)
    return EXIT_FAILED if task.get("Status") == "failed" or task.get("LastFailureMessage") else EXIT_OK


def start(out: Outputs, aws: Aws, dry_run: bool = False, emit: Callable[[str], Any] = print) -> int:
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
    emit("watch it: python -m runbook dms status")
    return EXIT_OK


def stop(out: Outputs, aws: Aws, dry_run: bool = False, emit: Callable[[str], Any] = print) -> int:
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
    emit(f"stopping; now {after.get('ReplicationTask', {}).get('Status')}. A later `dms start` resumes with resume-processing.")
    return EXIT_OK
