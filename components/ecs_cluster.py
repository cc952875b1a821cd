"""EcsCluster: the ECS cluster the Task Service runs in (`task-service-cluster` in prod), Container Insights on.

Creates, parented to the component and named `<name>-...`: the cluster, and before it Container Insights'
performance log group `/aws/ecs/containerinsights/<cluster>/performance`, encrypted with the telemetry key and with
the stack's retention (CloudWatch would otherwise create it on first write, unencrypted). Apart from the service,
as awsx splits them: a cluster holds services, and outlives any one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws

from task_service.naming import Naming, Role

# Until the split the cluster was a child of FargateService `task-service`; the alias keeps its URN.
_FORMER_PARENT = ("task-service", "task-service:fargate:FargateService")


@dataclass
class EcsClusterArgs:
    """Inputs of EcsCluster."""

    naming: Naming
    logs_kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


class EcsCluster(pulumi.ComponentResource):
    """An ECS cluster with Container Insights."""

    cluster: aws.ecs.Cluster
    insights_log_group: aws.cloudwatch.LogGroup
    cluster_name: str
    """The cluster's physical name, known before deployment (alarm and dashboard dimensions use it)."""

    def __init__(self, name: str, args: EcsClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:ecs:EcsCluster", name, None, opts)
        self.cluster_name = args.naming.of(Role.CLUSTER)
        self.insights_log_group = aws.cloudwatch.LogGroup(
            f"{name}-insights-logs",
            name=args.naming.of(Role.CONTAINER_INSIGHTS_LOG_GROUP),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=self.cluster_name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.insights_log_group],
                aliases=[pulumi.Alias(name="task-service-cluster", parent=pulumi.resource.create_urn(*_FORMER_PARENT))],
            ),
        )
        self.register_outputs({"clusterName": self.cluster.name, "clusterArn": self.cluster.arn})
