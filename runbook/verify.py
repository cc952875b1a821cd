"""`verify`: the post-deploy checks of seed 000 step 10, read live with boto3, as a pass/fail table.

A check that AWS refuses (missing resource, access denied) is a FAIL row, not a crash; a check the
API does not answer (e.g. Performance Insights absent from DescribeDBInstances) is N/A with the
reason, so it is confirmed by hand instead of silently passing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from botocore.exceptions import ClientError

from runbook.alb import read_rule
from runbook.aws import Aws, error_text, is_auth_error
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.output import Report
from runbook.outputs import Outputs
from runbook.pack import health_gate
from runbook.report import CHECK_COLUMNS, Check, Status, counts, records, summary
from runbook.rotation import NEEDS as ROTATION_NEEDS, rotation_checks
from task_service import contract

BACKUP_RETENTION_DAYS = 7
ENGINE_MAJOR = "16"
DMS_HEALTHY = {"ready", "starting", "running", "stopped"}


def ecs_checks(out: Outputs, aws: Aws) -> list[Check]:
    cluster, service = out.string(contract.CLUSTER_NAME), out.string(contract.SERVICE_NAME)
    found = aws.client("ecs").describe_services(cluster=cluster, services=[service]).get("services", [])
    if not found:
        return [Check.verdict("ecs desired == running", False, f"service {service} not found in {cluster}")]
    svc = found[0]
    desired, running = svc.get("desiredCount", 0), svc.get("runningCount", 0)
    return [
        Check.verdict("ecs service active", svc.get("status") == "ACTIVE", f"{cluster}/{service} status {svc.get('status')}"),
        Check.verdict("ecs desired == running", desired == running and desired > 0, f"desired {desired}, running {running}"),
    ]


def rds_checks(out: Outputs, aws: Aws) -> list[Check]:
    instance_id = out.string(contract.DB_INSTANCE_ID)
    found = aws.client("rds").describe_db_instances(DBInstanceIdentifier=instance_id).get("DBInstances", [])
    if not found:
        return [Check.verdict("rds available", False, f"instance {instance_id} not found")]
    db = found[0]
    version = str(db.get("EngineVersion", ""))
    checks = [
        Check.verdict("rds available", db.get("DBInstanceStatus") == "available", f"{instance_id} status {db.get('DBInstanceStatus')}"),
        Check.verdict("rds multi-az", bool(db.get("MultiAZ")), f"MultiAZ={db.get('MultiAZ')}"),
        Check.verdict("rds encrypted", bool(db.get("StorageEncrypted")), f"StorageEncrypted={db.get('StorageEncrypted')}"),
        Check.verdict(
            "rds backup retention",
            int(db.get("BackupRetentionPeriod", 0)) >= BACKUP_RETENTION_DAYS,
            f"{db.get('BackupRetentionPeriod')} days (need >= {BACKUP_RETENTION_DAYS})",
        ),
        Check.verdict(
            "rds engine 16",
            db.get("Engine") == "postgres" and version.split(".")[0] == ENGINE_MAJOR,
            f"{db.get('Engine')} {version}",
        ),
    ]
    if "PerformanceInsightsEnabled" in db:
        enabled = bool(db["PerformanceInsightsEnabled"])
        checks.append(Check.verdict("rds performance insights", enabled, f"enabled={enabled}, retention {db.get('PerformanceInsightsRetentionPeriod')} days"))
    else:
        checks.append(Check("rds performance insights", Status.NA, "DescribeDBInstances did not report PerformanceInsightsEnabled"))
    return checks


def autoscaling_checks(out: Outputs, aws: Aws) -> list[Check]:
    resource = f"service/{out.string(contract.CLUSTER_NAME)}/{out.string(contract.SERVICE_NAME)}"
    want_min, want_max = out.integer(contract.AUTOSCALING_MIN), out.integer(contract.AUTOSCALING_MAX)
    targets = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource], ScalableDimension="ecs:service:DesiredCount"
    ).get("ScalableTargets", [])
    if not targets:
        return [Check.verdict("autoscaling min/max", False, f"no scalable target for {resource}")]
    got_min, got_max = targets[0]["MinCapacity"], targets[0]["MaxCapacity"]
    return [
        Check.verdict(
            "autoscaling min/max",
            (got_min, got_max) == (want_min, want_max),
            f"min {got_min} max {got_max} (outputs: min {want_min} max {want_max})",
        )
    ]


def target_health_checks(out: Outputs, aws: Aws) -> list[Check]:
    descriptions = aws.client("elbv2").describe_target_health(TargetGroupArn=out.string(contract.TARGET_GROUP_ARN)).get(
        "TargetHealthDescriptions", []
    )
    states = [d.get("TargetHealth", {}).get("State", "unknown") for d in descriptions]
    healthy = states.count("healthy")
    detail = f"{healthy}/{len(states)} healthy" + (f" ({', '.join(sorted(set(states)))})" if states else ", no targets registered")
    return [Check.verdict("service targets healthy", healthy > 0 and healthy == len(states), detail)]


def listener_rule_checks(out: Outputs, aws: Aws) -> list[Check]:
    rule = read_rule(aws.client("elbv2"), out.string(contract.LISTENER_RULE_ARN))
    want_priority = out.integer(contract.LISTENER_RULE_PRIORITY)
    weight = out.integer(contract.CANARY_WEIGHT)
    monolith, service = out.string(contract.MONOLITH_TARGET_GROUP_ARN), out.string(contract.TARGET_GROUP_ARN)
    live = (rule.weight(monolith), rule.weight(service))
    both = monolith in rule.weights and service in rule.weights
    return [
        Check.verdict("listener rule priority", rule.priority == str(want_priority), f"priority {rule.priority} (outputs: {want_priority})"),
        Check.verdict(
            "listener rule weights",
            both and live == (100 - weight, weight),
            f"monolith {live[0]} / service {live[1]} (outputs: {100 - weight} / {weight})"
            + ("" if both else "; a target group is missing from the rule"),
        ),
    ]


def alarm_checks(out: Outputs, aws: Aws) -> list[Check]:
    """The stack's own alarms, by the exact names it exports: another stack's alarms are not this one's business."""
    expected = out.strings(contract.ALARM_NAMES)
    cloudwatch = aws.client("cloudwatch")
    found: dict[str, str] = {}
    for names in health_gate.alarm_name_batches(expected):
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=names):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                found[alarm.get("AlarmName", "")] = alarm.get("StateValue", "")
    missing = [name for name in expected if name not in found]
    in_alarm = sorted(name for name, state in found.items() if state == "ALARM")
    return [
        Check.verdict(
            "alarms exist",
            bool(expected) and not missing,
            f"{len(expected) - len(missing)}/{len(expected)} found" + (f"; missing: {', '.join(missing)}" if missing else ""),
        ),
        Check.verdict("no alarm in ALARM", not in_alarm, ", ".join(in_alarm) if in_alarm else f"{len(found)} alarms, none in ALARM"),
    ]


def secret_checks(out: Outputs, aws: Aws) -> list[Check]:
    """Secrets must be readable; values are parsed but never printed."""
    client = aws.client("secretsmanager")
    checks = []
    for output, required in (
        (contract.DB_SECRET_ARN, {"username", "password", "host", "port", "dbname"}),
        (contract.DB_APP_SECRET_ARN, {"username", "password", "host", "port", "dbname", "masterarn"}),
        (contract.COGNITO_SECRET_ARN, {"user_pool_id", "client_id"}),
    ):
        arn = out.string(output)
        try:
            value = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
            missing = sorted(required - set(value)) if isinstance(value, dict) else sorted(required)
            checks.append(Check.verdict(f"secret {output.name}", not missing, "readable" + (f"; JSON lacks {', '.join(missing)}" if missing else "")))
        except ClientError as err:
            if is_auth_error(err):
                raise
            checks.append(Check.verdict(f"secret {output.name}", False, error_text(err)))
        except (KeyError, ValueError):
            checks.append(Check.verdict(f"secret {output.name}", False, "readable but not a JSON string"))
    return checks


def role_checks(out: Outputs, aws: Aws) -> list[Check]:
    iam = aws.client("iam")
    checks = []
    for output in (contract.EXECUTION_ROLE_NAME, contract.TASK_ROLE_NAME):
        name = out.string(output)
        try:
            iam.get_role(RoleName=name)
            checks.append(Check.verdict(f"iam role {name}", True, "exists"))
        except ClientError as err:
            if is_auth_error(err):
                raise
            checks.append(Check.verdict(f"iam role {name}", False, error_text(err)))
    return checks


def dms_checks(out: Outputs, aws: Aws) -> list[Check]:
    if not out.dms_enabled:
        return [Check("dms task", Status.NA, "DMS is disabled in this stack")]
    arn = out.string(contract.DMS_REPLICATION_TASK_ARN)
    tasks = aws.client("dms").describe_replication_tasks(Filters=[{"Name": "replication-task-arn", "Values": [arn]}]).get(
        "ReplicationTasks", []
    )
    if not tasks:
        return [Check.verdict("dms task", False, f"replication task {arn} not found")]
    status = tasks[0].get("Status")
    failure = tasks[0].get("LastFailureMessage")
    return [Check.verdict("dms task", status in DMS_HEALTHY and not failure, f"status {status}" + (f"; last failure: {failure}" if failure else ""))]


GROUPS: list[tuple[str, Callable[[Outputs, Aws], list[Check]]]] = [
    ("ecs", ecs_checks),
    ("rds", rds_checks),
    ("autoscaling", autoscaling_checks),
    ("target health", target_health_checks),
    ("listener rule", listener_rule_checks),
    ("alarms", alarm_checks),
    ("secrets", secret_checks),
    ("rotation", rotation_checks),
    ("iam", role_checks),
    ("dms", dms_checks),
]


def collect(out: Outputs, aws: Aws) -> list[Check]:
    """Run every group; one group's AWS error becomes its FAIL row and the rest still run."""
    checks: list[Check] = []
    for name, group in GROUPS:
        try:
            checks.extend(group(out, aws))
        except ClientError as err:
            if is_auth_error(err):
                raise BadInput(f"AWS rejected the credentials: {error_text(err)}") from None
            checks.append(Check(name, Status.FAIL, error_text(err)))
        except BadInput as err:
            checks.append(Check(name, Status.FAIL, str(err)))
    return checks


NEEDS = (
    contract.CLUSTER_NAME,
    contract.SERVICE_NAME,
    contract.DB_INSTANCE_ID,
    contract.AUTOSCALING_MIN,
    contract.AUTOSCALING_MAX,
    contract.TARGET_GROUP_ARN,
    contract.MONOLITH_TARGET_GROUP_ARN,
    contract.LISTENER_RULE_ARN,
    contract.LISTENER_RULE_PRIORITY,
    contract.CANARY_WEIGHT,
    contract.ALARM_NAMES,
    contract.DB_SECRET_ARN,
    contract.DB_APP_SECRET_ARN,
    contract.COGNITO_SECRET_ARN,
    *ROTATION_NEEDS,
    contract.EXECUTION_ROLE_NAME,
    contract.TASK_ROLE_NAME,
    contract.DMS_REPLICATION_TASK_ARN,
)


def run(out: Outputs, aws: Aws) -> Report:
    out.require(*NEEDS)
    checks = collect(out, aws)
    report = Report(EXIT_FAILED if any(c.status is Status.FAIL for c in checks) else EXIT_OK)
    report.table("checks", CHECK_COLUMNS, records(checks))
    report.say(summary(checks), **counts(checks))
    return report
