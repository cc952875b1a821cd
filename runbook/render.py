"""`render`: the migration runbook as Markdown, every value filled in from the stack outputs.

The document's text lives in `templates/runbook.md.j2`; this module decides what goes into it: which
steps lack values, the DSNs and the commands. Values the outputs do not hold yet (a preview, or secrets
without --show-secrets) appear as `<name: not available>` and the step that needs them says so,
instead of silently printing a placeholder an operator might paste.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2

from runbook import canary
from runbook.integrity import dsn, replicated_tables
from runbook.output import Invocation
from runbook.outputs import Outputs
from runbook.rollback import TARGET_SECONDS
from task_service import contract
from task_service.canary import STEPS
from task_service.contract import Output
from task_service.tables import TABLES, qualified

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
        f"aws elbv2 modify-rule --region {out.display(contract.REGION)} "
        f"--rule-arn {out.display(contract.LISTENER_RULE_ARN)} --actions '{actions}'"
    )


def _function_log_group(out: Outputs, function: Output) -> str:
    """Where a rotation function logs (`/aws/lambda/<name>`), from its ARN; the placeholder when unknown."""
    if not out.available(function):
        return out.display(function)
    return f"/aws/lambda/{out.string(function).rsplit(':', 1)[-1]}"


def render(out: Outputs, stack: str, region: str | None = None) -> str:
    values = SimpleNamespace(**{name: out.display(output) for name, output in vars(contract).items() if isinstance(output, Output)})
    outputs_path = f"outputs-{stack}.json"
    invocation = Invocation(outputs_path, stack, region)
    text = _ENVIRONMENT.get_template(TEMPLATE).render(
        c=contract,
        v=values,
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
        dsn=dsn(values.DB_ADDRESS, values.DB_PORT, values.DB_NAME, values.DB_USERNAME),
        source_dsn=dsn(values.MONOLITH_DB_HOST, "5432", values.MONOLITH_DB_NAME, "<read-only user>"),
        missing=_missing(out),
        unavailable=sorted(output.name for output in contract.CONTRACT if out.present(output) and not out.available(output)),
    )
    return text.rstrip("\n") + "\n"


def run(out: Outputs, stack: str, destination: str | None, region: str | None = None, emit: Callable[[str], Any] = print) -> int:
    text = render(out, stack, region)
    if destination:
        with open(destination, "w", encoding="utf-8") as handle:
            handle.write(text)
        emit(f"wrote {destination}")
    else:
        emit(text.rstrip("\n"))
    return 0
