"""RDS snapshots of a DB instance or an Aurora cluster: find the database, find or take a snapshot, await it, check it.

Instance and cluster snapshots differ only in call and field names (`SnapshotApi`), so every step is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from runbook.aws import error_code
from runbook.errors import BadInput
from runbook.report import Check
from runbook.waiting import WaitFailed, wait_for
from task_service import contract
from task_service.naming import Naming, Role

MONOLITH, TASK_SERVICE = "monolith", "task-service"
IN_PROGRESS = {"creating", "copying", "pending"}
MANAGED_BY = "task-service-runbook"


@dataclass(frozen=True)
class SnapshotApi:
    """The RDS calls and fields of one kind of snapshot: a DB instance's, or an Aurora cluster's."""

    kind: str
    describe: str
    listed: str
    snapshot_id: str
    source_id: str
    create: str
    created: str
    arn: str
    encrypted: str


INSTANCE = SnapshotApi(
    "instance", "describe_db_snapshots", "DBSnapshots", "DBSnapshotIdentifier", "DBInstanceIdentifier",
    "create_db_snapshot", "DBSnapshot", "DBSnapshotArn", "Encrypted",
)
CLUSTER = SnapshotApi(
    "cluster", "describe_db_cluster_snapshots", "DBClusterSnapshots", "DBClusterSnapshotIdentifier", "DBClusterIdentifier",
    "create_db_cluster_snapshot", "DBClusterSnapshot", "DBClusterSnapshotArn", "StorageEncrypted",
)


UNENCRYPTED_REMEDY = {
    "instance": "copy it encrypted with `aws rds copy-db-snapshot --kms-key-id <key>`; the next run reuses that copy",
    "cluster": "a cluster snapshot cannot be encrypted by copying: restore it with `--kms-key-id` into a new cluster and back that up",
}
"""RDS encrypts an instance snapshot's copy when given a key; for an Aurora cluster snapshot the copy call refuses a key."""


@dataclass(frozen=True)
class Source:
    """A database to back up, as RDS describes it."""

    role: str
    api: SnapshotApi
    identifier: str
    engine: str
    engine_version: str
    allocated_storage: int
    instance_class: str
    subnet_group: str | None
    security_groups: tuple[str, ...]


@dataclass
class Snapshot:
    """One snapshot of a source: what the record keeps."""

    source: str
    kind: str
    sourceId: str
    snapshotId: str
    snapshotArn: str
    createdAt: str
    engine: str
    engineVersion: str
    allocatedStorageGb: int
    encrypted: bool
    reused: bool
    restoreTest: dict[str, Any] | None = None


@dataclass(frozen=True)
class Wait:
    """How long to wait for RDS, and how often to look."""

    minutes: float = 60.0
    poll_seconds: float = 15.0


def _source(role: str, api: SnapshotApi, described: dict[str, Any]) -> Source:
    subnet_group = described.get("DBSubnetGroup")  # a name for a cluster, a description for an instance
    if isinstance(subnet_group, dict):
        subnet_group = subnet_group.get("DBSubnetGroupName")
    groups = tuple(g["VpcSecurityGroupId"] for g in described.get("VpcSecurityGroups", []))
    return Source(
        role=role,
        api=api,
        identifier=str(described[api.source_id]),
        engine=str(described.get("Engine", "")),
        engine_version=str(described.get("EngineVersion", "")),
        allocated_storage=int(described.get("AllocatedStorage", 0)),
        instance_class=str(described.get("DBInstanceClass", "")),
        subnet_group=subnet_group if isinstance(subnet_group, str) else None,
        security_groups=groups,
    )


def _cluster(rds: Any, role: str, identifier: str) -> Source:
    cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m.get("IsClusterWriter")]
    if members:
        writer = rds.describe_db_instances(DBInstanceIdentifier=members[0])["DBInstances"][0]
        cluster = {**cluster, "DBInstanceClass": writer.get("DBInstanceClass", "")}
    return _source(role, CLUSTER, cluster)


def by_id(rds: Any, role: str, identifier: str) -> Source:
    """An instance id (an Aurora member means its cluster), else a cluster id."""
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except ClientError as err:
        if error_code(err) != "DBInstanceNotFound":
            raise
    else:
        cluster = instance.get("DBClusterIdentifier")
        return _cluster(rds, role, cluster) if cluster else _source(role, INSTANCE, instance)
    try:
        return _cluster(rds, role, identifier)
    except ClientError as err:
        if error_code(err) != "DBClusterNotFoundFault":
            raise
    raise BadInput(f"no RDS DB instance or Aurora cluster is called {identifier!r} in this region.")


def instance_at(rds: Any, host: str) -> dict[str, Any] | None:
    """The DB instance whose endpoint address is `host`, if any."""
    for page in rds.get_paginator("describe_db_instances").paginate():
        for instance in page["DBInstances"]:
            if (instance.get("Endpoint") or {}).get("Address") == host:
                found: dict[str, Any] = instance
                return found
    return None


def by_host(rds: Any, role: str, host: str) -> Source:
    """The instance whose endpoint is `host`, or the cluster whose writer or reader endpoint it is."""
    instance = instance_at(rds, host)
    if instance is not None:
        cluster = instance.get("DBClusterIdentifier")
        return _cluster(rds, role, cluster) if cluster else _source(role, INSTANCE, instance)
    for page in rds.get_paginator("describe_db_clusters").paginate():
        for cluster in page["DBClusters"]:
            if host in (cluster.get("Endpoint"), cluster.get("ReaderEndpoint")):
                return _cluster(rds, role, cluster["DBClusterIdentifier"])
    raise BadInput(
        f"no RDS DB instance or Aurora cluster in this region answers at {host} (stack output "
        f"'{contract.MONOLITH_DB_HOST.name}'); pass --monolith-db with its instance or cluster identifier."
    )


def describe(rds: Any, api: SnapshotApi, **filters: Any) -> list[dict[str, Any]]:
    pages = rds.get_paginator(api.describe).paginate(**filters)
    return [snapshot for page in pages for snapshot in page[api.listed]]


def recent(rds: Any, source: Source, max_age: timedelta, now: datetime) -> dict[str, Any] | None:
    """The newest manual snapshot of `source` younger than `max_age` that is, or is becoming, available; an
    encrypted one first (the encrypted copy of an unencrypted database's snapshot)."""
    usable = []
    for snapshot in describe(rds, source.api, **{source.api.source_id: source.identifier, "SnapshotType": "manual"}):
        created = snapshot.get("SnapshotCreateTime")
        status = snapshot.get("Status")
        fresh = created is None or now - created <= max_age
        if fresh and (status == "available" or status in IN_PROGRESS):
            usable.append(snapshot)
    return max(usable, key=lambda s: (bool(s.get(source.api.encrypted)), s.get("SnapshotCreateTime") or now), default=None)


def new_id(naming: Naming, source: Source, now: datetime) -> str:
    """Named from the stack's naming, with the source and the UTC time (RDS wants lower case)."""
    return naming.of(Role.BACKUP_SNAPSHOT, source=source.role, stamp=now.strftime(STAMP_FORMAT))


def create(rds: Any, source: Source, identifier: str, stack: str) -> dict[str, Any]:
    tags = [{"Key": "ManagedBy", "Value": MANAGED_BY}, {"Key": "PulumiStack", "Value": stack}, {"Key": "Purpose", "Value": "pre-migration backup"}]
    created: dict[str, Any] = getattr(rds, source.api.create)(
        **{source.api.snapshot_id: identifier, source.api.source_id: source.identifier, "Tags": tags}
    )[source.api.created]
    return created


def await_available(rds: Any, source: Source, identifier: str, wait: Wait, emit: Callable[[str], Any]) -> dict[str, Any]:
    """Poll until the snapshot is `available` (WaitTimedOut after `wait.minutes`, WaitFailed on a dead end)."""
    latest: dict[str, Any] = {}

    def poll() -> tuple[bool, str]:
        [snapshot] = describe(rds, source.api, **{source.api.snapshot_id: identifier})
        latest.update(snapshot)
        status = str(snapshot.get("Status"))
        if status != "available" and status not in IN_PROGRESS:
            raise WaitFailed(f"snapshot {identifier} is '{status}', it will not become available")
        progress = f", {snapshot['PercentProgress']}%" if "PercentProgress" in snapshot else ""
        return status == "available", f"{status}{progress}"

    wait_for(
        f"snapshot {identifier}", poll, timeout_seconds=wait.minutes * 60, poll_seconds=wait.poll_seconds, emit=emit
    )
    return latest


def verify(source: Source, snapshot: dict[str, Any]) -> list[Check]:
    """Encrypted, and the same engine, version and size as what it copies."""
    name = snapshot[source.api.snapshot_id]

    def same(what: str, key: str, expected: object) -> Check:
        got = snapshot.get(key)
        return Check.verdict(f"{name} {what}", got == expected, f"snapshot {got!r}, {source.identifier} {expected!r}")

    encrypted = bool(snapshot.get(source.api.encrypted))
    return [
        Check.verdict(
            f"{name} encrypted",
            encrypted,
            f"encrypted with {snapshot.get('KmsKeyId')}" if encrypted else
            "NOT encrypted: refused (" + UNENCRYPTED_REMEDY[source.api.kind] + ")",
        ),
        same("engine", "Engine", source.engine),
        same("engine version", "EngineVersion", source.engine_version),
        same("allocated storage (GB)", "AllocatedStorage", source.allocated_storage),
    ]


def recorded(source: Source, snapshot: dict[str, Any], reused: bool) -> Snapshot:
    created = snapshot.get("SnapshotCreateTime")
    return Snapshot(
        source=source.role,
        kind=source.api.kind,
        sourceId=source.identifier,
        snapshotId=str(snapshot[source.api.snapshot_id]),
        snapshotArn=str(snapshot.get(source.api.arn, "")),
        createdAt=iso(created) if isinstance(created, datetime) else "",
        engine=str(snapshot.get("Engine")),
        engineVersion=str(snapshot.get("EngineVersion")),
        allocatedStorageGb=int(snapshot.get("AllocatedStorage", 0)),
        encrypted=bool(snapshot.get(source.api.encrypted)),
        reused=reused,
    )


ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""UTC times in records and reports (the backup record, the load-test result)."""
STAMP_FORMAT = "%Y%m%dt%H%M%Sz"
"""UTC times in resource names (RDS identifiers want lower case)."""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(ISO_FORMAT)


def from_iso(text: str) -> datetime:
    """`iso`'s inverse; ValueError when `text` is not in that form."""
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=timezone.utc)


