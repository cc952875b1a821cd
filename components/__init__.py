"""The Task Service's ComponentResources, one per file, each with the typed settings and args it owns."""

from components.alb_route import AlbRoute, AlbRouteArgs, RouteSettings
from components.dashboard import Dashboard, DashboardArgs
from components.database import DatabaseSettings, TaskServiceDb, TaskServiceDbArgs
from components.dms_replication import DmsEndpointSpec, DmsReplication, DmsReplicationArgs, DmsSettings
from components.ecs_cluster import EcsCluster, EcsClusterArgs
from components.fargate_service import (
    AutoscalingSettings,
    CognitoSettings,
    FargateService,
    FargateServiceArgs,
    ServiceSettings,
)
from components.image_repository import ImageRepository, ImageRepositoryArgs
from components.keys import EncryptionKeys, EncryptionKeysArgs
from components.loadtest_route import LoadTestRoute, LoadTestRouteArgs, LoadTestRouteSettings
from components.monitoring import Monitoring, MonitoringArgs
from components.secret_rotation import RotatedSecret, SecretRotation, SecretRotationArgs, SecretsSettings

__all__ = [
    "AlbRoute",
    "AlbRouteArgs",
    "AutoscalingSettings",
    "CognitoSettings",
    "Dashboard",
    "DashboardArgs",
    "DatabaseSettings",
    "DmsEndpointSpec",
    "DmsReplication",
    "DmsReplicationArgs",
    "DmsSettings",
    "EcsCluster",
    "EcsClusterArgs",
    "EncryptionKeys",
    "EncryptionKeysArgs",
    "FargateService",
    "FargateServiceArgs",
    "ImageRepository",
    "ImageRepositoryArgs",
    "LoadTestRoute",
    "LoadTestRouteArgs",
    "LoadTestRouteSettings",
    "Monitoring",
    "MonitoringArgs",
    "RotatedSecret",
    "RouteSettings",
    "SecretRotation",
    "SecretRotationArgs",
    "SecretsSettings",
    "ServiceSettings",
    "TaskServiceDb",
    "TaskServiceDbArgs",
]
