"""`render`: the migration runbook as Markdown, every value filled in from the stack outputs.

The document's text lives in `templates/runbook.md.j2`; this module decides what goes into it: which
steps lack values, the DSNs and the commands. Values the outputs do not hold yet (a preview, or secrets
without --show-secrets) appear as `<name: not available>` and the step that needs them says so,
instead of silently printing a placeholder an operator might paste.

Output values are data, whatever the outputs file says: in shell commands every one is shell-quoted
(`sh.<NAME>`), inside a DSN libpq-quoted first, and in SQL quoted as an identifier (psycopg.sql).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
from psycopg import sql

from runbook import backup, canary, rotation
from runbook.integrity import dsn, replicated_tables
from runbook.loadtest import COGNITO_PASSWORD_ENV
from runbook.output import Invocation
from runbook.snapshots import MONOLITH, TASK_SERVICE
from runbook.outputs import Outputs
from runbook.rollback import TARGET_SECONDS
from task_service import contract
from task_service import loadtest as loadtest_domain
from task_service.canary import STEPS
from task_service.contract import Output
from task_service.tables import SCHEMA, TABLES, qualified

TEMPLATE = "runbook.md.j2"
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["sh"] = shlex.quote  # `{{ value | sh }}`: any other value that goes into a shell command

DMS_OUTPUTS = (
    contract.DMS_REPLICATION_TASK_ARN,
    contract.DMS_REPLICATION_INSTANCE_ARN,
    contract.DMS_SOURCE_ENDPOINT_ARN,
    contract.DMS_TARGET_ENDPOINT_ARN,
    contract.DMS_TABLES,
)
DB_CONNECTION = (contract.DB_ADDRESS, contract.DB_PORT, contract.DB_NAME, contract.DB_USERNAME)
ROUTE = (contract.LISTENER_RULE_ARN, contract.TARGET_GROUP_ARN, contract.MONOLITH_TARGET_GROUP_ARN)
ROTATION = (
    contract.REGION,
    contract.DB_APP_USERNAME,
    contract.DB_SECRET_ARN,
    contract.DB_APP_SECRET_ARN,
    contract.SECRET_ROTATION_DAYS,
    contract.DB_ROTATION_FUNCTION_ARN,
    contract.DB_APP_ROTATION_FUNCTION_ARN,
)

NEEDS: dict[str, tuple[Output, ...]] = {
    "prerequisites": (contract.REGION, contract.DB_SECRET_ARN),
    "deploy": (contract.STACK,),
    "schema": DB_CONNECTION + ROTATION,
    "backup": (contract.NAME_PREFIX, contract.MONOLITH_DB_HOST, contract.MONOLITH_DB_NAME),
    "dms": DMS_OUTPUTS,
    "verify": (
        contract.CLUSTER_NAME,
        contract.SERVICE_NAME,
        contract.DB_INSTANCE_ID,
        contract.LISTENER_RULE_ARN,
        contract.ALARM_NAMES,
        contract.SECRET_ROTATION_DAYS,
    ),
    "loadtest": (contract.LOADTEST_RESULT_PARAMETER, contract.TEST_ROUTE_RULE_ARN, contract.TEST_ROUTE_SECRET_ARN),
    "canary": ROUTE + (contract.DASHBOARD_URL,),
    "integrity": DB_CONNECTION,
    "rollback": ROUTE + (contract.CLUSTER_NAME, contract.SERVICE_NAME),
    "end": (contract.MONOLITH_DB_APP_USER, contract.DMS_REPLICATION_TASK_ARN),
}
"""The outputs each step needs; a DMS output counts only where the stack has DMS."""


def _missing(out: Outputs) -> dict[str, list[tuple[str, str]]]:
    """Per step, the outputs it needs that are not available, with the reason."""
    missing: dict[str, list[tuple[str, str]]] = {}
    for step, needs in NEEDS.items():
        missing[step] = [(output.name, reason) for output in needs if out.exports(output) and (reason := out.reason_unavailable(output))]
    return missing


def _manual_rollback(out: Outputs) -> str:
    """The AWS CLI call that does what `rollback` does, for when the tool cannot run."""
    groups = [
        {"TargetGroupArn": out.display(contract.MONOLITH_TARGET_GROUP_ARN), "Weight": 100},
        {"TargetGroupArn": out.display(contract.TARGET_GROUP_ARN), "Weight": 0},
    ]
    actions = json.dumps([{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}], separators=(",", ":"))
    return (
        f"aws elbv2 modify-rule --region {shlex.quote(out.display(contract.REGION))} "
        f"--rule-arn {shlex.quote(out.display(contract.LISTENER_RULE_ARN))} --actions {shlex.quote(actions)}"
    )


def _dsn(out: Outputs, host: Output, dbname: Output, user: Output | str, port: Output | str = "5432") -> str:
    """A shell-quoted libpq DSN of outputs; an unavailable one shows as `<name>` (a literal `str` is used as is)."""

    def part(value: Output | str) -> str:
        if isinstance(value, str):
            return value
        return out.display(value) if out.available(value) else f"<{value.name}>"

    return shlex.quote(dsn(part(host), part(port), part(dbname), part(user)))


def _read_only_sql(out: Outputs) -> list[str]:
    """End of migration: revoke the monolith's writes on the replicated tables, keep its reads (identifiers quoted)."""
    user = sql.Identifier(out.display(contract.MONOLITH_DB_APP_USER))
    tables = [sql.Identifier(SCHEMA, name) for name in replicated_tables(out)]
    statements = [sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {};").format(table, user) for table in tables]
    statements.append(sql.SQL("GRANT SELECT ON {} TO {};").format(sql.SQL(", ").join(tables), user))
    return [statement.as_string(None) for statement in statements]


def _function_log_group(out: Outputs, function: Output) -> str:
    """Where a rotation function logs (`/aws/lambda/<name>`), from its ARN; the placeholder when unknown."""
    if not out.available(function):
        return out.display(function)
    return rotation.log_group(out.string(function))


def _snapshots(record: backup.Record | None) -> dict[str, str | None]:
    """The recorded snapshot ids by source, where a record was given."""
    found = {s.get("source"): str(s["snapshotId"]) for s in (record.snapshots if record else [])}
    return {"monolith": found.get(MONOLITH), "service": found.get(TASK_SERVICE)}


def render(out: Outputs, stack: str, region: str | None = None, record: backup.Record | None = None) -> str:
    """The runbook; `record` (a `backup` record) fills in the snapshot ids the rollback scenarios restore."""
    taken = _snapshots(record)
    backup_path = backup.record_path(stack)
    outputs = {name: output for name, output in vars(contract).items() if isinstance(output, Output)}
    values = SimpleNamespace(**{name: out.display(output) for name, output in outputs.items()})
    quoted = SimpleNamespace(**{name: shlex.quote(out.display(output)) for name, output in outputs.items()})
    outputs_path = f"outputs-{stack}.json"
    invocation = Invocation(outputs_path, stack, region)
    text = _ENVIRONMENT.get_template(TEMPLATE).render(
        c=contract,
        v=values,
        sh=quoted,
        stack=stack,
        source=out.source,
        outputs_path=outputs_path,
        runbook=lambda command: invocation.command(*command.split()),
        up=canary.up_command(stack),
        canary_key=canary.CONFIG_KEY,
        deploy=lambda weight: canary.deploy_command(stack, weight),
        steps=list(zip(STEPS, STEPS[1:])),
        gate=canary.thresholds_for(stack),
        steps_text=" -> ".join(str(step) for step in STEPS),
        rollback_minutes=TARGET_SECONDS // 60,
        manual_rollback=_manual_rollback(out),
        rotation_logs=[_function_log_group(out, f) for f in (contract.DB_ROTATION_FUNCTION_ARN, contract.DB_APP_ROTATION_FUNCTION_ARN)],
        dms=out.dms_enabled,
        tables=TABLES,
        replicated=qualified(replicated_tables(out)),
        read_only_sql=_read_only_sql(out),
        dsn=_dsn(out, contract.DB_ADDRESS, contract.DB_NAME, contract.DB_USERNAME, contract.DB_PORT),
        source_dsn=_dsn(out, contract.MONOLITH_DB_HOST, contract.MONOLITH_DB_NAME, "<read-only-user>"),
        missing=_missing(out),
        backup=taken,
        backup_path=backup_path,
        backup_hours=f"{backup.MAX_AGE_HOURS:g}",
        monolith_snapshot=taken["monolith"] or f"<monolith snapshotId in {backup_path}>",
        service_snapshot=taken["service"] or f"<task-service snapshotId in {backup_path}>",
        load=loadtest_domain,
        cognito_password_env=COGNITO_PASSWORD_ENV,
        test_route=out.test_route_enabled,
        all_traffic=out.available(contract.CANARY_WEIGHT) and out.integer(contract.CANARY_WEIGHT) == 100,
        unavailable=sorted(output.name for output in contract.CONTRACT if out.present(output) and not out.available(output)),
    )
    return text.rstrip("\n") + "\n"


def run(
    out: Outputs, stack: str, destination: str | None, region: str | None = None, record_path: str | None = None, emit: Callable[[str], Any] = print
) -> int:
    text = render(out, stack, region, backup.load_record(record_path, stack) if record_path else None)
    if destination:
        with open(destination, "w", encoding="utf-8") as handle:
            handle.write(text)
        emit(f"wrote {destination}")
    else:
        emit(text.rstrip("\n"))
    return 0
