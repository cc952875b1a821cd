"""Build a stack like ours inside moto and return the outputs `pulumi stack output` would give.

State moto cannot reach through the API (running task count, a DMS task becoming "ready") is set
explicitly and visibly here, never assumed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dms.models import dms_backends

SERVICE_TG = "task-service-tg"
ALARMS = ("task-service-ecs-cpu", "task-service-ecs-memory", "task-service-rds-cpu", "task-service-rds-connections", "task-service-rds-storage")
DMS_TABLES = ["public.tasks", "public.task_images", "public.task_tag", "public.scheduled_group_tasks", "public.scheduled_task_executions", "public.scheduled_task_tags"]


_CLIENTS: dict[tuple[str, str, str], Any] = {}


def client(service: str, region: str) -> Any:
    """Test-side clients, reused across tests: the endpoint and fake credentials never change."""
    key = (service, region, os.environ["AWS_ENDPOINT_URL"])
    if key not in _CLIENTS:
        _CLIENTS[key] = boto3.client(service, region_name=region)
    return _CLIENTS[key]


@dataclass
class Stack:
    region: str
    outputs: dict[str, Any]

    def client(self, service: str) -> Any:
        return client(service, self.region)

    def rule_weights(self) -> dict[str, int]:
        rule = self.client("elbv2").describe_rules(RuleArns=[self.outputs["listenerRuleArn"]])["Rules"][0]
        groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
        return {g["TargetGroupArn"]: g["Weight"] for g in groups}

    def set_rule_weight(self, service_weight: int) -> None:
        out = self.outputs
        self.client("elbv2").modify_rule(
            RuleArn=out["listenerRuleArn"],
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": out["monolithTargetGroupArn"], "Weight": 100 - service_weight},
                            {"TargetGroupArn": out["targetGroupArn"], "Weight": service_weight},
                        ]
                    },
                }
            ],
        )

    def dms_task(self) -> Any:
        """moto's own task object: moto never moves a new task to "ready", so tests do."""
        return dms_backends[DEFAULT_ACCOUNT_ID][self.region].replication_tasks[self.outputs["dmsReplicationTaskArn"]]


@dataclass
class Clients:
    region: str

    def client(self, service: str) -> Any:
        return client(service, self.region)


def build(region: str, monkeypatch: pytest.MonkeyPatch, canary_weight: int = 50, running: int = 2) -> Stack:
    session = Clients(region)
    ec2, elbv2 = session.client("ec2"), session.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "c"))
    ]
    service_sg = ec2.create_security_group(GroupName="task-service", Description="service", VpcId=vpc)["GroupId"]
    db_sg = ec2.create_security_group(GroupName="task-service-db", Description="db", VpcId=vpc)["GroupId"]

    alb = elbv2.create_load_balancer(Name="myteacher-alb", Subnets=subnets)["LoadBalancers"][0]
    monolith_tg = elbv2.create_target_group(Name="myteacher-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]
    service_tg = elbv2.create_target_group(
        Name=SERVICE_TG, Protocol="HTTP", Port=3001, VpcId=vpc, TargetType="ip", HealthCheckPath="/health"
    )["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=service_tg["TargetGroupArn"], Targets=[{"Id": "10.0.1.10", "Port": 3001}, {"Id": "10.0.2.10", "Port": 3001}])
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": monolith_tg["TargetGroupArn"]}],
    )["Listeners"][0]
    rule = elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/tasks/*"]}],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": monolith_tg["TargetGroupArn"], "Weight": 100 - canary_weight},
                        {"TargetGroupArn": service_tg["TargetGroupArn"], "Weight": canary_weight},
                    ]
                },
            }
        ],
        Tags=[{"Key": "CanaryTargetGroup", "Value": SERVICE_TG}],
    )["Rules"][0]

    ecs = session.client("ecs")
    ecs.create_cluster(clusterName="task-service-cluster")
    ecs.register_task_definition(
        family="task-service",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        containerDefinitions=[{"name": "task-service", "image": "task-service:latest", "portMappings": [{"containerPort": 3001}]}],
    )
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))  # moto reads it when the service is created
    ecs.create_service(cluster="task-service-cluster", serviceName="task-service", taskDefinition="task-service", desiredCount=2, launchType="FARGATE")
    monkeypatch.delenv("MOTO_ECS_SERVICE_RUNNING")
    session.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId="service/task-service-cluster/task-service",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=10,
    )

    db = session.client("rds").create_db_instance(
        DBInstanceIdentifier="task-service-db",
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        EngineVersion="16.4",
        DBName="task_service",
        MasterUsername="task_service_user",
        MasterUserPassword="a-long-enough-password",
        AllocatedStorage=100,
        MultiAZ=True,
        StorageEncrypted=True,
        BackupRetentionPeriod=7,
        EnablePerformanceInsights=True,
        VpcSecurityGroupIds=[db_sg],
    )["DBInstance"]

    cloudwatch = session.client("cloudwatch")
    topic = session.client("sns").create_topic(Name="task-service-alarms")["TopicArn"]
    for name in ALARMS:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=80,
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[topic],
        )
    cloudwatch.put_dashboard(DashboardName="TaskServiceMetrics", DashboardBody=json.dumps({"widgets": []}))

    secrets = session.client("secretsmanager")
    db_secret = secrets.create_secret(
        Name="task-service/db-password",
        SecretString=json.dumps(
            {"username": "task_service_user", "password": "a-long-enough-password", "host": db["Endpoint"]["Address"], "port": 5432, "dbname": "task_service", "engine": "postgres"}
        ),
    )["ARN"]
    cognito_secret = secrets.create_secret(Name="task-service/cognito-config", SecretString=json.dumps({"user_pool_id": "ap-northeast-1_x", "client_id": "abc"}))["ARN"]

    iam = session.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for role in ("task-service-execution-role", "task-service-task-role"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)

    dms = session.client("dms")
    instance = dms.create_replication_instance(ReplicationInstanceIdentifier="task-service-dms", ReplicationInstanceClass="dms.t3.medium", AllocatedStorage=50)[
        "ReplicationInstance"
    ]["ReplicationInstanceArn"]
    source = dms.create_endpoint(EndpointIdentifier="myteacher-source", EndpointType="source", EngineName="postgres", ServerName="monolith", Port=5432, DatabaseName="myteacher_production")["Endpoint"]["EndpointArn"]
    target = dms.create_endpoint(EndpointIdentifier="task-service-target", EndpointType="target", EngineName="postgres", ServerName=db["Endpoint"]["Address"], Port=5432, DatabaseName="task_service")["Endpoint"]["EndpointArn"]
    mappings = {"rules": [{"rule-type": "selection", "rule-id": str(i), "rule-name": t, "object-locator": {"schema-name": "public", "table-name": t.split(".")[1]}, "rule-action": "include"} for i, t in enumerate(DMS_TABLES, 1)]}
    task = dms.create_replication_task(
        ReplicationTaskIdentifier="task-service-migration",
        SourceEndpointArn=source,
        TargetEndpointArn=target,
        ReplicationInstanceArn=instance,
        MigrationType="full-load-and-cdc",
        TableMappings=json.dumps(mappings),
    )["ReplicationTask"]["ReplicationTaskArn"]

    address = db["Endpoint"]["Address"]
    outputs: dict[str, Any] = {
        "project": "task-service",
        "stack": "prod",
        "region": region,
        "dbInstanceId": "task-service-db",
        "dbEndpoint": f"{address}:5432",
        "dbAddress": address,
        "dbPort": 5432,
        "dbName": "task_service",
        "dbUsername": "task_service_user",
        "dbSecretArn": db_secret,
        "dbEngineVersion": "16.4",
        "dbSecurityGroupId": db_sg,
        "clusterName": "task-service-cluster",
        "serviceName": "task-service",
        "taskDefinitionFamily": "task-service",
        "ecrRepositoryUrl": f"123456789012.dkr.ecr.{region}.amazonaws.com/task-service",
        "logGroupName": "/ecs/task-service",
        "executionRoleName": "task-service-execution-role",
        "taskRoleName": "task-service-task-role",
        "serviceSecurityGroupId": service_sg,
        "autoscalingMin": 2,
        "autoscalingMax": 10,
        "listenerArn": listener["ListenerArn"],
        "listenerRuleArn": rule["RuleArn"],
        "listenerRulePriority": 10,
        "targetGroupArn": service_tg["TargetGroupArn"],
        "targetGroupName": SERVICE_TG,
        "monolithTargetGroupArn": monolith_tg["TargetGroupArn"],
        "canaryWeight": canary_weight,
        "dmsReplicationInstanceArn": instance,
        "dmsReplicationTaskArn": task,
        "dmsSourceEndpointArn": source,
        "dmsTargetEndpointArn": target,
        "dmsTables": DMS_TABLES,
        "alarmTopicArn": topic,
        "alarmNames": list(ALARMS),
        "dashboardName": "TaskServiceMetrics",
        "dashboardUrl": f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name=TaskServiceMetrics",
        "cognitoSecretArn": cognito_secret,
        "monolithDbAppUser": "myteacher_app_user",
    }
    built = Stack(region, outputs)
    built.dms_task().ready()
    return built
