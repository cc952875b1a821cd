"""Encryption at rest and in transit: RDS (storage and Performance Insights), DMS, ECR, Secrets Manager, logs, SNS."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity

from .common import (
    DMS_ENDPOINT,
    DMS_REPLICATION_INSTANCE,
    ECR_REPOSITORY,
    KMS_KEY,
    LOG_GROUP,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    SECRET,
    SNS_TOPIC,
    as_bool,
    as_list,
    as_number,
    dig,
    fmt_number,
    is_set,
    known_or,
    resource_policy,
    shown,
)

Report = Callable[[str], None]

_CUSTOMER_KEY_SCHEMA = {
    "requireCustomerKey": {
        "type": "boolean",
        "default": True,
        "description": "Require an explicit customer-managed KMS key (not the AWS-managed default key).",
    },
}


def _customer_key(props: Any, key: str) -> bool:
    """Set and not an AWS-managed alias; an unknown value is a key created in this update, so a customer key."""
    if not is_set(props, key):
        return False
    value = known_or(props, key)
    return not (isinstance(value, str) and "alias/aws/" in value)


def _check_rds_storage(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if as_bool(props.get("storageEncrypted")) is not True:
        report("storageEncrypted is not true: the database, its backups and snapshots would be stored unencrypted.")
        return
    if cfg["requireCustomerKey"] and not _customer_key(props, "kmsKeyId"):
        report("kmsKeyId is not a customer-managed KMS key, so key access cannot be audited or revoked separately.")


def _check_rds_performance_insights(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    props = args.props
    if as_bool(props.get("performanceInsightsEnabled")) is not True:
        return
    if cfg["requireCustomerKey"] and not _customer_key(props, "performanceInsightsKmsKeyId"):
        report("performanceInsightsKmsKeyId is not set to a customer-managed key; captured SQL text would be "
               "encrypted with the AWS-managed key only.")


def _check_dms_instance(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if not is_set(args.props, "kmsKeyArn"):
        report("kmsKeyArn is not set: the replication instance's storage (which holds CDC data) uses the default key.")


def _check_dms_endpoint(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    mode = args.props.get("sslMode") or "none"
    allowed = list(cfg["allowedSslModes"])
    if mode not in allowed:
        report(f"sslMode is {shown(mode)}; replication traffic must use TLS (one of {', '.join(allowed)}).")


def _check_ecr(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    configs = as_list(args.props.get("encryptionConfigurations"))
    allowed = list(cfg["allowedEncryptionTypes"])
    if not configs:
        report("encryptionConfigurations is not set; state the repository's encryption explicitly "
               f"(one of {', '.join(allowed)}).")
        return
    for conf in configs:
        kind = dig(conf, "encryptionType", default="AES256")
        if kind not in allowed:
            report(f"encryptionType {shown(kind)} is not one of {', '.join(allowed)}.")


def _check_secret(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if not _customer_key(args.props, "kmsKeyId"):
        report("kmsKeyId is not a customer-managed key; the secret falls back to aws/secretsmanager.")


def _check_log_group(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    days = as_number(args.props.get("retentionInDays"))
    minimum = float(cfg["minimumRetentionDays"])
    if days is None or days == 0:
        report("retentionInDays is not set, so logs are kept (and billed) forever.")
    elif days < minimum:
        report(f"retentionInDays is {fmt_number(days)}; at least {fmt_number(minimum)} is required.")


def _check_log_group_key(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if not _customer_key(args.props, "kmsKeyId"):
        report("kmsKeyId is not set: the log group is encrypted only with CloudWatch Logs' own key, which no key "
               "policy governs and no one can revoke.")


def _check_sns_topic(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if not is_set(args.props, "kmsMasterKeyId"):
        report("kmsMasterKeyId is not set, so messages (alarm details, DMS events) are stored unencrypted.")
    elif cfg["requireCustomerKey"] and not _customer_key(args.props, "kmsMasterKeyId"):
        report("kmsMasterKeyId is the AWS-managed alias/aws/sns key, whose policy no AWS service may use: CloudWatch "
               "alarms and EventBridge rules could no longer publish to the topic.")


def _check_kms_rotation(args: ResourceValidationArgs, cfg: Mapping[str, Any], report: Report) -> None:
    if as_bool(args.props.get("enableKeyRotation")) is not True:
        report("enableKeyRotation is not true.")


rds_storage_encrypted = resource_policy(
    name="rds-storage-encrypted",
    area="encryption",
    description="RDS instances and clusters (Aurora, Multi-AZ DB clusters) encrypt storage with a customer-managed KMS key.",
    resource_types=[RDS_INSTANCE, RDS_CLUSTER],
    check=_check_rds_storage,
    remediation="set storageEncrypted=True and kmsKeyId to the service's KMS key ARN (needs a replacement "
                "for an existing unencrypted instance: snapshot, copy encrypted, restore).",
    severity=Severity.CRITICAL,
    config=_CUSTOMER_KEY_SCHEMA,
)

rds_performance_insights_encrypted = resource_policy(
    name="rds-performance-insights-encrypted",
    area="encryption",
    description="RDS Performance Insights data is encrypted with a customer-managed KMS key.",
    resource_types=[RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE],
    check=_check_rds_performance_insights,
    remediation="set performanceInsightsKmsKeyId to the service's KMS key ARN.",
    config=_CUSTOMER_KEY_SCHEMA,
)

dms_replication_instance_encrypted = resource_policy(
    name="dms-replication-instance-encrypted",
    area="encryption",
    description="DMS replication instances encrypt their storage with a KMS key.",
    resource_types=[DMS_REPLICATION_INSTANCE],
    check=_check_dms_instance,
    remediation="set kmsKeyArn to the service's KMS key ARN.",
)

dms_endpoint_tls = resource_policy(
    name="dms-endpoint-tls",
    area="encryption",
    description="DMS endpoints connect with TLS (sslMode other than none).",
    resource_types=[DMS_ENDPOINT],
    check=_check_dms_endpoint,
    remediation="set sslMode='require' (or verify-ca/verify-full with a certificateArn).",
    config={
        "allowedSslModes": {
            "type": "array",
            "items": {"type": "string", "enum": ["require", "verify-ca", "verify-full"]},
            "default": ["require", "verify-ca", "verify-full"],
            "description": "sslMode values accepted.",
        },
    },
)

ecr_encryption = resource_policy(
    name="ecr-encryption-configured",
    area="encryption",
    description="ECR repositories state their encryption configuration explicitly.",
    resource_types=[ECR_REPOSITORY],
    check=_check_ecr,
    remediation="add encryptionConfigurations=[{encryptionType: 'AES256'}] (or KMS with a kmsKey).",
    config={
        "allowedEncryptionTypes": {
            "type": "array",
            "items": {"type": "string", "enum": ["AES256", "KMS", "KMS_DSSE"]},
            "default": ["AES256", "KMS", "KMS_DSSE"],
            "description": "encryptionType values accepted.",
        },
    },
)

secrets_customer_key = resource_policy(
    name="secrets-customer-kms-key",
    area="encryption",
    description="Secrets Manager secrets are encrypted with a customer-managed KMS key.",
    resource_types=[SECRET],
    check=_check_secret,
    remediation="set kmsKeyId to the service's KMS key ARN.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
)

log_group_retention = resource_policy(
    name="log-group-retention",
    area="encryption",
    description="CloudWatch log groups have a retention period set.",
    resource_types=[LOG_GROUP],
    check=_check_log_group,
    remediation="set retentionInDays (e.g. 14 in dev, 90 in prod).",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.LOW,
    config={
        "minimumRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "Shortest retention accepted, in days.",
        },
    },
)

kms_key_rotation = resource_policy(
    name="kms-key-rotation",
    area="encryption",
    description="Customer-managed KMS keys rotate their key material yearly.",
    resource_types=[KMS_KEY],
    check=_check_kms_rotation,
    remediation="set enableKeyRotation=True.",
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
)

log_group_customer_key = resource_policy(
    name="log-group-customer-key",
    area="encryption",
    description="CloudWatch log groups are encrypted with a customer-managed KMS key.",
    resource_types=[LOG_GROUP],
    check=_check_log_group_key,
    remediation="set kmsKeyId to the stack's telemetry key ARN; its key policy must let logs.<region>.amazonaws.com "
                "use it for this log group (kms:EncryptionContext:aws:logs:arn).",
)

sns_topic_encrypted = resource_policy(
    name="sns-topic-encrypted",
    area="encryption",
    description="SNS topics are encrypted with a customer-managed KMS key their publishers may use.",
    resource_types=[SNS_TOPIC],
    check=_check_sns_topic,
    remediation="set kmsMasterKeyId to the stack's telemetry key ARN, whose policy admits the topic's publishers "
                "(cloudwatch.amazonaws.com, events.amazonaws.com) for this topic.",
    config=_CUSTOMER_KEY_SCHEMA,
)

POLICIES = [
    rds_storage_encrypted,
    rds_performance_insights_encrypted,
    dms_replication_instance_encrypted,
    dms_endpoint_tls,
    ecr_encryption,
    secrets_customer_key,
    log_group_retention,
    log_group_customer_key,
    sns_topic_encrypted,
    kms_key_rotation,
]
