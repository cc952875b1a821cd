"""The Task Service's ComponentResources, one per file."""

from components.alb_route import AlbRoute, AlbRouteArgs
from components.database import TaskServiceDb, TaskServiceDbArgs
from components.dms_replication import DmsEndpointSpec, DmsReplication, DmsReplicationArgs
from components.fargate_service import FargateService, FargateServiceArgs
from components.monitoring import Monitoring, MonitoringArgs

__all__ = [
    "AlbRoute",
    "AlbRouteArgs",
    "DmsEndpointSpec",
    "DmsReplication",
    "DmsReplicationArgs",
    "FargateService",
    "FargateServiceArgs",
    "Monitoring",
    "MonitoringArgs",
    "TaskServiceDb",
    "TaskServiceDbArgs",
]
