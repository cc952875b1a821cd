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
from psycopg.conninfo import make_conninfo

from runbook import canary
from runbook.integrity import replicated_tables
from runbook.outputs import Outputs
from runbook.rollback import TARGET_SECONDS
from task_service import contract
from task_service.canary import STEPS
from task_service.contract import Output
from task_service.tables import SCHEMA, TABLES

TEMPLATE = "runbook.md.j2"
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

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
    "dms": DMS_OUTPUTS,
    "verify": (
        contract.CLUSTER_NAME,
        contract.SERVICE_NAME,
        contract.DB_INSTANCE_ID,
        contract.LISTENER_RULE_ARN,
        contract.ALARM_NAMES,
        contract.SECRET_ROTATION_DAYS,
    ),
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
        relevant = [output for output in needs if out.dms_enabled or not output.dms]
        missing[step] = [(output.name, reason) for output in relevant if (reason := out.reason_unavailable(output))]
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


def _function_log_group(out: Outputs, function: Output) -> str:
    """Where a rotation function logs (`/aws/lambda/<name>`), from its ARN; the placeholder when unknown."""
    if not out.available(function):
        return out.display(function)
    return f"/aws/lambda/{out.string(function).rsplit(':', 1)[-1]}"


def _dsn(out: Outputs, host: Output, dbname: Output, user: Output | str, port: Output | str = "5432") -> str:
    """A shell-quoted libpq DSN of outputs; an unavailable one shows as `<name>` (a literal `str` is used as is)."""

    def part(value: Output | str) -> str:
        if isinstance(value, str):
            return value
        return out.display(value) if out.available(value) else f"<{value.name}>"

    return shlex.quote(make_conninfo(host=part(host), port=part(port), dbname=part(dbname), user=part(user), sslmode="require"))


def _read_only_sql(out: Outputs) -> list[str]:
    """End of migration: revoke the monolith's writes on the replicated tables, keep its reads (identifiers quoted)."""
    user = sql.Identifier(out.display(contract.MONOLITH_DB_APP_USER))
    tables = [sql.Identifier(SCHEMA, name) for name in replicated_tables(out)]
    statements = [sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {};").format(table, user) for table in tables]
    statements.append(sql.SQL("GRANT SELECT ON {} TO {};").format(sql.SQL(", ").join(tables), user))
    return [statement.as_string(None) for statement in statements]


def render(out: Outputs, stack: str) -> str:
    outputs = {name: output for name, output in vars(contract).items() if isinstance(output, Output)}
    values = SimpleNamespace(**{name: out.display(output) for name, output in outputs.items()})
    quoted = SimpleNamespace(**{name: shlex.quote(out.display(output)) for name, output in outputs.items()})
    outputs_path = f"outputs-{stack}.json"
    text = _ENVIRONMENT.get_template(TEMPLATE).render(
        c=contract,
        v=values,
        sh=quoted,
        stack=stack,
        source=out.source,
        outputs_path=outputs_path,
        runbook=lambda command: f"python -m runbook {command} --outputs {outputs_path} --stack {stack}",
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
        read_only_sql=_read_only_sql(out),
        dsn=_dsn(out, contract.DB_ADDRESS, contract.DB_NAME, contract.DB_USERNAME, contract.DB_PORT),
        source_dsn=_dsn(out, contract.MONOLITH_DB_HOST, contract.MONOLITH_DB_NAME, "<read-only-user>"),
        missing=_missing(out),
        unavailable=sorted(output.name for output in contract.CONTRACT if out.present(output) and not out.available(output)),
    )
    return text.rstrip("\n") + "\n"


def run(out: Outputs, stack: str, destination: str | None, emit: Callable[[str], Any] = print) -> int:
    text = render(out, stack)
    if destination:
        with open(destination, "w", encoding="utf-8") as handle:
            handle.write(text)
        emit(f"wrote {destination}")
    else:
        emit(text.rstrip("\n"))
    return 0
