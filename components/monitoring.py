"""Monitoring: where the Task Service's alarms go.

Creates, parented to the component and named `<name>-...`:
- the SNS topic (`task-service-alarms` in prod) and one e-mail subscription per configured address (each must be
  confirmed from the inbox). The topic is not encrypted with the AWS-managed SNS key on purpose: CloudWatch
  alarms and DMS events cannot publish to a topic under `alias/aws/sns`.
It comes first in the program: every other component's alarms notify this topic. The dashboard, which needs the
others' real outputs, is its own component (Dashboard), built last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from task_service.naming import Naming, Role


@dataclass
class MonitoringArgs:
    """Inputs of Monitoring."""

    naming: Naming
    alarm_emails: Sequence[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class Monitoring(pulumi.ComponentResource):
    """Alarm topic with e-mail subscribers."""

    topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(f"{name}-alarms", name=args.naming.of(Role.ALARM_TOPIC), tags=dict(args.tags), opts=child)
        for index, email in enumerate(args.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-alarm-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        self.register_outputs({"topicArn": self.topic.arn})
