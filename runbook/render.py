"""`render`: the migration runbook as Markdown, every value filled in from the stack outputs.

Values the outputs do not hold yet (a preview, or secrets without --show-secrets) appear as
`<key: not available>` and the step that needs them says so, instead of silently printing a
placeholder an operator might paste.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook.canary import (
    MAX_CPU_PERCENT,
    MAX_ERROR_RATE_PERCENT,
    MAX_MEMORY_PERCENT,
    MAX_P95_MS,
    STEP_MINUTES,
    deploy_command,
)
from runbook.outputs import Outputs
from runbook.rollback import TARGET_SECONDS
from runbook.tables import CANARY_STEPS, SCHEMA, TABLES

DMS_KEYS = ("dmsReplicationTaskArn", "dmsReplicationInstanceArn", "dmsSourceEndpointArn", "dmsTargetEndpointArn", "dmsTables")


@dataclass
class Section:
    """One runbook step: its body, and the outputs it needs (checked for availability)."""

    title: str
    needs: tuple[str, ...]
    lines: list[str] = field(default_factory=list)

    def render(self, out: Outputs) -> list[str]:
        text = [f"## {self.title}", ""]
        missing = [(key, out.reason_unavailable(key)) for key in self.needs if not out.available(key)]
        if missing:
            text.append("> **Not available yet:** this step needs values the outputs do not hold:")
            text += [f"> - `{key}`: {reason}" for key, reason in missing]
            text.append("> Deploy first, then render again from `pulumi stack output --json --show-secrets`.")
            text.append("")
        return text + self.lines + [""]


def _dms_enabled(out: Outputs) -> bool:
    return out.values.get("dmsReplicationTaskArn") is not None


def render(out: Outputs, stack: str) -> str:
    v = out.display
    region = v("region")
    outputs_path = f"outputs-{stack}.json"
    rb = f"python -m runbook {{}} --outputs {outputs_path} --stack {stack}"
    up = f"pulumi up -s {stack} --policy-pack policy --policy-pack-config policy/config/{stack}.json"
    dsn = f"host={v('dbAddress')} port={v('dbPort')} dbname={v('dbName')} user={v('dbUsername')} sslmode=require"
    monolith_db = out.values.get("monolithDbName") if out.available("monolithDbName") else "myteacher_production"
    monolith_host = out.values.get("monolithDbHost") if out.available("monolithDbHost") else "<monolith DB host>"
    source_dsn = f"host={monolith_host} port=5432 dbname={monolith_db} user=<read-only user> sslmode=require"
    sections: list[Section] = []

    sections.append(
        Section(
            "1. Prerequisites",
            ("region", "dbSecretArn"),
            [
                f"- AWS credentials for the account of this stack, region `{region}` (`aws sts get-caller-identity`).",
                f"- Pulumi CLI logged in to the backend that holds stack `{stack}`; this repository checked out, `make test` green.",
                "- `psql` (PostgreSQL client) on a host inside the VPC: the database only accepts the ECS service and DMS.",
                "- A verified backup of the monolith database (`pg_dump`, restored once somewhere) before anything moves.",
                f"- The outputs file: `pulumi stack output --json --show-secrets -s {stack} > {outputs_path}`.",
                f"- The DB password, never written to a file: `export PGPASSWORD=$(aws secretsmanager get-secret-value "
                f"--secret-id {v('dbSecretArn')} --region {region} --query SecretString --output text | jq -r .password)`",
            ],
        )
    )
    sections.append(
        Section(
            "2. Deploy",
            ("stack",),
            [
                "Start with no traffic on the service, under the policy pack:",
                "```sh",
                f"pulumi config set canaryWeight 0 -s {stack}",
                up,
                f"pulumi stack output --json --show-secrets -s {stack} > {outputs_path}",
                "```",
            ],
        )
    )
    sections.append(
        Section(
            "3. Apply the schema",
            ("dbAddress", "dbPort", "dbName", "dbUsername"),
            [
                f"Six tables ({', '.join(TABLES)}), 13 indexes, 2 `updated_at` triggers; idempotent.",
                "```sh",
                f"python -m runbook schema apply --dsn \"{dsn}\"  # PGPASSWORD from step 1",
                f"# or by hand: psql \"{dsn}\" -v ON_ERROR_STOP=1 -f schema/task_service.sql",
                f"psql \"{dsn}\" -c 'SELECT version();'",
                "```",
                "Expected: `6 tables (expected 6), 13 indexes (expected 13), 2 triggers (expected 2)`.",
            ],
        )
    )
    if _dms_enabled(out):
        dms_lines = [
            f"Replication task `{v('dmsReplicationTaskArn')}` (full load + CDC) copies {v('dmsTables')}.",
            "```sh",
            rb.format("dms start"),
            rb.format("dms status"),
            "```",
            "`dms start` uses `start-replication` the first time and `resume-processing` after a stop.",
            "Go on when the full load is at 100% and no table is errored.",
        ]
    else:
        dms_lines = ["DMS is disabled in this stack (no `dmsReplicationTaskArn`): skip this step."]
    sections.append(Section("4. Start DMS and watch it", DMS_KEYS if _dms_enabled(out) else (), dms_lines))
    sections.append(
        Section(
            "5. Verify the deployment",
            ("clusterName", "serviceName", "dbInstanceId", "listenerRuleArn", "alarmNames"),
            [
                "```sh",
                rb.format("verify"),
                "```",
                f"Checks: ECS `{v('clusterName')}/{v('serviceName')}` desired == running; RDS `{v('dbInstanceId')}` "
                "available, Multi-AZ, encrypted, backups >= 7 days, engine 16, Performance Insights; autoscaling "
                f"{v('autoscalingMin')}-{v('autoscalingMax')}; service targets healthy; listener rule priority "
                f"{v('listenerRulePriority')} with the configured weights; alarms ({v('alarmNames')}) exist and none is in "
                "ALARM; both secrets readable; both IAM roles exist; DMS task status. Exit 1 means stop here.",
            ],
        )
    )
    canary = [
        f"Each step holds {STEP_MINUTES} minutes. Move on only when `canary status` says ALLOWED: error rate < "
        f"{MAX_ERROR_RATE_PERCENT:g}%, p95 < {MAX_P95_MS:g} ms, CPU < {MAX_CPU_PERCENT:g}%, memory < "
        f"{MAX_MEMORY_PERCENT:g}%, targets healthy, no alarm in ALARM. Currently configured: {v('canaryWeight')}%.",
        f"Dashboard: {v('dashboardUrl')}",
        "",
        "| step | service weight | check, then change |",
        "|---|---|---|",
    ]
    for index, weight in enumerate(CANARY_STEPS[1:], start=1):
        canary.append(f"| {index} | {CANARY_STEPS[index - 1]}% -> {weight}% | `{rb.format('canary status')}` then `{deploy_command(stack, weight)}` |")
    canary.append("")
    canary.append(f"Listener rule `{v('listenerRuleArn')}` forwards to monolith `{v('monolithTargetGroupArn')}` "
                  f"(100 - w) and service `{v('targetGroupArn')}` (w). Weights change only through the config above.")
    sections.append(Section("6. Canary: 0 -> 5 -> 25 -> 50 -> 100", ("listenerRuleArn", "targetGroupArn", "monolithTargetGroupArn", "dashboardUrl"), canary))
    sections.append(
        Section(
            "7. Integrity check",
            ("dbAddress", "dbPort", "dbName", "dbUsername"),
            [
                "Run it when DMS reports no latency (after the full load, and again at the end). Row counts and an MD5 "
                "over rows in primary-key order, each side in one read-only REPEATABLE READ snapshot:",
                "```sh",
                f"python -m runbook integrity --source \"{source_dsn}\" --target \"{dsn}\"",
                "```",
                "Exit 1 lists each differing table with a few primary keys. Any difference: roll back (step 8), restore "
                "the target from backup and redo from step 3.",
            ],
        )
    )
    manual = (
        f"aws elbv2 modify-rule --region {region} --rule-arn {v('listenerRuleArn')} --actions "
        f"'[{{\"Type\":\"forward\",\"ForwardConfig\":{{\"TargetGroups\":[{{\"TargetGroupArn\":\"{v('monolithTargetGroupArn')}\",\"Weight\":100}},"
        f"{{\"TargetGroupArn\":\"{v('targetGroupArn')}\",\"Weight\":0}}]}}}}]'"
    )
    sections.append(
        Section(
            f"8. Rollback (target: under {TARGET_SECONDS // 60} minutes)",
            ("listenerRuleArn", "targetGroupArn", "monolithTargetGroupArn", "clusterName", "serviceName"),
            [
                "Routes 100% back to the monolith at once (both groups stay on the rule), optionally scales the service to 0, "
                "and reports how long it took:",
                "```sh",
                f"{rb.format('rollback')} --dry-run",
                f"{rb.format('rollback')} --yes [--scale-to-zero]",
                "```",
                "Then make the stack agree, or the next `pulumi up` undoes the rollback:",
                "```sh",
                f"pulumi config set canaryWeight 0 -s {stack}",
                up,
                "```",
                "Without the tool (same effect):",
                "```sh",
                manual,
                "```",
                ("Migration failed (DMS): `dms stop`, drop and recreate the target schema, start again from step 3. " if _dms_enabled(out) else "")
                + "Inconsistent data: roll back, restore the target from backup, redo from step 3.",
            ],
        )
    )
    revokes = [f"REVOKE INSERT, UPDATE, DELETE ON {SCHEMA}.{table} FROM {v('monolithDbAppUser')};" for table in TABLES]
    end = (["```sh", rb.format("dms stop"), "```"] if _dms_enabled(out) else ["DMS is disabled in this stack: nothing to stop."])
    end += [
        f"Make the monolith's copies read-only (run on the monolith database `{monolith_db}` at `{monolith_host}`):",
        "```sql",
        *revokes,
        f"GRANT SELECT ON {', '.join(f'{SCHEMA}.{t}' for t in TABLES)} TO {v('monolithDbAppUser')};",
        "```",
        "Run the integrity check (step 7) a last time.",
    ]
    sections.append(Section("9. End of migration", ("monolithDbAppUser",) + (("dmsReplicationTaskArn",) if _dms_enabled(out) else ()), end))

    header = [
        f"# Task Service migration runbook: stack `{stack}`",
        "",
        f"Generated by `python -m runbook render` from {out.source}. Region `{region}`; database `{v('dbName')}` on "
        f"`{v('dbEndpoint')}` (PostgreSQL {v('dbEngineVersion')}); service `{v('clusterName')}/{v('serviceName')}`.",
        "",
    ]
    unknown = sorted(key for key, value in out.values.items() if value is not None and not out.available(key))
    if unknown:
        header += [f"> **This outputs file has values that are not available:** {', '.join(f'`{k}`' for k in unknown)}.", ""]
    body = header + [line for section in sections for line in section.render(out)]
    return "\n".join(body).rstrip("\n") + "\n"


def run(out: Outputs, stack: str, destination: str | None, emit: Callable[[str], Any] = print) -> int:
    text = render(out, stack)
    if destination:
        with open(destination, "w", encoding="utf-8") as handle:
            handle.write(text)
        emit(f"wrote {destination}")
    else:
        emit(text.rstrip("\n"))
    return 0
