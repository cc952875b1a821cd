"""Small helpers the components share: alarm declaration and IAM documents."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service principal assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def secrets_read_policy(secret_arns: Sequence[str], kms_key: str, region: str, sid: str | None = None) -> str:
    """GetSecretValue on exactly `secret_arns`, and kms:Decrypt of `kms_key` only through Secrets Manager and only
    for those secrets; `sid` names the two statements (`Read<sid>`, `Decrypt<sid>`)."""
    names = ({"Sid": f"Read{sid}"}, {"Sid": f"Decrypt{sid}"}) if sid else ({}, {})
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {**names[0], "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": list(secret_arns)},
                {
                    **names[1],
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": kms_key,
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:SecretARN": list(secret_arns)},
                    },
                },
            ],
        }
    )


def metric_alarm(
    resource_name: str,
    *,
    alarm_name: str,
    description: str,
    topic_arn: pulumi.Input[str],
    threshold: float,
    parent: pulumi.Resource,
    tags: Mapping[str, str],
    namespace: str | None = None,
    metric_name: str | None = None,
    dimensions: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
    statistic: str | None = None,
    extended_statistic: str | None = None,
    metric_queries: Sequence[aws.cloudwatch.MetricAlarmMetricQueryArgs] | None = None,
    comparison: str = "GreaterThanThreshold",
    period: int = 60,
    evaluation_periods: int = 5,
    datapoints_to_alarm: int = 3,
) -> aws.cloudwatch.MetricAlarm:
    """A CloudWatch alarm that notifies (and recovers to) the alarm topic; missing data is not a breach."""
    single_metric = metric_queries is None
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name,
        alarm_description=description,
        namespace=namespace if single_metric else None,
        metric_name=metric_name if single_metric else None,
        dimensions=dimensions if single_metric else None,
        statistic=statistic if single_metric else None,
        extended_statistic=extended_statistic if single_metric else None,
        period=period if single_metric else None,
        metric_queries=metric_queries,
        comparison_operator=comparison,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
