"""Backups: RDS retention within bounds, and the guards that keep a deletion from losing the data (instances and
clusters alike: Aurora and Multi-AZ DB clusters keep backups and deletion guards on the cluster)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pulumi_policy import ResourceValidationArgs, Severity

from .common import RDS_CLUSTER, RDS_INSTANCE, as_bool, as_number, fmt_number, is_set, resource_policy

Report = Callable[[str], None]

# RDS refuses anything above 35 days of automated backups.
_AWS_MAX_RETENTION = 35


def _check_retention(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    raw = args.props.get("backupRetentionPeriod")
    days = as_number(raw)
    minimum = float(cfg["minimumRetentionDays"])
    maximum = float(cfg["maximumRetentionDays"])
    if days is None:
        report("backupRetentionPeriod is not set explicitly; the engine default (1 day for the API, 7 for the "
               "console) is not a decision anyone made.")
    elif days < minimum:
        report(f"backupRetentionPeriod is {fmt_number(days)} days; at least {fmt_number(minimum)} is required.")
    elif days > maximum:
        report(f"backupRetentionPeriod is {fmt_number(days)} days; at most {fmt_number(maximum)} is allowed.")


def _check_deletion(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if cfg["requireDeletionProtection"] and as_bool(props.get("deletionProtection")) is not True:
        report("deletionProtection is not true.")
    if cfg["requireFinalSnapshot"]:
        if as_bool(props.get("skipFinalSnapshot")) is not False:
            report("skipFinalSnapshot is not false, so deleting the instance drops its data without a snapshot.")
        elif not is_set(props, "finalSnapshotIdentifier"):
            report("finalSnapshotIdentifier is not set, which RDS needs to take the final snapshot.")
    if cfg["requireCopyTagsToSnapshot"] and as_bool(props.get("copyTagsToSnapshot")) is not True:
        report("copyTagsToSnapshot is not true, so snapshots lose the ownership and cost tags.")


rds_backup_retention = resource_policy(
    name="rds-backup-retention",
    area="backups",
    description="RDS automated backups are explicitly kept for at least the configured minimum (and at most 35 days).",
    resource_types=[RDS_INSTANCE, RDS_CLUSTER],
    check=_check_retention,
    remediation="set backupRetentionPeriod between the minimum (default 7) and 35.",
    severity=Severity.HIGH,
    config={
        "minimumRetentionDays": {
            "type": "integer", "minimum": 1, "maximum": _AWS_MAX_RETENTION, "default": 7,
            "description": "Fewest days of automated backups accepted.",
        },
        "maximumRetentionDays": {
            "type": "integer", "minimum": 1, "maximum": _AWS_MAX_RETENTION, "default": _AWS_MAX_RETENTION,
            "description": "Most days of automated backups accepted (RDS allows 35).",
        },
    },
)

rds_deletion_safeguards = resource_policy(
    name="rds-deletion-safeguards",
    area="backups",
    description="RDS instances and clusters are protected from deletion, take a final snapshot and copy tags to snapshots.",
    resource_types=[RDS_INSTANCE, RDS_CLUSTER],
    check=_check_deletion,
    remediation="set deletionProtection=True, skipFinalSnapshot=False with a finalSnapshotIdentifier, and "
                "copyTagsToSnapshot=True (a stack may relax the first two in config).",
    severity=Severity.HIGH,
    config={
        "requireDeletionProtection": {
            "type": "boolean", "default": True, "description": "Require deletionProtection=true.",
        },
        "requireFinalSnapshot": {
            "type": "boolean", "default": True,
            "description": "Require skipFinalSnapshot=false and a finalSnapshotIdentifier.",
        },
        "requireCopyTagsToSnapshot": {
            "type": "boolean", "default": True, "description": "Require copyTagsToSnapshot=true.",
        },
    },
)

POLICIES = [rds_backup_retention, rds_deletion_safeguards]
