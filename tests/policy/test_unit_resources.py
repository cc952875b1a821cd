"""Unit tests per resource policy: the compliant factory passes, and each single-field change is caught."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from pulumi_policy.proxy import UnknownValueError

import policy_factories as f
from policy_harness import run
from task_service_policies import availability, backups, encryption, monitoring, network, tags

Case = tuple[Any, str, Callable[..., dict[str, Any]], dict[str, Any], str]

# (policy, type, factory, changed fields, expected message fragment)
FAILING: list[Case] = [
    (encryption.rds_storage_encrypted, f.RDS, f.rds, {"storageEncrypted": False}, "storageEncrypted is not true"),
    (encryption.rds_storage_encrypted, f.RDS, f.rds, {"kmsKeyId": None}, "kmsKeyId is not a customer-managed"),
    (encryption.rds_storage_encrypted, f.RDS, f.rds, {"kmsKeyId": "alias/aws/rds"}, "customer-managed"),
    (encryption.rds_performance_insights_encrypted, f.RDS, f.rds, {"performanceInsightsKmsKeyId": None},
     "performanceInsightsKmsKeyId"),
    (encryption.dms_replication_instance_encrypted, f.DMS_INSTANCE, f.dms_instance, {"kmsKeyArn": None},
     "kmsKeyArn is not set"),
    (encryption.dms_endpoint_tls, f.DMS_ENDPOINT, f.dms_endpoint, {"sslMode": "none"}, "sslMode is 'none'"),
    (encryption.dms_endpoint_tls, f.DMS_ENDPOINT, f.dms_endpoint, {"sslMode": None}, "sslMode is 'none'"),
    (encryption.ecr_encryption, f.ECR, f.ecr, {"encryptionConfigurations": []}, "encryptionConfigurations is not"),
    (encryption.secrets_customer_key, f.SECRET, f.secret, {"kmsKeyId": None}, "aws/secretsmanager"),
    (encryption.log_group_retention, f.LOG_GROUP, f.log_group, {"retentionInDays": None}, "kept (and billed) forever"),
    (encryption.kms_key_rotation, f.KMS, f.kms_key, {"enableKeyRotation": False}, "enableKeyRotation"),
    (encryption.log_group_customer_key, f.LOG_GROUP, f.log_group, {"kmsKeyId": None}, "kmsKeyId is not set"),
    (encryption.log_group_customer_key, f.LOG_GROUP, f.log_group, {"kmsKeyId": ""}, "kmsKeyId is not set"),
    (encryption.sns_topic_encrypted, f.SNS_TOPIC, f.sns_topic, {"kmsMasterKeyId": None}, "stored unencrypted"),
    (encryption.sns_topic_encrypted, f.SNS_TOPIC, f.sns_topic, {"kmsMasterKeyId": "alias/aws/sns"}, "AWS-managed alias/aws/sns"),
    (backups.rds_backup_retention, f.RDS, f.rds, {"backupRetentionPeriod": 3}, "3 days; at least 7"),
    (backups.rds_backup_retention, f.RDS, f.rds, {"backupRetentionPeriod": None}, "not set explicitly"),
    (backups.rds_backup_retention, f.RDS, f.rds, {"backupRetentionPeriod": 36}, "at most 35"),
    (backups.rds_deletion_safeguards, f.RDS, f.rds, {"deletionProtection": False}, "deletionProtection"),
    (backups.rds_deletion_safeguards, f.RDS, f.rds, {"skipFinalSnapshot": True}, "skipFinalSnapshot"),
    (backups.rds_deletion_safeguards, f.RDS, f.rds, {"finalSnapshotIdentifier": None}, "finalSnapshotIdentifier"),
    (backups.rds_deletion_safeguards, f.RDS, f.rds, {"copyTagsToSnapshot": False}, "copyTagsToSnapshot"),
    (availability.multi_az, f.RDS, f.rds, {"multiAz": False}, "multiAz is not true"),
    (availability.multi_az, f.DMS_INSTANCE, f.dms_instance, {"multiAz": None}, "multiAz is not true"),
    (availability.ecs_circuit_breaker, f.ECS_SERVICE, f.ecs_service,
     {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}, "rollback is not true"),
    (availability.ecs_circuit_breaker, f.ECS_SERVICE, f.ecs_service, {"deploymentCircuitBreaker": None},
     "enable is not true"),
    (availability.autoscaling_capacity, f.SCALING_TARGET, f.scaling_target, {"minCapacity": 1}, "minCapacity is 1"),
    (availability.autoscaling_capacity, f.SCALING_TARGET, f.scaling_target, {"maxCapacity": 20},
     "maxCapacity is 20; the configured ceiling is 10"),
    (monitoring.rds_performance_insights, f.RDS, f.rds, {"performanceInsightsEnabled": False},
     "performanceInsightsEnabled is not true"),
    (monitoring.rds_performance_insights, f.RDS, f.rds, {"performanceInsightsRetentionPeriod": 3}, "at least 7"),
    (monitoring.rds_enhanced_monitoring, f.RDS, f.rds, {"monitoringInterval": 0}, "enhanced (OS-level)"),
    (monitoring.rds_enhanced_monitoring, f.RDS, f.rds, {"monitoringRoleArn": None}, "monitoringRoleArn"),
    (monitoring.alarm_actions, f.ALARM, f.alarm_latency, {"alarmActions": []}, "alarmActions is empty"),
    (monitoring.alarm_actions, f.ALARM, f.alarm_latency, {"actionsEnabled": False}, "actionsEnabled is false"),
    (network.no_public_database, f.RDS, f.rds, {"publiclyAccessible": True}, "publiclyAccessible is true"),
    (network.no_public_database, f.DMS_INSTANCE, f.dms_instance, {"publiclyAccessible": True}, "publicly"),
    (network.ecs_no_public_ip, f.ECS_SERVICE, f.ecs_service,
     {"networkConfiguration": {"assignPublicIp": True}}, "assignPublicIp is true"),
    (network.no_open_ingress, f.INGRESS, f.ingress_rule, {"cidrIpv4": "0.0.0.0/0"}, "0.0.0.0/0 on port 5432"),
    (network.no_open_ingress, f.INGRESS, f.ingress_rule, {"cidrIpv6": "::/0", "fromPort": 3000, "toPort": 3010},
     "::/0 on port 3001"),
    (network.no_open_ingress, f.INGRESS, f.ingress_rule,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "-1", "fromPort": None, "toPort": None}, "port 5432, 3001"),
    (network.no_open_ingress, f.SG, f.security_group,
     {"ingress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]}]},
     "ingress[0] allows 0.0.0.0/0 on port 5432"),
    (tags.required_tags, f.RDS, f.rds, {"tags": {"Project": "myteacher"}}, "missing required tags: Service, Environment"),
]

PASSING: list[Case] = [
    (network.no_open_ingress, f.INGRESS, f.ingress_rule, {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443},
     "public HTTPS is fine"),
    (network.no_open_ingress, f.INGRESS, f.ingress_rule, {"cidrIpv4": "10.0.0.0/16"}, "private CIDR"),
    (network.no_open_ingress, f.EGRESS, f.egress_rule, {}, "egress rules are not ingress"),
    (encryption.rds_performance_insights_encrypted, f.RDS, f.rds,
     {"performanceInsightsEnabled": False, "performanceInsightsKmsKeyId": None}, "no PI, nothing to encrypt"),
    (availability.autoscaling_capacity, f.SCALING_TARGET, f.scaling_target,
     {"serviceNamespace": "dynamodb", "minCapacity": 1}, "only ECS targets"),
    (tags.required_tags, f.RDS, f.rds, {"tags": None, "tagsAll": dict(f.TAGS)}, "tagsAll from default tags"),
    (encryption.sns_topic_encrypted, f.SNS_TOPIC, f.sns_topic, {"kmsMasterKeyId": "alias/task-service-telemetry"},
     "a customer key by alias"),
]

ALL = sorted({(p.name, t, fac.__name__): (p, t, fac) for p, t, fac, _, _ in FAILING + PASSING}.values(),
             key=lambda x: (x[0].name, x[1]))


@pytest.mark.parametrize("policy,type_,factory", ALL, ids=[f"{p.name}:{t}:{fn.__name__}" for p, t, fn in ALL])
def test_compliant_factory_passes(policy: Any, type_: str, factory: Callable[..., dict[str, Any]]) -> None:
    assert run(policy, type_, factory()).ok


@pytest.mark.parametrize("policy,type_,factory,changes,expected", FAILING,
                         ids=[f"{c[0].name}:{','.join(c[3]) or 'x'}" for c in FAILING])
def test_single_change_is_caught(policy: Any, type_: str, factory: Callable[..., dict[str, Any]],
                                 changes: dict[str, Any], expected: str) -> None:
    outcome = run(policy, type_, factory(**changes))
    assert any(expected in m for m in outcome.messages), outcome.messages
    assert all("Remediation: " in m for m in outcome.messages)


@pytest.mark.parametrize("policy,type_,factory,changes,why", PASSING, ids=[c[4] for c in PASSING])
def test_near_misses_pass(policy: Any, type_: str, factory: Callable[..., dict[str, Any]],
                          changes: dict[str, Any], why: str) -> None:
    assert run(policy, type_, factory(**changes)).ok


def test_sns_customer_key_requirement_can_be_relaxed() -> None:
    managed = f.sns_topic(kmsMasterKeyId="alias/aws/sns")
    assert run(encryption.sns_topic_encrypted, f.SNS_TOPIC, managed, config={"requireCustomerKey": False}).ok
    assert run(encryption.sns_topic_encrypted, f.SNS_TOPIC, f.sns_topic(kmsMasterKeyId=None),
               config={"requireCustomerKey": False}).messages


def test_other_resource_types_are_ignored() -> None:
    assert run(encryption.rds_storage_encrypted, f.ECR, {"storageEncrypted": False}).ok


def test_inline_rule_and_security_group_rule_forms() -> None:
    open_rule = {"type": "ingress", "protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["0.0.0.0/0"],
                 "securityGroupId": "sg-1"}
    assert "port 5432, 3001" in run(network.no_open_ingress, f.SG_RULE, open_rule).messages[0]
    assert run(network.no_open_ingress, f.SG_RULE, {**open_rule, "type": "egress"}).ok


def test_unknown_port_on_a_private_rule_is_not_read() -> None:
    props = f.ingress_rule(fromPort=f.UNKNOWN, toPort=f.UNKNOWN)
    assert run(network.no_open_ingress, f.INGRESS, props).ok
    with pytest.raises(UnknownValueError):
        run(network.no_open_ingress, f.INGRESS, {**props, "cidrIpv4": "0.0.0.0/0"})


def test_defaults_apply_without_any_config() -> None:
    """The SDK passes no defaults: with config None the policy must still use 7 days."""
    assert run(backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod=6), config=None).messages
    assert run(backups.rds_backup_retention, f.RDS, f.rds(backupRetentionPeriod=7), config=None).ok


def test_config_overrides_defaults() -> None:
    props = f.rds(backupRetentionPeriod=7)
    outcome = run(backups.rds_backup_retention, f.RDS, props, config={"minimumRetentionDays": 14})
    assert "at least 14" in outcome.messages[0]
    relaxed = run(backups.rds_deletion_safeguards, f.RDS,
                  f.rds(deletionProtection=False, skipFinalSnapshot=True, finalSnapshotIdentifier=None),
                  config={"requireDeletionProtection": False, "requireFinalSnapshot": False})
    assert relaxed.ok
    dev_cap = run(availability.autoscaling_capacity, f.SCALING_TARGET, f.scaling_target(maxCapacity=10),
                  config={"maximumCapacity": 4})
    assert "ceiling is 4" in dev_cap.messages[0]


def test_exclude_and_include_by_name() -> None:
    bad = f.rds(storageEncrypted=False)
    assert run(encryption.rds_storage_encrypted, f.RDS, bad, name="legacy-db").messages
    excused = run(encryption.rds_storage_encrypted, f.RDS, bad, name="legacy-db",
                  config={"excludeNamePattern": "^legacy-"})
    assert excused.ok
    assert run(encryption.rds_storage_encrypted, f.RDS, bad, name="task-service-db",
               config={"excludeNamePattern": "^legacy-"}).messages
    assert run(encryption.rds_storage_encrypted, f.RDS, bad, name="other-db",
               config={"includeNamePattern": "^task-service-"}).ok


def test_provider_default_tags_count() -> None:
    props = f.rds(tags=None)
    assert run(tags.required_tags, f.RDS, props).messages
    provider = {"defaultTags": {"tags": dict(f.TAGS)}}
    assert run(tags.required_tags, f.RDS, props, provider_props=provider).ok


def test_untaggable_resources_are_skipped() -> None:
    assert run(tags.required_tags, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", {}).ok
    assert run(tags.required_tags, "pulumi:providers:aws", {"tags": {}}).ok


def test_unknown_value_raises_for_the_sdk() -> None:
    """A policy reading an unknown value must raise the SDK's UnknownValueError (its advisory path), not crash."""
    with pytest.raises(UnknownValueError):
        run(encryption.rds_storage_encrypted, f.RDS, f.rds(storageEncrypted=f.UNKNOWN))


@pytest.mark.parametrize("policy,type_,props", [
    (encryption.rds_storage_encrypted, f.RDS, f.rds(kmsKeyId=f.UNKNOWN)),
    (encryption.rds_performance_insights_encrypted, f.RDS, f.rds(performanceInsightsKmsKeyId=f.UNKNOWN)),
    (encryption.dms_replication_instance_encrypted, f.DMS_INSTANCE, f.dms_instance(kmsKeyArn=f.UNKNOWN)),
    (encryption.secrets_customer_key, f.SECRET, f.secret(kmsKeyId=f.UNKNOWN)),
    (encryption.log_group_customer_key, f.LOG_GROUP, f.log_group(kmsKeyId=f.UNKNOWN)),
    (encryption.sns_topic_encrypted, f.SNS_TOPIC, f.sns_topic(kmsMasterKeyId=f.UNKNOWN)),
    (monitoring.rds_enhanced_monitoring, f.RDS, f.rds(monitoringRoleArn=f.UNKNOWN)),
    (monitoring.alarm_actions, f.ALARM, f.alarm_latency(alarmActions=[f.UNKNOWN])),
    (monitoring.alarm_actions, f.ALARM, f.alarm_latency(alarmActions="6a19a0b0-7e62-4c92-b797-7f8e31da9cc2")),
])
def test_unknown_arn_counts_as_set(policy: Any, type_: str, props: dict[str, Any]) -> None:
    """A key or topic created in the same update has no ARN yet in preview; presence checks must still pass."""
    assert run(policy, type_, props).ok
