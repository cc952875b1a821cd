"""EcsCluster: the ECS cluster the Task Service runs in (`task-service-cluster` in prod), Container Insights on.

Apart from the service, as awsx splits them: a cluster holds services, and outlives any one of them.
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
    tags: Mapping[str, str] = field(default_factory=dict)


class EcsCluster(pulumi.ComponentResource):
    """An ECS cluster with Container Insights."""

    cluster: aws.ecs.Cluster
    cluster_name: str
    """The cluster's physical name, known before deployment (alarm and dashboard dimensions use it)."""

    def __init__(self, name: str, args: EcsClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:ecs:EcsCluster", name, None, opts)
        self.cluster_name = args.naming.of(Role.CLUSTER)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=self.cluster_name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                aliases=[pulumi.Alias(name="task-service-cluster", parent=pulumi.resource.create_urn(*_FORMER_PARENT))],
            ),
        )
        self.register_outputs({"clusterName": self.cluster.name, "clusterArn": self.cluster.arn})
