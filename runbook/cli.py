"""Argument parsing and dispatch; the only place that turns BadInput into "exit 2" and a Report into output."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from runbook import app_role, backup, canary, dms, integrity, loadtest, preflight, render, rollback, schema, verify, watch
from runbook.aws import Aws, reachable
from runbook.db import dsn_secrets
from runbook.errors import EXIT_BAD_INPUT, BadInput, TimedOut
from runbook.output import JSON_OPTION, Invocation, Report, show
from runbook.outputs import Outputs, load_outputs, region_name, stack_name
from runbook.snapshots import Wait
from task_service import contract
from task_service.untrusted import clip, redact
from task_service.version import version


def _stack_options(*, region: bool, without: str = "ask the pulumi CLI") -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("stack")
    group.add_argument("--outputs", metavar="FILE", help=f"stack outputs JSON (`pulumi stack output --json --show-secrets`); without it: {without}")
    group.add_argument("--stack", help="stack name (default: the one in the outputs); must match the outputs")
    if region:
        group.add_argument("--region", help="AWS region (default: the one in the outputs)")
    return parent


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):  # an infinite wait would not be bounded
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _backup_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "backup", parents=[common, JSON_OPTION], help="verified manual snapshot of the monolith database before anything moves (exit 1 on any failed check)"
    )
    p.add_argument("--monolith-db", metavar="ID", help=f"the monolith's DB instance or Aurora cluster identifier (default: the one answering at the stack's {contract.MONOLITH_DB_HOST.name})")
    p.add_argument("--include-task-service", action="store_true", help="also snapshot the Task Service's database")
    p.add_argument("--max-age-hours", type=_positive, default=backup.MAX_AGE_HOURS, help="a manual snapshot younger than this counts (default: %(default)s)")
    p.add_argument("--wait-minutes", type=_positive, default=Wait.minutes, help="longest wait for a snapshot or a restore (default: %(default)s)")
    p.add_argument("--poll-seconds", type=_positive, default=Wait.poll_seconds, help="how often to look (default: %(default)s)")
    p.add_argument("--record", metavar="FILE", help="where to record the snapshot ids (default: backup-<stack>.json)")
    p.add_argument("--dry-run", action="store_true", help="say what would be reused or created, change nothing")
    p.add_argument("--restore-test", action="store_true", help="restore the monolith's snapshot to a temporary instance, count the tables' rows there, delete it")
    p.add_argument("--restore-dsn", metavar="DSN", help="libpq DSN for the restored copy without host (e.g. 'user=U sslmode=require'; password from PGPASSWORD)")
    p.add_argument("--restore-class", metavar="CLASS", help="instance class of the temporary instance (default: the source's)")


def _backup_options(args: argparse.Namespace) -> backup.Options:
    if args.restore_test and not args.restore_dsn:
        raise BadInput("--restore-test needs --restore-dsn (user and options for the restored copy; the password comes from PGPASSWORD).")
    return backup.Options(
        monolith_db=args.monolith_db,
        include_task_service=args.include_task_service,
        max_age_hours=args.max_age_hours,
        wait=Wait(args.wait_minutes, args.poll_seconds),
        record=args.record,
        dry_run=args.dry_run,
        restore_dsn=args.restore_dsn if args.restore_test else None,
        restore_class=args.restore_class,
    )


def build_parser() -> argparse.ArgumentParser:
    common = _stack_options(region=True)
    parser = argparse.ArgumentParser(prog="python -m runbook", description="Task Service migration runbook, fed by stack outputs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("render", parents=[common], help="write the migration runbook as Markdown")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--backup", metavar="FILE", help="a `backup` record: the rollback scenarios name its snapshots")

    commands.add_parser("verify", parents=[common, JSON_OPTION], help="post-deploy checks as a pass/fail table (exit 1 on any failure)")

    p = commands.add_parser("canary", help="canary weights and gates")
    canary_commands = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = canary_commands.add_parser("status", parents=[common, JSON_OPTION], help="live weights, the health gate's findings for the current step, and the next step (never changes weights)")
    p.add_argument("--window-minutes", type=int, help="soak window (default: the gate's soakMinutes in policy/config/<stack>.json)")
    p = canary_commands.add_parser("watch", parents=[common], help="watch the current step for the soak window, polling the gate; exit 0 healthy, 1 breached")
    p.add_argument("--minutes", type=float, help="how long to watch (default: the gate's soakMinutes)")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between polls (default: %(default)g)")
    p.add_argument("--rollback-on-breach", action="store_true", help="roll back as `rollback` does at the first breach (a gate over its threshold or an alarm in ALARM)")
    p.add_argument("--scale-to-zero", action="store_true", help="with --rollback-on-breach: also scale the service to 0")
    p.add_argument("--yes", action="store_true", help="arm --rollback-on-breach without asking (required without a terminal)")

    _backup_parser(commands, common)
    loadtest.add_parser(commands, [common, JSON_OPTION])

    p = commands.add_parser("rollback", parents=[common], help="route 100%% to the monolith now (keeps both target groups)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="print the calls, change nothing")
    p.add_argument("--scale-to-zero", action="store_true", help="also pin autoscaling at 0 and set the service's desired count to 0")

    p = commands.add_parser("dms", help="the DMS replication task")
    dms_commands = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dms_commands.add_parser("status", parents=[common, JSON_OPTION], help="status, progress, table statistics and validation where available")
    p.add_argument("--watch", action="store_true", help="wait until the full load is over (progress bar on a terminal), then report")
    p.add_argument("--interval", type=float, default=30, metavar="SECONDS", help="with --watch: seconds between polls (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=120, metavar="MINUTES", help="with --watch: give up after (default: %(default)s)")
    for action, text in (("start", "start (first time) or resume (after a stop) the task"), ("stop", "stop the task")):
        p = dms_commands.add_parser(action, parents=[common], help=text)
        p.add_argument("--dry-run", action="store_true", help="print the call, change nothing")

    p = commands.add_parser(
        "integrity",
        parents=[_stack_options(region=False, without="--stack asks the pulumi CLI; with neither, all six tables are compared"), JSON_OPTION],
        help="row counts and MD5 of the stack's replicated tables (all six without outputs), source vs target (exit 1 on any difference)",
    )
    p.add_argument("--source", required=True, metavar="DSN", help="the monolith database (libpq DSN or URI)")
    p.add_argument("--target", required=True, metavar="DSN", help="the Task Service database")
    p.add_argument("--samples", type=int, default=5, help="differing primary keys to show per table (default: %(default)s)")

    preflight.add_parser(commands)

    p = commands.add_parser("schema", help="the Task Service schema")
    schema_commands = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = schema_commands.add_parser("apply", help="apply schema/task_service.sql (idempotent)")
    p.add_argument("--dsn", required=True, metavar="DSN", help="the Task Service database (libpq DSN or URI)")
    p = schema_commands.add_parser(
        "app-role",
        parents=[common],
        help="create the application's role from its secret: DML on the six tables only, ready for rotation (idempotent)",
    )
    p.add_argument("--dsn", required=True, metavar="DSN", help="the Task Service database as the master user (password from PGPASSWORD)")
    return parser


def _outputs(args: argparse.Namespace) -> Outputs:
    return load_outputs(args.outputs, args.stack)


def _loadtest(args: argparse.Namespace) -> Report:
    """Without outputs only with --no-record: a local URL needs no stack."""
    request = loadtest.request_from(args)
    if request.record or args.outputs or args.stack:
        try:
            out = _outputs(args)
        except BadInput as err:
            raise BadInput(f"{err} (loadtest records its result in the stack; --no-record runs without one)") from None
        invocation = Invocation(args.outputs, stack_name(out, args.stack), args.region)
        aws = Aws(region_name(out, args.region))
        with reachable():
            return loadtest.run(request, out, aws, invocation)
    return loadtest.run(request, None, None, None)


def dispatch(args: argparse.Namespace) -> int | Report:
    """Run the command: an exit code, or a Report that `main` shows as text or JSON."""
    command = args.command
    if command == "integrity":
        stack_outputs = _outputs(args) if args.outputs or args.stack else None
        return integrity.run(
            args.source, args.target, args.samples, integrity.replicated_tables(stack_outputs), progress=integrity.terminal_progress(sys.stderr)
        )
    if command == "schema" and args.action == "apply":
        return schema.apply(args.dsn)
    if command == "preflight":
        return preflight.run(args)
    if command == "loadtest":
        return _loadtest(args)
    out = _outputs(args)
    invocation = Invocation(args.outputs, stack_name(out, args.stack), args.region)
    if command == "render":
        return render.run(out, invocation.stack, args.out, args.region, args.backup)
    aws = Aws(region_name(out, args.region))
    with reachable():
        if command == "backup":
            return backup.run(out, aws, invocation, _backup_options(args))
        if command == "schema":
            return app_role.run(out, aws, args.dsn)
        if command == "verify":
            return verify.run(out, aws)
        if command == "canary" and args.action == "watch":
            options = watch.WatchOptions(args.minutes, args.interval, args.rollback_on_breach, args.scale_to_zero, args.yes)
            return watch.run(out, aws, invocation, options)
        if command == "canary":
            return canary.run(out, aws, invocation, args.window_minutes)
        if command == "rollback":
            return rollback.run(out, aws, invocation.stack, yes=args.yes, dry_run=args.dry_run, scale_to_zero=args.scale_to_zero)
        if args.action == "status" and args.watch:
            with dms.progress_bar(sys.stderr) as bar:
                return dms.watch(out, aws, invocation, args.interval, args.timeout, bar)
        if args.action == "status":
            return dms.status(out, aws, invocation)
        if args.action == "start":
            return dms.start(out, aws, invocation, dry_run=args.dry_run)
        return dms.stop(out, aws, invocation, dry_run=args.dry_run)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dsns = [getattr(args, name, None) for name in ("source", "target", "dsn", "restore_dsn")]
    secrets = [secret for dsn in dsns if dsn for secret in dsn_secrets(dsn)]
    try:
        result = dispatch(args)
        return show(result, args.json, sys.stdout) if isinstance(result, Report) else result
    except (BadInput, TimedOut, OSError) as err:
        # Messages name what is wrong without secrets already; a DSN's secrets are removed once more, to be sure.
        print(f"error: {clip(redact(str(err), secrets), 2000)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
