"""`backup --restore-test`: prove the monolith's snapshot restores, then delete what the proof created.

The snapshot is restored into a temporary instance (an Aurora snapshot into a temporary cluster with one instance)
in the source's own subnet group and security groups, single-AZ, without deletion protection. Once it is
`available` the command connects with `--restore-dsn` (user, and anything else libpq takes; host and port default
to the restored endpoint, dbname to the monolith's; the password comes from PGPASSWORD and is never printed) and
counts the rows of the migrated tables in one read-only transaction. Whatever happens, including Ctrl-C, the
temporary instance and cluster are deleted at the end (without a final snapshot); when AWS refuses, the command
prints the call to make by hand and fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runbook.aws import error_code, error_text
from runbook.snapshots import CLUSTER, MANAGED_BY, STAMP_FORMAT, Snapshot, Source, Wait, iso
from runbook.db import connect, reason_without
from runbook.errors import BadInput
from runbook.waiting import WaitFailed, WaitTimedOut, wait_for
from task_service.naming import Naming, Role
from task_service.tables import SCHEMA


@dataclass(frozen=True)
class RestoreOptions:
    dsn: str
    dbname: str
    tables: Sequence[str]
    """Bare names of tables in the migrated schema (`task_service.tables.SCHEMA`) to count."""
    instance_class: str | None = None


@dataclass(frozen=True)
class Temporary:
    """What the restore created: an instance, and for Aurora the cluster around it."""

    instance: str
    cluster: str | None


def _restore(rds: Any, naming: Naming, source: Source, snapshot: Snapshot, options: RestoreOptions) -> Temporary:
    stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
    name = naming.of(Role.RESTORE_TEST_INSTANCE, stamp=stamp)
    placement: dict[str, Any] = {"Tags": [{"Key": "ManagedBy", "Value": MANAGED_BY}, {"Key": "Purpose", "Value": "restore test"}]}
    if source.subnet_group:
        placement["DBSubnetGroupName"] = source.subnet_group
    if source.security_groups:
        placement["VpcSecurityGroupIds"] = list(source.security_groups)
    instance_class = options.instance_class or source.instance_class
    if source.api is CLUSTER:
        rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=name, SnapshotIdentifier=snapshot.snapshotId, Engine=source.engine, DeletionProtection=False, **placement
        )
        instance = naming.of(Role.RESTORE_TEST_INSTANCE, stamp=f"{stamp}-writer")
        rds.create_db_instance(
            DBInstanceIdentifier=instance, DBInstanceClass=instance_class, Engine=source.engine, DBClusterIdentifier=name,
            Tags=placement["Tags"],
        )
        return Temporary(instance, name)
    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=name, DBSnapshotIdentifier=snapshot.snapshotId, DBInstanceClass=instance_class,
        MultiAZ=False, PubliclyAccessible=False, DeletionProtection=False, **placement,
    )
    return Temporary(name, None)


def _endpoint(rds: Any, temporary: Temporary, wait: Wait, emit: Callable[[str], Any]) -> tuple[str, int]:
    """Wait until the restored instance is available; its endpoint (the cluster's for Aurora)."""
    described: dict[str, Any] = {}

    def poll() -> tuple[bool, str]:
        described.update(rds.describe_db_instances(DBInstanceIdentifier=temporary.instance)["DBInstances"][0])
        status = str(described.get("DBInstanceStatus"))
        if status in {"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network", "storage-full"}:
            raise WaitFailed(f"restored instance {temporary.instance} is '{status}'")
        return status == "available", status

    wait_for(f"restored instance {temporary.instance}", poll, timeout_seconds=wait.minutes * 60, poll_seconds=wait.poll_seconds, emit=emit)
    if temporary.cluster:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=temporary.cluster)["DBClusters"][0]
        return str(cluster["Endpoint"]), int(cluster.get("Port", 5432))
    endpoint = described["Endpoint"]
    return str(endpoint["Address"]), int(endpoint.get("Port", 5432))


def count_rows(dsn: str, tables: Sequence[str]) -> dict[str, int]:
    """Row counts (`schema.table` -> rows) in one read-only snapshot; BadInput on a missing table or a failed query."""
    with connect(dsn, "restored", read_only=True) as conn:
        try:
            counts = {}
            for table in tables:
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(table))
                row = conn.execute(query).fetchone()
                counts[f"{SCHEMA}.{table}"] = int(row[0]) if row else 0
            return counts
        except psycopg.Error as err:
            raise BadInput(f"counting rows in the restored copy failed: {reason_without(err, dsn)}") from None


def _gone(rds: Any, instance: str) -> tuple[bool, str]:
    try:
        status = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0].get("DBInstanceStatus")
    except ClientError as err:
        if error_code(err) == "DBInstanceNotFound":
            return True, "deleted"
        raise
    return False, str(status)


def _delete(rds: Any, temporary: Temporary, wait: Wait, emit: Callable[[str], Any]) -> str | None:
    """Delete the temporary instance (then its cluster); None when AWS accepted, else what to run by hand."""
    kind, identifier = "instance", temporary.instance
    try:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
        emit(f"deleting the temporary instance {identifier}")
        if temporary.cluster:
            # A cluster is deleted only once its last instance is gone.
            wait_for(f"deletion of {identifier}", lambda: _gone(rds, identifier), timeout_seconds=wait.minutes * 60,
                     poll_seconds=wait.poll_seconds, emit=emit)
            kind, identifier = "cluster", temporary.cluster
            rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
            emit(f"deleting the temporary cluster {identifier}")
    except (ClientError, BotoCoreError, WaitTimedOut) as err:
        return f"{error_text(err)}; delete it by hand: aws rds delete-db-{kind} --db-{kind}-identifier {identifier} --skip-final-snapshot"
    return None


def run(
    rds: Any, naming: Naming, source: Source, snapshot: Snapshot, options: RestoreOptions, wait: Wait, emit: Callable[[str], Any]
) -> dict[str, Any]:
    """Restore, count, delete; the `restoreTest` entry of the record (`passed` false with the reason on failure)."""
    result: dict[str, Any] = {"passed": False, "at": iso(datetime.now(timezone.utc))}
    temporary = _restore(rds, naming, source, snapshot, options)
    result["instance"] = temporary.cluster or temporary.instance
    emit(f"restoring {snapshot.snapshotId} into {result['instance']} (deleted again at the end)")
    try:
        host, port = _endpoint(rds, temporary, wait, emit)
        given = conninfo_to_dict(options.dsn)
        dsn = make_conninfo(**{"host": host, "port": str(port), "dbname": options.dbname, **{k: str(v) for k, v in given.items()}})
        result["rows"] = count_rows(dsn, options.tables)
        result["passed"] = True
        emit("restored copy: " + ", ".join(f"{table} {count} rows" for table, count in result["rows"].items()))
    except (WaitTimedOut, WaitFailed, BadInput, ClientError) as err:
        result["detail"] = error_text(err)
    finally:
        problem = _delete(rds, temporary, wait, emit)
        if problem:
            result["passed"], result["detail"] = False, (result.get("detail", "") + " " + problem).strip()
    return result
