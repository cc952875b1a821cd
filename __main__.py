"""task-service: carve the Task Service out of the MyTeacher monolith onto AWS.

Reads and validates the stack config, builds the components, wires them together and exports the outputs the
runbook (`python -m runbook`) consumes. Nothing else belongs here.
"""

from typing import Callable

import pulumi

import stack_config
from components import (
    AlbRoute,
    AlbRouteArgs,
    DmsEndpointSpec,
    DmsReplication,
    DmsReplicationArgs,
    FargateService,
    FargateServiceArgs,
    Monitoring,
    MonitoringArgs,
    TaskServiceDb,
    TaskServiceDbArgs,
)
from components.alb_route import load_balancer_arn_suffix, target_group_arn_suffix

cfg = stack_config.load()
tags = {**cfg.tags, "ManagedBy": "pulumi", "PulumiStack": f"{stack_config.PROJECT}/{cfg.stack}"}
monolith = cfg.monolith

# The monitoring topic comes first (every alarm needs it); the dashboard and the DB's ingress rules need things
# created later, so they receive deferred outputs resolved below.
Resolver = Callable[[pulumi.Output[str]], None]


def deferred_id() -> tuple[pulumi.Output[str], Resolver]:
    return pulumi.deferred_output()


new_tg_suffix, resolve_new_tg_suffix = deferred_id()
db_clients: dict[str, pulumi.Output[str]] = {}
resolve_db_client: dict[str, Resolver] = {}
for client in ("service", "dms") if cfg.dms.enabled else ("service",):
    db_clients[client], resolve_db_client[client] = deferred_id()

dms_task_id = f"task-service-{cfg.dms.migration_type}" if cfg.dms.enabled else None
monitoring = Monitoring(
    "task-service-monitoring",
    MonitoringArgs(
        region=cfg.region,
        alarm_emails=cfg.alarm_emails,
        cluster_name="task-service-cluster",
        service_name="task-service",
        db_instance_id="task-service-db",
        load_balancer_arn_suffix=pulumi.Output.from_input(monolith.listener_arn).apply(load_balancer_arn_suffix),
        target_group_arn_suffix=new_tg_suffix,
        monolith_target_group_arn_suffix=pulumi.Output.from_input(monolith.target_group_arn).apply(target_group_arn_suffix),
        dms_replication_instance_id="task-service-dms" if cfg.dms.enabled else None,
        dms_task_id=dms_task_id,
        tags=tags,
    ),
)
alarm_topic_arn = monitoring.topic.arn

db = TaskServiceDb(
    "task-service-db",
    TaskServiceDbArgs(
        config=cfg.db,
        vpc_id=cfg.network.vpc_id,
        subnet_ids=cfg.network.db_subnet_ids,
        client_security_group_ids=db_clients,
        alarm_topic_arn=alarm_topic_arn,
        tags=tags,
    ),
)

route = AlbRoute(
    "task-service-route",
    AlbRouteArgs(
        vpc_id=cfg.network.vpc_id,
        listener_arn=monolith.listener_arn,
        monolith_target_group_arn=monolith.target_group_arn,
        canary_weight=cfg.canary_weight,
        alarm_topic_arn=alarm_topic_arn,
        container_port=cfg.service.container_port,
        health_check_path=cfg.service.health_check_path,
        priority=cfg.route.priority,
        path_patterns=cfg.route.path_patterns,
        tags=tags,
    ),
)
resolve_new_tg_suffix(route.target_group.arn_suffix)

service = FargateService(
    "task-service",
    FargateServiceArgs(
        service=cfg.service,
        autoscaling=cfg.autoscaling,
        cognito=cfg.cognito,
        region=cfg.region,
        vpc_id=cfg.network.vpc_id,
        subnet_ids=cfg.network.service_subnet_ids,
        alb_security_group_id=monolith.alb_security_group_id,
        target_group_arn=route.target_group.arn,
        listener_rule=route.listener_rule,
        db_host=db.instance.address,
        db_port=db.instance.port,
        db_name=cfg.db.name,
        db_secret_arn=db.secret.arn,
        secrets_kms_key_arn=db.kms_key.arn,
        alarm_topic_arn=alarm_topic_arn,
        tags=tags,
    ),
)
resolve_db_client["service"](service.security_group.id)

dms = None
if cfg.dms.enabled:
    dms = DmsReplication(
        "task-service-dms",
        DmsReplicationArgs(
            config=cfg.dms,
            region=cfg.region,
            vpc_id=cfg.network.vpc_id,
            subnet_ids=cfg.network.service_subnet_ids,
            source=DmsEndpointSpec(
                database_name=monolith.db_name,
                secret_arn=monolith.db_secret_arn,
                security_group_id=monolith.db_security_group_id,
            ),
            target=DmsEndpointSpec(
                database_name=cfg.db.name,
                secret_arn=db.secret.arn,
                security_group_id=db.security_group.id,
            ),
            kms_key_arn=db.kms_key.arn,
            alarm_topic_arn=alarm_topic_arn,
            tags=tags,
        ),
    )
    resolve_db_client["dms"](dms.security_group.id)

pulumi.export("project", stack_config.PROJECT)
pulumi.export("stack", cfg.stack)
pulumi.export("region", cfg.region)

pulumi.export("dbInstanceId", db.instance.identifier)
pulumi.export("dbEndpoint", db.instance.endpoint)
pulumi.export("dbAddress", db.instance.address)
pulumi.export("dbPort", db.instance.port)
pulumi.export("dbName", cfg.db.name)
pulumi.export("dbUsername", cfg.db.username)
pulumi.export("dbSecretArn", db.secret.arn)
pulumi.export("dbEngineVersion", db.instance.engine_version_actual)
pulumi.export("dbSecurityGroupId", db.security_group.id)

pulumi.export("clusterName", service.cluster.name)
pulumi.export("serviceName", service.service.name)
pulumi.export("taskDefinitionFamily", service.task_definition.family)
pulumi.export("ecrRepositoryUrl", service.repository.repository_url)
pulumi.export("logGroupName", service.log_group.name)
pulumi.export("executionRoleName", service.execution_role.name)
pulumi.export("taskRoleName", service.task_role.name)
pulumi.export("serviceSecurityGroupId", service.security_group.id)
pulumi.export("autoscalingMin", cfg.autoscaling.min)
pulumi.export("autoscalingMax", cfg.autoscaling.max)
pulumi.export("cognitoSecretArn", service.cognito_secret.arn)

pulumi.export("listenerArn", monolith.listener_arn)
pulumi.export("listenerRuleArn", route.listener_rule.arn)
pulumi.export("listenerRulePriority", cfg.route.priority)
pulumi.export("targetGroupArn", route.target_group.arn)
pulumi.export("targetGroupName", route.target_group.name)
pulumi.export("monolithTargetGroupArn", monolith.target_group_arn)
pulumi.export("canaryWeight", cfg.canary_weight)

pulumi.export("monolithDbHost", monolith.db_host)
pulumi.export("monolithDbName", monolith.db_name)
pulumi.export("monolithDbAppUser", monolith.db_app_user)

pulumi.export("dmsReplicationInstanceArn", dms.replication_instance.replication_instance_arn if dms else None)
pulumi.export("dmsReplicationTaskArn", dms.replication_task.replication_task_arn if dms else None)
pulumi.export("dmsSourceEndpointArn", dms.source_endpoint.endpoint_arn if dms else None)
pulumi.export("dmsTargetEndpointArn", dms.target_endpoint.endpoint_arn if dms else None)
pulumi.export("dmsTables", dms.tables if dms else None)

pulumi.export("alarmTopicArn", alarm_topic_arn)
pulumi.export("alarmNames", pulumi.Output.all(db.alarm_names, route.alarm_names, service.alarm_names).apply(
    lambda groups: sorted(name for group in groups for name in group)
))
pulumi.export("dashboardName", monitoring.dashboard.dashboard_name)
pulumi.export("dashboardUrl", monitoring.dashboard_url)
