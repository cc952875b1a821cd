"""Dashboard: what operators watch during the canary (`TaskServiceMetrics` in prod).

One CloudWatch dashboard: ECS CPU/memory, ALB requests, 5xx and p95 latency for both target groups side by side,
RDS CPU/connections/free storage, and DMS CDC latency when DMS is on. It is built last in the program, from the
other components' real outputs (the new target group's ARN suffix, the names they were given).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import pulumi
import pulumi_aws as aws

from task_service.naming import Naming, Role

# Until the dashboard became its own component it was a child of Monitoring `task-service-monitoring`; the alias
# keeps its URN.
_FORMER = ("task-service-monitoring-dashboard", "task-service-monitoring", "task-service:monitoring:Monitoring")


@dataclass
class DashboardArgs:
    """Inputs of Dashboard: the dimensions of every metric it shows."""

    naming: Naming
    region: str
    cluster_name: str
    service_name: str
    db_instance_id: str
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    monolith_target_group_arn_suffix: pulumi.Input[str]
    dms_replication_instance_id: str | None = None
    dms_task_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class Dashboard(pulumi.ComponentResource):
    """The TaskServiceMetrics dashboard and its console URL."""

    dashboard: aws.cloudwatch.Dashboard
    url: str

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:monitoring:Dashboard", name, None, opts)
        dashboard_name = args.naming.of(Role.DASHBOARD)
        former_name, *former_parent = _FORMER
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=pulumi.Output.all(
                args.load_balancer_arn_suffix, args.target_group_arn_suffix, args.monolith_target_group_arn_suffix
            ).apply(lambda v: json.dumps(_body(args, v[0], v[1], v[2]), sort_keys=True)),
            opts=pulumi.ResourceOptions(
                parent=self,
                aliases=[pulumi.Alias(name=former_name, parent=pulumi.resource.create_urn(*former_parent))],
            ),
        )
        self.url = (
            f"https://{args.region}.console.aws.amazon.com/cloudwatch/home"
            f"?region={args.region}#dashboards:name={dashboard_name}"
        )
        self.register_outputs({"dashboardName": self.dashboard.dashboard_name, "dashboardUrl": self.url})


def _body(args: DashboardArgs, lb: str, tg: str, monolith_tg: str) -> dict[str, Any]:
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
