"""Compliant resources in wire form (camelCase inputs, as the engine sends them), one factory per resource.

They follow the program's contract (names, types, property names), so a failing case is "the compliant resource
with one field changed". `prod_stack()` is the whole prod estate the pack sees during a preview.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

from preview.analyzer_requests import Resource, make_urn
from preview.wire import UNKNOWN

PROJECT = "task-service"
REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
LISTENER_ARN = (f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/myteacher-alb/"
                "50dc6c495c0c9188/0467ef3c8400ae65")
MONOLITH_TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/myteacher-app-tg/73e2d6bc24d8a067"
TASK_TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/task-service-tg/1d2b4a0eea7c14b0"
KMS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
SNS_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:task-service-alarms"
TAGS = {"Project": "myteacher", "Service": "task-service", "Environment": "prod", "Owner": "platform-team"}

RDS = "aws:rds/instance:Instance"
KMS = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ECR = "aws:ecr/repository:Repository"
ECS_SERVICE = "aws:ecs/service:Service"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
DMS_INSTANCE = "aws:dms/replicationInstance:ReplicationInstance"
DMS_ENDPOINT = "aws:dms/endpoint:Endpoint"
DMS_TASK = "aws:dms/replicationTask:ReplicationTask"


def rds(**changes: Any) -> dict[str, Any]:
    props = {
        "engine": "postgres",
        "engineVersion": "16",
        "instanceClass": "db.t3.medium",
        "allocatedStorage": 100,
        "storageType": "gp3",
        "storageEncrypted": True,
        "kmsKeyId": KMS_ARN,
        "multiAz": True,
        "backupRetentionPeriod": 7,
        "backupWindow": "18:00-19:00",
        "maintenanceWindow": "sun:19:30-sun:20:30",
        "deletionProtection": True,
        "skipFinalSnapshot": False,
        "finalSnapshotIdentifier": "task-service-db-final",
        "copyTagsToSnapshot": True,
        "performanceInsightsEnabled": True,
        "performanceInsightsKmsKeyId": KMS_ARN,
        "performanceInsightsRetentionPeriod": 7,
        "monitoringInterval": 60,
        "monitoringRoleArn": f"arn:aws:iam::{ACCOUNT}:role/task-service-rds-monitoring",
        "publiclyAccessible": False,
        "iamDatabaseAuthenticationEnabled": True,
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
        "dbName": "task_service",
        "username": "task_service_user",
        "tags": dict(TAGS),
    }
    return {**props, **changes}


def kms_key(**changes: Any) -> dict[str, Any]:
    return {"description": "task-service data", "enableKeyRotation": True, "tags": dict(TAGS), **changes}


def secret(**changes: Any) -> dict[str, Any]:
    return {"name": "task-service/db-password", "kmsKeyId": KMS_ARN, "tags": dict(TAGS), **changes}


def log_group(**changes: Any) -> dict[str, Any]:
    return {"name": "/ecs/task-service", "retentionInDays": 90, "kmsKeyId": KMS_ARN, "tags": dict(TAGS), **changes}


def ecr(**changes: Any) -> dict[str, Any]:
    return {
        "name": "task-service",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "AES256"}],
        "imageTagMutability": "IMMUTABLE",
        "tags": dict(TAGS),
        **changes,
    }


def ecs_service(**changes: Any) -> dict[str, Any]:
    return {
        "name": "task-service",
        "launchType": "FARGATE",
        "desiredCount": 2,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "networkConfiguration": {"assignPublicIp": False, "subnets": ["subnet-0a11b22c33d44e55f"],
                                 "securityGroups": [UNKNOWN]},
        "tags": dict(TAGS),
        **changes,
    }


def scaling_target(**changes: Any) -> dict[str, Any]:
    return {
        "minCapacity": 2,
        "maxCapacity": 10,
        "serviceNamespace": "ecs",
        "scalableDimension": "ecs:service:DesiredCount",
        "resourceId": "service/task-service-cluster/task-service",
        **changes,
    }


def security_group(**changes: Any) -> dict[str, Any]:
    return {"name": "task-service-db", "vpcId": "vpc-0a1b2c3d4e5f60718", "description": "db", "tags": dict(TAGS),
            **changes}


def ingress_rule(**changes: Any) -> dict[str, Any]:
    return {"securityGroupId": UNKNOWN, "referencedSecurityGroupId": UNKNOWN, "ipProtocol": "tcp",
            "fromPort": 5432, "toPort": 5432, "tags": dict(TAGS), **changes}


def egress_rule(**changes: Any) -> dict[str, Any]:
    return {"securityGroupId": UNKNOWN, "ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0", "tags": dict(TAGS),
            **changes}


def target_group(**changes: Any) -> dict[str, Any]:
    return {
        "name": "task-service-tg",
        "port": 3001,
        "protocol": "HTTP",
        "targetType": "ip",
        "vpcId": "vpc-0a1b2c3d4e5f60718",
        "healthCheck": {"enabled": True, "path": "/health", "interval": 30, "timeout": 5, "healthyThreshold": 2,
                        "unhealthyThreshold": 3, "matcher": "200"},
        "tags": dict(TAGS),
        **changes,
    }


def listener_rule(weight: float = 0, *, task_arn: Optional[str] = UNKNOWN, **changes: Any) -> dict[str, Any]:
    """The canary rule; the new group's ARN is unknown in a preview of a new stack."""
    return {
        "listenerArn": LISTENER_ARN,
        "priority": 10,
        "conditions": [{"pathPattern": {"values": ["/api/tasks", "/api/tasks/*"]}}],
        "actions": [{
            "type": "forward",
            "forward": {
                "targetGroups": [
                    {"arn": MONOLITH_TG_ARN, "weight": 100 - weight},
                    {"arn": task_arn, "weight": weight},
                ],
                "stickiness": {"enabled": False, "duration": 1},
            },
        }],
        "tags": {**TAGS, "CanaryTargetGroup": "task-service-tg"},
        **changes,
    }


def alarm_5xx(**changes: Any) -> dict[str, Any]:
    dims = {"TargetGroup": UNKNOWN, "LoadBalancer": "app/myteacher-alb/50dc6c495c0c9188"}
    return {
        "name": "task-service-5xx-rate",
        "comparisonOperator": "GreaterThanThreshold",
        "evaluationPeriods": 3,
        "threshold": 1,
        "alarmActions": [SNS_ARN],
        "metricQueries": [
            {"id": "errors", "metric": {"metricName": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB",
                                        "stat": "Sum", "period": 60, "dimensions": dims}},
            {"id": "requests", "metric": {"metricName": "RequestCount", "namespace": "AWS/ApplicationELB",
                                          "stat": "Sum", "period": 60, "dimensions": dims}},
            {"id": "rate", "expression": "100 * errors / MAX([requests, 1])", "returnData": True},
        ],
        "tags": dict(TAGS),
        **changes,
    }


def alarm_latency(**changes: Any) -> dict[str, Any]:
    return {
        "name": "task-service-p95-latency",
        "comparisonOperator": "GreaterThanThreshold",
        "evaluationPeriods": 3,
        "metricName": "TargetResponseTime",
        "namespace": "AWS/ApplicationELB",
        "extendedStatistic": "p95",
        "period": 60,
        "threshold": 0.5,
        "alarmActions": [SNS_ARN],
        "dimensions": {"TargetGroup": UNKNOWN, "LoadBalancer": "app/myteacher-alb/50dc6c495c0c9188"},
        "tags": dict(TAGS),
        **changes,
    }


def alarm_simple(metric: str, namespace: str, threshold: float, **changes: Any) -> dict[str, Any]:
    return {"metricName": metric, "namespace": namespace, "statistic": "Average", "threshold": threshold,
            "comparisonOperator": "GreaterThanThreshold", "evaluationPeriods": 2, "period": 300,
            "alarmActions": [SNS_ARN], "tags": dict(TAGS), **changes}


def dms_instance(**changes: Any) -> dict[str, Any]:
    return {"replicationInstanceId": "task-service-dms", "replicationInstanceClass": "dms.t3.medium",
            "allocatedStorage": 50, "publiclyAccessible": False, "kmsKeyArn": KMS_ARN, "multiAz": True,
            "tags": dict(TAGS), **changes}


def dms_endpoint(**changes: Any) -> dict[str, Any]:
    return {"endpointId": "task-service-source", "endpointType": "source", "engineName": "postgres",
            "sslMode": "require", "databaseName": "myteacher_production",
            "secretsManagerArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:myteacher/db-credentials-AbCdEf",
            "secretsManagerAccessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/task-service-dms-secrets",
            "tags": dict(TAGS), **changes}


def dms_task(**changes: Any) -> dict[str, Any]:
    return {"replicationTaskId": "task-service-cdc", "migrationType": "full-load-and-cdc",
            "startReplicationTask": False, "tags": dict(TAGS), **changes}


def resource(type_: str, name: str, props: dict[str, Any], stack: str = "prod") -> Resource:
    return Resource(urn=make_urn(PROJECT, stack, type_, name), type=type_, name=name, properties=props)


STACK_FACTORIES: list[tuple[str, str, Callable[..., dict[str, Any]]]] = [
    (KMS, "task-service-key", kms_key),
    (SECRET, "task-service-db-password", secret),
    (SECRET, "task-service-cognito-config", secret),
    (LOG_GROUP, "task-service-logs", log_group),
    (RDS, "task-service-db", rds),
    (ECR, "task-service", ecr),
    (SG, "task-service-db-sg", security_group),
    (SG, "task-service-service-sg", security_group),
    (INGRESS, "task-service-db-from-service", ingress_rule),
    (INGRESS, "task-service-from-alb", lambda: ingress_rule(fromPort=3001, toPort=3001)),
    (EGRESS, "task-service-egress", egress_rule),
    (TARGET_GROUP, "task-service-tg", target_group),
    (ECS_SERVICE, "task-service", ecs_service),
    (SCALING_TARGET, "task-service-scaling", scaling_target),
    (ALARM, "task-service-5xx-rate", alarm_5xx),
    (ALARM, "task-service-p95-latency", alarm_latency),
    (ALARM, "task-service-unhealthy-hosts",
     lambda: alarm_simple("UnHealthyHostCount", "AWS/ApplicationELB", 0, statistic="Maximum")),
    (ALARM, "task-service-cpu", lambda: alarm_simple("CPUUtilization", "AWS/ECS", 80)),
    (ALARM, "task-service-memory", lambda: alarm_simple("MemoryUtilization", "AWS/ECS", 85)),
    (ALARM, "task-service-db-cpu", lambda: alarm_simple("CPUUtilization", "AWS/RDS", 70)),
    (ALARM, "task-service-db-connections", lambda: alarm_simple("DatabaseConnections", "AWS/RDS", 80)),
    (DMS_INSTANCE, "task-service-dms", dms_instance),
    (DMS_ENDPOINT, "task-service-dms-source", dms_endpoint),
    (DMS_ENDPOINT, "task-service-dms-target", lambda: dms_endpoint(endpointType="target")),
    (DMS_TASK, "task-service-dms-task", dms_task),
]


def prod_stack(weight: float = 0, task_arn: Optional[str] = UNKNOWN) -> list[Resource]:
    """Every resource of the prod estate, compliant, with the canary at `weight`."""
    resources = [resource(t, n, factory()) for t, n, factory in STACK_FACTORIES]
    resources.append(resource(LISTENER_RULE, "task-service-rule", listener_rule(weight, task_arn=task_arn)))
    return resources


def replace(resources: list[Resource], name: str, props: dict[str, Any]) -> list[Resource]:
    """A copy of the stack with one resource's properties swapped."""
    out = []
    for r in resources:
        if r.name == name:
            r = Resource(urn=r.urn, type=r.type, name=r.name, properties=props)
        out.append(r)
    return out


def deep(props: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(props)
