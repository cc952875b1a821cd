"""Policy gaps a careless or hostile program could slip through: string booleans, clusters, split or respelled
CIDRs, numbers that are not numbers, config keys no policy declares."""

from __future__ import annotations

from typing import Any

import pytest

import policy_factories as f
from policy_harness import run, run_stack
from task_service_policies import availability, backups, common, encryption, monitoring, network

CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"


def _cluster(**changes: Any) -> dict[str, Any]:
    """A compliant Aurora PostgreSQL cluster."""
    return {
        "engine": "aurora-postgresql", "storageEncrypted": True, "kmsKeyId": f.KMS_ARN, "backupRetentionPeriod": 7,
        "deletionProtection": True, "skipFinalSnapshot": False, "finalSnapshotIdentifier": "task-service-final",
        "copyTagsToSnapshot": True, "tags": dict(f.TAGS), **changes,
    }


# (policy, type, props, expected fragment of the finding, or None when the resource must pass)
STRING_BOOLEANS = [
    (network.no_public_database, f.RDS, f.rds(publiclyAccessible="true"), "publiclyAccessible is true"),
    (network.no_public_database, f.RDS, f.rds(publiclyAccessible="True"), "publiclyAccessible is true"),
    (network.no_public_database, f.RDS, f.rds(publiclyAccessible="1"), "publiclyAccessible is true"),
    (network.no_public_database, f.DMS_INSTANCE, f.dms_instance(publiclyAccessible="t"), "publiclyAccessible is true"),
    (network.no_public_database, f.RDS, f.rds(publiclyAccessible="false"), None),
    (network.ecs_no_public_ip, f.ECS_SERVICE,
     f.ecs_service(networkConfiguration={"subnets": ["subnet-1"], "assignPublicIp": "TRUE"}), "assignPublicIp is true"),
    (encryption.rds_storage_encrypted, f.RDS, f.rds(storageEncrypted="true"), None),
    (encryption.rds_storage_encrypted, f.RDS, f.rds(storageEncrypted="false"), "storageEncrypted is not true"),
    (encryption.rds_storage_encrypted, f.RDS, f.rds(storageEncrypted="yes"), "storageEncrypted is not true"),
    (backups.rds_deletion_safeguards, f.RDS, f.rds(skipFinalSnapshot="true"), "skipFinalSnapshot is not false"),
    (backups.rds_deletion_safeguards, f.RDS, f.rds(deletionProtection="false"), "deletionProtection is not true"),
    (availability.multi_az, f.RDS, f.rds(multiAz="false"), "multiAz is not true"),
    (availability.multi_az, f.RDS, f.rds(multiAz="true"), None),
    (monitoring.alarm_actions, f.ALARM, f.alarm_simple("CPUUtilization", "AWS/ECS", 80, actionsEnabled="false"), "actionsEnabled is false"),
    (encryption.kms_key_rotation, f.KMS, f.kms_key(enableKeyRotation="true"), None),
]

CLUSTERS = [
    (encryption.rds_storage_encrypted, CLUSTER, _cluster(), None),
    (encryption.rds_storage_encrypted, CLUSTER, _cluster(storageEncrypted=False), "storageEncrypted is not true"),
    (encryption.rds_storage_encrypted, CLUSTER, _cluster(kmsKeyId="alias/aws/rds"), "not a customer-managed"),
    (backups.rds_backup_retention, CLUSTER, _cluster(backupRetentionPeriod=1), "at least 7"),
    (backups.rds_backup_retention, CLUSTER, _cluster(backupRetentionPeriod=None), "not set explicitly"),
    (backups.rds_deletion_safeguards, CLUSTER, _cluster(deletionProtection=False), "deletionProtection is not true"),
    (backups.rds_deletion_safeguards, CLUSTER, _cluster(skipFinalSnapshot=True), "skipFinalSnapshot is not false"),
    (network.no_public_database, CLUSTER, _cluster(publiclyAccessible=True), "publiclyAccessible is true"),
    (network.no_public_database, CLUSTER_INSTANCE, {"publiclyAccessible": True}, "publiclyAccessible is true"),
    (network.no_public_database, CLUSTER_INSTANCE, {"publiclyAccessible": False}, None),
    (encryption.rds_performance_insights_encrypted, CLUSTER_INSTANCE, {"performanceInsightsEnabled": True},
     "performanceInsightsKmsKeyId is not set"),
]

NUMBERS = [
    (backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod="nan"), "not set explicitly"),
    (backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod="inf"), "not set explicitly"),
    (backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod=True), "not set explicitly"),
    (backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod="1e1"), "not set explicitly"),
    (backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod="7"), None),
]


CASES = STRING_BOOLEANS + CLUSTERS + NUMBERS


@pytest.mark.parametrize("policy,type_,props,expected", CASES, ids=[f"{c[0].name}-{i}" for i, c in enumerate(CASES)])
def test_resource_policies(policy: Any, type_: str, props: dict[str, Any], expected: str | None) -> None:
    outcome = run(policy, type_, props)
    if expected is None:
        assert outcome.ok, outcome.messages
    else:
        assert any(expected in message for message in outcome.messages), outcome.messages


def _ingress(name: str, **changes: Any) -> tuple[str, str, dict[str, Any]]:
    return (f.INGRESS, name, f.ingress_rule(securityGroupId="sg-0123456789abcdef0", referencedSecurityGroupId=None,
                                            **changes))


# (rules of one security group, how many findings)
UNIONS = [
    ([_ingress("a", cidrIpv4="0.0.0.0/1"), _ingress("b", cidrIpv4="128.0.0.0/1")], 2),
    ([_ingress("a", cidrIpv4="0.0.0.0/1")], 0),
    ([_ingress("a", cidrIpv4="0.0.0.0/1"), _ingress("b", cidrIpv4="128.0.0.0/2"), _ingress("c", cidrIpv4="192.0.0.0/2")], 3),
    ([_ingress("a", cidrIpv4="0.0.0.0/1"), _ingress("b", cidrIpv4="128.0.0.0/1", fromPort=443, toPort=443)], 0),
    ([_ingress("a", cidrIpv6="::0/0")], 1),
    ([_ingress("a", cidrIpv6="0:0:0:0:0:0:0:0/0")], 1),
    ([_ingress("a", cidrIpv6="::/1"), _ingress("b", cidrIpv6="8000::/1")], 2),
    ([_ingress("a", cidrIpv4="0.0.0.0/00")], 1),
    ([_ingress("a", cidrIpv4="000.000.000.000/0")], 1),
    ([_ingress("a", cidrIpv4="10.0.0.0/8"), _ingress("b", cidrIpv4="172.16.0.0/12")], 0),
    ([(f.SG, "sg", f.security_group(ingress=[
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]}]))], 1),
    ([(f.SG, "sg", f.security_group(ingress=[
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/1"]},
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["128.0.0.0/1"]}]))], 2),
    ([(f.SG_RULE, "r1", {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                         "cidrBlocks": ["0.0.0.0/1"], "securityGroupId": "sg-1"}),
      (f.SG_RULE, "r2", {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                         "cidrBlocks": ["128.0.0.0/1"], "securityGroupId": "sg-1"})], 2),
    ([(f.SG_RULE, "r1", {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                         "cidrBlocks": ["0.0.0.0/1"], "securityGroupId": "sg-1"}),
      (f.SG_RULE, "r2", {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                         "cidrBlocks": ["128.0.0.0/1"], "securityGroupId": "sg-2"})], 0),
]


@pytest.mark.parametrize("resources,findings", UNIONS)
def test_open_ingress_is_judged_on_the_union(resources: list[tuple[str, str, dict[str, Any]]], findings: int) -> None:
    outcome = run_stack(network.no_open_ingress, resources)
    assert len(outcome.messages) == findings, outcome.messages
    assert all(urn and urn.endswith(tuple(f"::{name}" for _, name, _ in resources)) for urn in outcome.urns)


def test_split_rules_on_a_group_created_in_the_same_preview_are_joined_by_dependency() -> None:
    """In a preview the rules' securityGroupId is unknown; the engine's property dependency names the group."""
    resources = [(f.SG, "db-sg", f.security_group()), _ingress("a", cidrIpv4="0.0.0.0/1"),
                 _ingress("b", cidrIpv4="128.0.0.0/1")]
    resources[1][2]["securityGroupId"] = resources[2][2]["securityGroupId"] = f.UNKNOWN
    links = {"a": {"securityGroupId": ["db-sg"]}, "b": {"securityGroupId": ["db-sg"]}}
    outcome = run_stack(network.no_open_ingress, resources, links=links)
    assert len(outcome.messages) == 2 and "admits every IPv4 address" in outcome.messages[0]


def test_a_config_key_no_policy_declares_stops_the_run() -> None:
    """The CLI hands a typo through to the pack; the pack refuses it instead of keeping its default."""
    with pytest.raises(ValueError, match="unknown config key"):
        run(backups.rds_backup_retention, f.RDS, f.rds(), config={"minimumRetentionDay": 3})


@pytest.mark.parametrize("value,expected", [
    (True, True), ("true", True), ("1", True), ("T", True), (False, False), ("False", False), ("0", False),
    ("yes", None), ("", None), (1, None), (None, None),
])
def test_booleans_as_the_provider_reads_them(value: Any, expected: bool | None) -> None:
    assert common.as_bool(value) is expected
