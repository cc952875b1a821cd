"""task-service: carve the Task Service out of the MyTeacher monolith onto AWS.

Reads and validates the stack config, builds the components in the order the architecture reads (keys, alarm
topic, database, route, image repository and cluster, service, the load test's route when enabled, DMS, secret
rotation, and last the dashboard from the others' real outputs), and exports the stack outputs of `task_service.contract`, which the runbook consumes.
Nothing else belongs here.
"""

from typing import Any

import pulumi

import stack_config
from components import (
    AlbRoute,
    AlbRouteArgs,
    Dashboard,
    DashboardArgs,
    DmsEndpointSpec,
    DmsReplication,
    DmsReplicationArgs,
    EcsCluster,
    EcsClusterArgs,
    EncryptionKeys,
    EncryptionKeysArgs,
    FargateService,
    FargateServiceArgs,
    ImageRepository,
    ImageRepositoryArgs,
    LoadTestRoute,
    LoadTestRouteArgs,
    Monitoring,
    MonitoringArgs,
    RotatedSecret,
    SecretRotation,
    SecretRotationArgs,
    TaskServiceDb,
    TaskServiceDbArgs,
)
from components.alb_route import target_group_arn_suffix
from task_service import contract
from task_service.naming import Arns, Role

cfg = stack_config.load()
naming, tags, monolith, network = cfg.naming, cfg.tags, cfg.monolith, cfg.network
arns = Arns(partition=cfg.partition, region=cfg.region, account=cfg.account)
retention = cfg.log_retention_days
dms_event_rules = [naming.of(Role.DMS_TASK_EVENTS), naming.of(Role.DMS_INSTANCE_EVENTS)] if cfg.dms.enabled else []

keys = EncryptionKeys(
    "task-service-keys",
    EncryptionKeysArgs(
        naming=naming, arns=arns, log_groups=naming.log_groups(dms=cfg.dms.enabled), event_rules=bool(dms_event_rules), tags=tags
    ),
)
monitoring = Monitoring(
    "task-service-monitoring",
    MonitoringArgs(
        naming=naming,
        arns=arns,
        alarm_emails=cfg.alarm_emails,
        kms_key_arn=keys.telemetry.arn,
        event_rules=dms_event_rules,
        tags=tags,
    ),
)
alarm_topic_arn = monitoring.topic.arn

db = TaskServiceDb(
    "task-service-db",
    TaskServiceDbArgs(
        settings=cfg.db,
        naming=naming,
        vpc_id=network.vpc_id,
        subnet_ids=network.db_subnet_ids,
        alarm_topic_arn=alarm_topic_arn,
        kms_key_arn=keys.data.arn,
        logs_kms_key_arn=keys.telemetry.arn,
        log_retention_days=retention,
        recovery_window_days=cfg.secrets.recovery_window_days,
        tags=tags,
    ),
)

route = AlbRoute(
    "task-service-route",
    AlbRouteArgs(
        settings=cfg.route,
        naming=naming,
        vpc_id=network.vpc_id,
        listener_arn=monolith.listener_arn,
        monolith_target_group_arn=monolith.target_group_arn,
        canary_weight=cfg.canary_weight,
        alarm_topic_arn=alarm_topic_arn,
        container_port=cfg.service.container_port,
        health_check_path=cfg.service.health_check_path,
        tags=tags,
    ),
)

image = ImageRepository("task-service-image", ImageRepositoryArgs(naming=naming, tags=tags))
cluster = EcsCluster(
    "task-service-ecs",
    EcsClusterArgs(naming=naming, logs_kms_key_arn=keys.telemetry.arn, log_retention_days=retention, tags=tags),
)
service = FargateService(
    "task-service",
    FargateServiceArgs(
        service=cfg.service,
        autoscaling=cfg.autoscaling,
        cognito=cfg.cognito,
        naming=naming,
        region=cfg.region,
        cluster_arn=cluster.cluster.arn,
        cluster_name=cluster.cluster_name,
        vpc_id=network.vpc_id,
        subnet_ids=network.service_subnet_ids,
        alb_security_group_id=monolith.alb_security_group_id,
        target_group_arn=route.target_group.arn,
        listener_rule=route.listener_rule,
        db_host=db.instance.address,
        db_port=db.instance.port,
        db_name=cfg.db.name,
        app_db_secret_arn=db.app_secret.arn,
        app_db_secret_version=db.app_secret_version,
        secrets_kms_key_arn=keys.data.arn,
        logs_kms_key_arn=keys.telemetry.arn,
        log_retention_days=retention,
        recovery_window_days=cfg.secrets.recovery_window_days,
        alarm_topic_arn=alarm_topic_arn,
        tags=tags,
    ),
)
db.admit("service", service.security_group.id)

test_route = None
if cfg.test_route.enabled:
    test_route = LoadTestRoute(
        "task-service-test-route",
        LoadTestRouteArgs(
            settings=cfg.test_route,
            naming=naming,
            listener_arn=monolith.listener_arn,
            target_group_arn=route.target_group.arn,
            path_patterns=cfg.route.path_patterns,
            kms_key_arn=keys.data.arn,
            recovery_window_days=cfg.secrets.recovery_window_days,
            tags=tags,
        ),
    )

dms = None
if cfg.dms.enabled:
    dms = DmsReplication(
        "task-service-dms",
        DmsReplicationArgs(
            settings=cfg.dms,
            naming=naming,
            region=cfg.region,
            vpc_id=network.vpc_id,
            subnet_ids=network.service_subnet_ids,
            source=DmsEndpointSpec(
                database_name=monolith.db_name,
                secret_arn=monolith.db_secret_arn,
                security_group_id=monolith.db_security_group_id,
            ),
            target=DmsEndpointSpec(database_name=cfg.db.name, secret_arn=db.secret.arn, security_group_id=db.security_group.id),
            kms_key_arn=keys.data.arn,
            logs_kms_key_arn=keys.telemetry.arn,
            log_retention_days=retention,
            alarm_topic_arn=alarm_topic_arn,
            tags=tags,
        ),
    )
    db.admit("dms", dms.security_group.id)

rotation = SecretRotation(
    "task-service-rotation",
    SecretRotationArgs(
        settings=cfg.secrets,
        naming=naming,
        arns=arns,
        vpc_id=network.vpc_id,
        subnet_ids=network.service_subnet_ids,
        nat_gateway=network.nat_gateway,
        db_security_group_id=db.security_group.id,
        master=RotatedSecret(db.secret, db.secret_version),
        app=RotatedSecret(db.app_secret, db.app_secret_version),
        kms_key_arn=keys.data.arn,
        logs_kms_key_arn=keys.telemetry.arn,
        log_retention_days=retention,
        tags=tags,
    ),
)
db.admit("rotation", rotation.security_group.id)

dashboard = Dashboard(
    "task-service-metrics",
    DashboardArgs(
        naming=naming,
        region=cfg.region,
        cluster_name=cluster.cluster_name,
        service_name=service.service_name,
        db_instance_id=db.identifier,
        load_balancer_arn_suffix=route.load_balancer_arn_suffix,
        target_group_arn_suffix=route.target_group.arn_suffix,
        monolith_target_group_arn_suffix=pulumi.Output.from_input(monolith.target_group_arn).apply(target_group_arn_suffix),
        dms_replication_instance_id=dms.instance_id if dms else None,
        dms_task_id=dms.task_id if dms else None,
        tags=tags,
    ),
)

outputs: dict[contract.Output, Any] = {
    contract.PROJECT: stack_config.PROJECT,
    contract.STACK: cfg.stack,
    contract.REGION: cfg.region,
    contract.NAME_PREFIX: naming.prefix,
    contract.DB_INSTANCE_ID: db.instance.identifier,
    contract.DB_ENDPOINT: db.instance.endpoint,
    contract.DB_ADDRESS: db.instance.address,
    contract.DB_PORT: db.instance.port,
    contract.DB_NAME: cfg.db.name,
    contract.DB_USERNAME: cfg.db.username,
    contract.DB_SECRET_ARN: db.secret.arn,
    contract.DB_APP_USERNAME: cfg.db.app_username,
    contract.DB_APP_SECRET_ARN: db.app_secret.arn,
    contract.DB_ROTATION_FUNCTION_ARN: rotation.master_function_arn,
    contract.DB_APP_ROTATION_FUNCTION_ARN: rotation.app_function_arn,
    contract.SECRET_ROTATION_DAYS: cfg.secrets.rotation_days,
    contract.DB_ENGINE_VERSION: db.instance.engine_version_actual,
    contract.DB_SECURITY_GROUP_ID: db.security_group.id,
    contract.CLUSTER_NAME: cluster.cluster.name,
    # Planned names while the stack is parked (no image yet): the service and family appear with the image.
    contract.SERVICE_NAME: service.live_service_name,
    contract.TASK_DEFINITION_FAMILY: service.live_task_family,
    contract.ECR_REPOSITORY_URL: image.repository.repository_url,
    contract.LOG_GROUP_NAME: service.log_group.name,
    contract.EXECUTION_ROLE_NAME: service.execution_role.name,
    contract.TASK_ROLE_NAME: service.task_role.name,
    contract.SERVICE_SECURITY_GROUP_ID: service.security_group.id,
    contract.AUTOSCALING_MIN: cfg.autoscaling.min,
    contract.AUTOSCALING_MAX: cfg.autoscaling.max,
    contract.COGNITO_SECRET_ARN: service.cognito_secret.arn,
    contract.LISTENER_ARN: monolith.listener_arn,
    contract.LISTENER_RULE_ARN: route.listener_rule.arn,
    contract.LISTENER_RULE_PRIORITY: cfg.route.priority,
    contract.TARGET_GROUP_ARN: route.target_group.arn,
    contract.TARGET_GROUP_NAME: route.target_group.name,
    contract.MONOLITH_TARGET_GROUP_ARN: monolith.target_group_arn,
    contract.CANARY_WEIGHT: cfg.canary_weight,
    contract.MONOLITH_DB_HOST: monolith.db_host,
    contract.MONOLITH_DB_NAME: monolith.db_name,
    contract.MONOLITH_DB_APP_USER: monolith.db_app_user,
    contract.ALARM_TOPIC_ARN: alarm_topic_arn,
    contract.ALARM_NAMES: pulumi.Output.all(db.alarm_names, route.alarm_names, service.alarm_names).apply(
        lambda groups: sorted(name for group in groups for name in group)
    ),
    contract.DASHBOARD_NAME: dashboard.dashboard.dashboard_name,
    contract.DASHBOARD_URL: dashboard.url,
    contract.LOADTEST_RESULT_PARAMETER: naming.of(Role.LOADTEST_RESULT),
}
if dms is not None:
    outputs |= {
        contract.DMS_REPLICATION_INSTANCE_ARN: dms.replication_instance.replication_instance_arn,
        contract.DMS_REPLICATION_TASK_ARN: dms.replication_task.replication_task_arn,
        contract.DMS_SOURCE_ENDPOINT_ARN: dms.source_endpoint.endpoint_arn,
        contract.DMS_TARGET_ENDPOINT_ARN: dms.target_endpoint.endpoint_arn,
        contract.DMS_TABLES: dms.tables,
    }
if test_route is not None:
    outputs |= {
        contract.TEST_ROUTE_RULE_ARN: test_route.listener_rule.arn,
        contract.TEST_ROUTE_SECRET_ARN: test_route.secret.arn,
    }
contract.check_exports(outputs, dms_enabled=dms is not None, test_route_enabled=test_route is not None)
for output, value in outputs.items():
    pulumi.export(output.name, pulumi.Output.secret(value) if output.secret else value)
