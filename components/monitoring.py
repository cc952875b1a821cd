"""Monitoring: where the Task Service's alarms go.

Creates, parented to the component and named `<name>-...`:
- the SNS topic (`task-service-alarms` in prod), encrypted with the stack's telemetry key (not `alias/aws/sns`,
  whose policy no AWS service principal may use), and one e-mail subscription per configured address (each must
  be confirmed from the inbox);
- its topic policy: the default account-owner statement CloudWatch alarms publish through, EventBridge only for the
  stack's own DMS event rules (DMS 3.4.5 and later report through EventBridge; `dms.amazonaws.com` event
  subscriptions are the legacy route), and no publishing without TLS. The telemetry key's policy lets exactly
  these publishers use the key for this topic.
It comes first in the program: every other component's alarms notify this topic. The dashboard, which needs the
others' real outputs, is its own component (Dashboard), built last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from task_service.naming import Arns, Naming, Role

OWNER_ACTIONS = [
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:AddPermission",
    "SNS:RemovePermission",
    "SNS:DeleteTopic",
    "SNS:Subscribe",
    "SNS:ListSubscriptionsByTopic",
    "SNS:Publish",
]
"""The statement SNS writes into every new topic's policy: the owning account may use the topic."""


def topic_policy(arns: Arns, topic: str, event_rules: Sequence[str]) -> str:
    """The account owner's statement, EventBridge for exactly `event_rules`, and TLS for every publisher."""
    topic_arn = arns.topic(topic)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountOwner",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": OWNER_ACTIONS,
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": arns.account}},
        },
        {
            "Sid": "PublishOverTlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    if event_rules:
        statements.append(
            {
                "Sid": "DmsEventsThroughEventBridge",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": [arns.event_rule(rule) for rule in event_rules]},
                    "StringEquals": {"aws:SourceAccount": arns.account},
                },
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


@dataclass
class MonitoringArgs:
    """Inputs of Monitoring."""

    naming: Naming
    arns: Arns
    alarm_emails: Sequence[str]
    kms_key_arn: pulumi.Input[str]
    """The telemetry key, whose policy admits this topic's publishers."""
    event_rules: Sequence[str] = ()
    """Names of the EventBridge rules (DMS events) that publish to the topic."""
    tags: Mapping[str, str] = field(default_factory=dict)


class Monitoring(pulumi.ComponentResource):
    """Encrypted alarm topic, its policy, and e-mail subscribers."""

    topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic_name = args.naming.of(Role.ALARM_TOPIC)
        self.topic = aws.sns.Topic(
            f"{name}-alarms", name=topic_name, kms_master_key_id=args.kms_key_arn, tags=dict(args.tags), opts=child
        )
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=topic_policy(args.arns, topic_name, args.event_rules),
            opts=child,
        )
        for index, email in enumerate(args.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-alarm-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        self.register_outputs({"topicArn": self.topic.arn})
