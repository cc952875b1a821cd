"""Monitoring: where the Task Service's alarms go and what operators watch during the canary.

Creates, parented to the component and named `<name>-...`:
- the SNS topic `task-service-alarms` and one e-mail subscription per configured address (each must be
  confirmed from the inbox). The topic is not encrypted with the AWS-managed SNS key on purpose: CloudWatch
  alarms and DMS events cannot publish to a topic under `alias/aws/sns`;
- the CloudWatch dashboard `TaskServiceMetrics`: ECS CPU/memory, ALB requests, 5xx and p95 latency for both
  target groups side by side, RDS CPU/connections/free storage, and DMS CDC latency when DMS is on.
The dashboard is built from inputs that may only resolve later (the new target group's ARN suffix), so the
topic can be created first and handed to the other components' alarms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws


@dataclass
class MonitoringArgs:
    """Inputs of Monitoring."""

    region: str
    alarm_emails: Sequence[str]
    cluster_name: str
    service_name: str
    db_instance_id: str
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    monolith_target_group_arn_suffix: pulumi.Input[str]
    dms_replication_instance_id: str | None = None
    dms_task_id: str | None = None
    topic_name: str = "task-service-alarms"
    dashboard_name: str = "TaskServiceMetrics"
    tags: Mapping[str, str] = field(default_factory=dict)


class Monitoring(pulumi.ComponentResource):
    """Alarm topic with e-mail subscribers, and the TaskServiceMetrics dashboard."""

    topic: aws.sns.Topic
    dashboard: aws.cloudwatch.Dashboard
    dashboard_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.topic = aws.sns.Topic(
            f"{name}-alarms",
            name=args.topic_name,
            tags=dict(args.tags),
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

        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=pulumi.Output.all(
                args.load_balancer_arn_suffix, args.target_group_arn_suffix, args.monolith_target_group_arn_suffix
            ).apply(lambda v: json.dumps(_dashboard(args, v[0], v[1], v[2]), sort_keys=True)),
            opts=child,
        )
        self.dashboard_url = (
            f"https://{args.region}.console.aws.amazon.com/cloudwatch/home"
            f"?region={args.region}#dashboards:name={args.dashboard_name}"
        )

        self.register_outputs(
            {"topicArn": self.topic.arn, "dashboardName": self.dashboard.dashboard_name, "dashboardUrl": self.dashboard_url}
        )


def _dashboard(args: MonitoringArgs, lb: str, tg: str, monolith_tg: str) -> dict[str, Any]:
    def widget(title: str, metrics: list[list[Any]], stat: str = "Average", y: int = 0, x: int = 0) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": args.region, "stat": stat, "period": 60, "metrics": metrics},
        }

    ecs = ["ClusterName", args.cluster_name, "ServiceName", args.service_name]
    rds = ["DBInstanceIdentifier", args.db_instance_id]
    def by_target_group(metric: str) -> list[list[Any]]:
        """The same ALB metric for the monolith and the Task Service, side by side during the canary."""
        return [
            ["AWS/ApplicationELB", metric, "TargetGroup", group, "LoadBalancer", lb, {"label": label}]
            for label, group in (("monolith", monolith_tg), ("task-service", tg))
        ]

    widgets = [
        widget("ECS CPU / memory (%)", [["AWS/ECS", "CPUUtilization", *ecs], ["AWS/ECS", "MemoryUtilization", *ecs]]),
        widget("ALB requests: monolith vs Task Service", by_target_group("RequestCount"), stat="Sum", x=12),
        widget("5xx responses by target group", by_target_group("HTTPCode_Target_5XX_Count"), stat="Sum", y=6),
        widget("p95 response time (s) by target group", by_target_group("TargetResponseTime"), stat="p95", y=6, x=12),
        widget("RDS CPU (%) / connections", [["AWS/RDS", "CPUUtilization", *rds], ["AWS/RDS", "DatabaseConnections", *rds]], y=12),
        widget("RDS free storage (bytes)", [["AWS/RDS", "FreeStorageSpace", *rds]], stat="Minimum", y=12, x=12),
    ]
    if args.dms_task_id and args.dms_replication_instance_id:
        dms = ["ReplicationInstanceIdentifier", args.dms_replication_instance_id, "ReplicationTaskIdentifier", args.dms_task_id]
        widgets.append(
            widget("DMS CDC latency (s)", [["AWS/DMS", "CDCLatencySource", *dms], ["AWS/DMS", "CDCLatencyTarget", *dms]], y=18)
        )
    return {"widgets": widgets}
