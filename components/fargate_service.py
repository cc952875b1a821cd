"""FargateService: the Task Service container on ECS Fargate.

Creates, all parented to the component and named `<name>-...`:
- the ECR repository `task-service` (scan on push, AES256, immutable tags, lifecycle policy);
- the log group `/ecs/task-service` with retention and the cluster `task-service-cluster` (Container Insights);
- the Cognito config secret `task-service/cognito-config` (`{"user_pool_id", "client_id"}`);
- `task-service-execution-role` (ECS task execution policy plus read access to exactly the two secrets it
  injects) and `task-service-task-role` (no permissions: the app reaches AWS only through what it is given);
- the task definition (512 CPU / 1024 MB, port 3001, secrets injected, non-root, read-only root filesystem);
- a security group admitting only the ALB's security group on the container port;
- the service `task-service` (private subnets, no public IP, circuit breaker with rollback; the desired count is
  ignored after creation because autoscaling owns it);
- autoscaling (min/max from config, CPU and memory target tracking) and CPU/memory alarms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.common import assume_role_policy, metric_alarm
from stack_config import AutoscalingConfig, CognitoConfig, ServiceConfig


@dataclass
class FargateServiceArgs:
    """Inputs of FargateService."""

    service: ServiceConfig
    autoscaling: AutoscalingConfig
    cognito: CognitoConfig
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    """Private subnets; tasks get no public IP."""
    alb_security_group_id: pulumi.Input[str]
    """The only source admitted on the container port."""
    target_group_arn: pulumi.Input[str]
    listener_rule: pulumi.Resource
    """ECS refuses a target group not yet attached to a listener, so the service waits for the rule."""
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: str
    db_secret_arn: pulumi.Input[str]
    secrets_kms_key_arn: pulumi.Input[str]
    """Key encrypting the injected secrets; the execution role may decrypt with it via Secrets Manager only."""
    alarm_topic_arn: pulumi.Input[str]
    service_name: str = "task-service"
    cluster_name: str = "task-service-cluster"
    repository_name: str = "task-service"
    cognito_secret_name: str = "task-service/cognito-config"
    tags: Mapping[str, str] = field(default_factory=dict)


class FargateService(pulumi.ComponentResource):
    """ECR, cluster, least-privilege roles, task definition, service, autoscaling and alarms."""

    repository: aws.ecr.Repository
    log_group: aws.cloudwatch.LogGroup
    cluster: aws.ecs.Cluster
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    task_definition: aws.ecs.TaskDefinition
    security_group: aws.ec2.SecurityGroup
    service: aws.ecs.Service
    scaling_target: aws.appautoscaling.Target
    cognito_secret: aws.secretsmanager.Secret
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:fargate:FargateService", name, None, opts)
        svc = args.service
        scaling = args.autoscaling
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            tags=tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repo-lifecycle",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "expire untagged images after 7 days",
                            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": "keep the 30 newest images (rollback targets)",
                            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
            opts=child,
        )

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{args.service_name}",
            retention_in_days=svc.log_retention_days,
            tags=tags,
            opts=child,
        )
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=tags,
            opts=child,
        )

        self.cognito_secret = aws.secretsmanager.Secret(
            f"{name}-cognito-secret",
            name=args.cognito_secret_name,
            description="Cognito user pool and app client the Task Service verifies tokens against",
            kms_key_id=args.secrets_kms_key_arn,
            recovery_window_in_days=7,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-cognito-secret-version",
            secret_id=self.cognito_secret.id,
            secret_string=json.dumps({"user_pool_id": args.cognito.user_pool_id, "client_id": args.cognito.client_id}),
            opts=child,
        )

        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            name=f"{args.service_name}-execution-role",
            description="ECS agent: pull the image, write logs, read the two injected secrets",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-execution-policy",
            role=self.execution_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-secrets",
            name="read-injected-secrets",
            role=self.execution_role.id,
            policy=pulumi.Output.all(args.db_secret_arn, self.cognito_secret.arn, args.secrets_kms_key_arn).apply(
                lambda arns: _secrets_read_policy(arns[0], arns[1], arns[2], args.region)
            ),
            opts=child,
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            name=f"{args.service_name}-task-role",
            description="The Task Service's own AWS identity: no permissions until the app needs one",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            tags=tags,
            opts=child,
        )

        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=args.service_name,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(svc.cpu),
            memory=str(svc.memory),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name="tmp")],
            container_definitions=pulumi.Output.all(
                args.db_host, args.db_port, args.db_secret_arn, self.cognito_secret.arn, self.log_group.name
            ).apply(lambda v: _container_definitions(args, v[0], v[1], v[2], v[3], v[4])),
            tags=tags,
            opts=child,
        )

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{args.service_name}-sg",
            description=f"{args.service_name}: container port from the ALB only",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": f"{args.service_name}-sg"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-alb",
            security_group_id=self.security_group.id,
            referenced_security_group_id=args.alb_security_group_id,
            ip_protocol="tcp",
            from_port=svc.container_port,
            to_port=svc.container_port,
            description="container port from the monolith ALB",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress",
            security_group_id=self.security_group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="-1",
            description="ECR, Secrets Manager, CloudWatch, Cognito and the database",
            tags=tags,
            opts=child,
        )

        self.service = aws.ecs.Service(
            f"{name}-service",
            name=args.service_name,
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            launch_type="FARGATE",
            platform_version="LATEST",
            desired_count=svc.desired_count,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            health_check_grace_period_seconds=60,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids,
                security_groups=[self.security_group.id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=args.target_group_arn,
                    container_name=args.service_name,
                    container_port=svc.container_port,
                )
            ],
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=False,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.listener_rule],
                # Autoscaling owns the running count; a deploy must not reset it to the configured one.
                ignore_changes=["desired_count"],
            ),
        )

        self.scaling_target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", self.cluster.name, "/", self.service.name),
            min_capacity=scaling.min,
            max_capacity=scaling.max,
            tags=tags,
            opts=child,
        )
        for metric, target in (("CPU", scaling.cpu_target), ("Memory", scaling.memory_target)):
            aws.appautoscaling.Policy(
                f"{name}-scale-{metric.lower()}",
                name=f"{args.service_name}-{metric.lower()}-target-tracking",
                policy_type="TargetTrackingScaling",
                service_namespace=self.scaling_target.service_namespace,
                scalable_dimension=self.scaling_target.scalable_dimension,
                resource_id=self.scaling_target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=target,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=f"ECSServiceAverage{metric}Utilization",
                    ),
                    scale_out_cooldown=scaling.scale_out_cooldown,
                    scale_in_cooldown=scaling.scale_in_cooldown,
                ),
                opts=child,
            )

        dims = {"ClusterName": args.cluster_name, "ServiceName": args.service_name}
        alarms = [
            metric_alarm(
                f"{name}-{metric.lower()}-alarm",
                alarm_name=f"task-service-ecs-{metric.lower()}-high",
                description=f"ECS service {metric} above {threshold}% (warning)",
                namespace="AWS/ECS",
                metric_name=f"{metric}Utilization",
                dimensions=dims,
                statistic="Average",
                threshold=threshold,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=tags,
            )
            for metric, threshold in (("CPU", 80), ("Memory", 85))
        ]
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms])

        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "serviceName": self.service.name,
                "taskDefinitionFamily": self.task_definition.family,
                "repositoryUrl": self.repository.repository_url,
                "logGroupName": self.log_group.name,
                "executionRoleName": self.execution_role.name,
                "taskRoleName": self.task_role.name,
                "securityGroupId": self.security_group.id,
                "cognitoSecretArn": self.cognito_secret.arn,
                "alarmNames": self.alarm_names,
            }
        )


def _secrets_read_policy(db_secret_arn: str, cognito_secret_arn: str, kms_key_arn: str, region: str) -> str:
    """GetSecretValue on exactly the two injected secrets, and decrypt through Secrets Manager only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadInjectedSecrets",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": [db_secret_arn, cognito_secret_arn],
                },
                {
                    "Sid": "DecryptInjectedSecrets",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": kms_key_arn,
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                },
            ],
        }
    )


def _container_definitions(
    args: FargateServiceArgs, db_host: str, db_port: int, db_secret_arn: str, cognito_secret_arn: str, log_group: str
) -> str:
    svc = args.service
    port = svc.container_port
    container: dict[str, Any] = {
        "name": args.service_name,
        "image": svc.image,
        "essential": True,
        # A numeric uid: the image need not define a user, and the task never runs as root.
        "user": "1000:1000",
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp"}],
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
        "environment": [
            {"name": "PORT", "value": str(port)},
            {"name": "AWS_REGION", "value": args.region},
            {"name": "DB_HOST", "value": db_host},
            {"name": "DB_PORT", "value": str(db_port)},
            {"name": "DB_DATABASE", "value": args.db_name},
            {"name": "DB_SSLMODE", "value": "require"},
        ],
        "secrets": [
            {"name": "DB_USERNAME", "valueFrom": f"{db_secret_arn}:username::"},
            {"name": "DB_PASSWORD", "valueFrom": f"{db_secret_arn}:password::"},
            {"name": "COGNITO_USER_POOL_ID", "valueFrom": f"{cognito_secret_arn}:user_pool_id::"},
            {"name": "COGNITO_CLIENT_ID", "valueFrom": f"{cognito_secret_arn}:client_id::"},
        ],
        "healthCheck": {
            "command": ["CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{port}{svc.health_check_path} || exit 1"],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 30,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": args.region,
                "awslogs-stream-prefix": args.service_name,
            },
        },
    }
    return json.dumps([container], sort_keys=True)
