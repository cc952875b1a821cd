"""FargateService: the Task Service container on ECS Fargate.

Creates, all parented to the component and named `<name>-...`:
- the log group `/ecs/task-service`, encrypted with the telemetry key, with the stack's retention;
- the Cognito config secret `task-service/cognito-config` (`{"user_pool_id", "client_id"}`): static identifiers,
  nothing to rotate;
- `task-service-execution-role` (ECS task execution policy plus read access to exactly the two secrets it
  injects, decrypting through Secrets Manager only) and `task-service-task-role` (no permissions);
- a security group admitting only the ALB's security group on the container port;
- CPU/memory alarms;
and, once `service.image` is set:
- the task definition (512 CPU / 1024 MB, port 3001, the application's credentials and the Cognito config
  injected, non-root, read-only root filesystem);
- the service `task-service` (private subnets, no public IP, circuit breaker with rollback; the desired count is
  ignored after creation because autoscaling owns it), created only after both secrets hold a value;
- autoscaling (min/max from config, CPU and memory target tracking).

Without an image the stack is parked: everything the image needs exists (the repository, the cluster, the roles,
the route at weight 0) but nothing points at an image that cannot exist yet. The deploy that sets the image
creates the service, so `wait_for_steady_state` really waits for its first tasks. The image repository and the
cluster are components of their own (ImageRepository, EcsCluster). Names shown are prod's; every physical name
comes from the stack's Naming.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Annotated, Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws
from pydantic import Field, StrictInt, StrictStr, model_validator

from components.common import assume_role_policy, metric_alarm, secrets_read_policy
from components.settings import NON_EMPTY, Bool, Settings, invalid, matches, one_of
from task_service.naming import Naming, Role

# Fargate's valid (cpu -> memory MiB) pairs; anything else fails at RegisterTaskDefinition time.
FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}

_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
IMAGE = (
    rf"(?=[^@]{{1,255}}(?:@|$))(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127}(?:@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})"
)
"""An image reference as docker's distribution/reference grammar defines it (name at most 255 characters), with a
tag or a sha256 digest: anything else ECS refuses when it pulls, long after `pulumi up` said yes."""
HEALTH_CHECK_PATH = r"/[A-Za-z0-9._~%/?=+-]{0,1023}"
"""An absolute URL path of at most 1024 characters (the target group's limit) in URL-safe characters: the same
path goes into the container's health-check shell command."""


class ServiceSettings(Settings):
    """`task-service:service`: the container and its sizing."""

    image: Annotated[
        StrictStr,
        NON_EMPTY,
        matches(IMAGE, "an image with a tag or digest (registry/repository:tag or @sha256:...)"),
    ] | None = None
    """The container image (registry/repository:tag or @sha256:digest). Unset: the stack is parked (first deploy)."""
    wait_for_steady_state: Bool = True
    """Make `pulumi up` wait for the deployment to finish and fail when ECS rolls it back (required in production)."""
    cpu: Annotated[StrictInt, one_of(*FARGATE_MEMORY)] = 512
    memory: StrictInt = Field(1024, ge=512, le=30720)
    container_port: StrictInt = Field(3001, ge=1, le=65535)
    desired_count: StrictInt = Field(2, ge=0, le=100)
    """Initial task count; autoscaling owns it afterwards."""
    health_check_path: Annotated[
        StrictStr, NON_EMPTY, matches(HEALTH_CHECK_PATH, "a URL path starting with / (A-Z a-z 0-9 . _ ~ % / ? = + -, at most 1024)")
    ] = "/health"

    @property
    def parked(self) -> bool:
        """No image configured yet: no task definition, no service."""
        return self.image is None

    @model_validator(mode="after")
    def _fargate_size(self) -> "ServiceSettings":
        sizes = FARGATE_MEMORY[self.cpu]
        if self.memory not in sizes:
            raise invalid(
                f"must be one of Fargate's sizes for cpu {self.cpu} ({sizes.start}-{sizes.stop - 1} in steps of {sizes.step})",
                "memory",
                self.memory,
            )
        return self


class AutoscalingSettings(Settings):
    """`task-service:autoscaling`: capacity bounds and target tracking (seed 003: 70%, 60 s out, 300 s in)."""

    min: StrictInt = Field(2, ge=1, le=100)
    max: StrictInt = Field(10, ge=1, le=100)
    cpu_target: StrictInt = Field(70, ge=10, le=95)
    memory_target: StrictInt = Field(70, ge=10, le=95)
    scale_out_cooldown: StrictInt = Field(60, ge=0, le=3600)
    scale_in_cooldown: StrictInt = Field(300, ge=0, le=3600)

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscalingSettings":
        if self.max < self.min:
            raise invalid(f"must be >= min (min={self.min}, max={self.max})", "max")
        return self


class CognitoSettings(Settings):
    """`task-service:cognito`: the user pool and app client the service verifies tokens against."""

    user_pool_id: Annotated[
        StrictStr, NON_EMPTY, matches(r"[a-z]{2}-[a-z]+-\d_[0-9A-Za-z]+", "a Cognito user pool id such as ap-northeast-1_AbC123")
    ]
    client_id: Annotated[
        StrictStr, NON_EMPTY, matches(r"[0-9a-z]{20,128}", "a Cognito app client id (lower-case letters and digits)")
    ]


@dataclass
class FargateServiceArgs:
    """Inputs of FargateService."""

    service: ServiceSettings
    autoscaling: AutoscalingSettings
    cognito: CognitoSettings
    naming: Naming
    region: str
    cluster_arn: pulumi.Input[str]
    cluster_name: str
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
    app_db_secret_arn: pulumi.Input[str]
    """The application's credentials (never the master user's)."""
    app_db_secret_version: pulumi.Resource
    """Tasks start only once the credentials secret holds a value."""
    secrets_kms_key_arn: pulumi.Input[str]
    """Key encrypting the injected secrets; the execution role may decrypt with it via Secrets Manager only."""
    logs_kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    recovery_window_days: int
    alarm_topic_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class FargateService(pulumi.ComponentResource):
    """Least-privilege roles, task definition, service, autoscaling and alarms."""

    log_group: aws.cloudwatch.LogGroup
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    security_group: aws.ec2.SecurityGroup
    cognito_secret: aws.secretsmanager.Secret
    task_definition: aws.ecs.TaskDefinition | None
    service: aws.ecs.Service | None
    """None while parked (no image yet)."""
    alarm_names: pulumi.Output[list[str]]
    service_name: str
    task_family: str

    @property
    def live_service_name(self) -> pulumi.Input[str]:
        """The service's name: the resource's once it exists, the planned one while parked."""
        return self.service.name if self.service else self.service_name

    @property
    def live_task_family(self) -> pulumi.Input[str]:
        """The task definition's family: the resource's once it exists, the planned one while parked."""
        return self.task_definition.family if self.task_definition else self.task_family

    def __init__(self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:fargate:FargateService", name, None, opts)
        self._name = name
        self._tags = dict(args.tags)
        self._child = pulumi.ResourceOptions(parent=self)
        self.service_name = args.naming.of(Role.SERVICE)
        self.task_family = args.naming.of(Role.TASK_FAMILY)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.naming.of(Role.SERVICE_LOG_GROUP),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=self._tags,
            opts=self._child,
        )
        self.cognito_secret = aws.secretsmanager.Secret(
            f"{name}-cognito-secret",
            name=args.naming.of(Role.COGNITO_SECRET),
            description="Cognito user pool and app client the Task Service verifies tokens against (static: not rotated)",
            kms_key_id=args.secrets_kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            tags=self._tags,
            opts=self._child,
        )
        cognito_version = aws.secretsmanager.SecretVersion(
            f"{name}-cognito-secret-version",
            secret_id=self.cognito_secret.id,
            secret_string=json.dumps({"user_pool_id": args.cognito.user_pool_id, "client_id": args.cognito.client_id}),
            opts=self._child,
        )
        self._roles(args)
        self.security_group = self._security_group(args)
        self.task_definition, self.service = None, None
        if not args.service.parked:
            secrets_ready = [args.app_db_secret_version, cognito_version]
            self.task_definition = self._task_definition(args, secrets_ready)
            self.service = self._service(args, self.task_definition, secrets_ready)
            self._autoscaling(args, self.service)
        self.alarm_names = self._alarms(args)
        self.register_outputs(
            {
                "serviceName": self.live_service_name,
                "taskDefinitionFamily": self.live_task_family,
                "logGroupName": self.log_group.name,
                "executionRoleName": self.execution_role.name,
                "taskRoleName": self.task_role.name,
                "securityGroupId": self.security_group.id,
                "cognitoSecretArn": self.cognito_secret.arn,
                "alarmNames": self.alarm_names,
            }
        )

    def _roles(self, args: FargateServiceArgs) -> None:
        name, child = self._name, self._child
        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            name=args.naming.of(Role.EXECUTION_ROLE),
            description="ECS agent: pull the image, write logs, read the two injected secrets",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            tags=self._tags,
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
            policy=pulumi.Output.all(args.app_db_secret_arn, self.cognito_secret.arn, args.secrets_kms_key_arn).apply(
                lambda arns: secrets_read_policy(arns[:2], arns[2], args.region, sid="InjectedSecrets")
            ),
            opts=child,
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            name=args.naming.of(Role.TASK_ROLE),
            description="The Task Service's own AWS identity: no permissions until the app needs one",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            tags=self._tags,
            opts=child,
        )

    def _task_definition(self, args: FargateServiceArgs, secrets_ready: Sequence[pulumi.Resource]) -> aws.ecs.TaskDefinition:
        svc = args.service
        container = args.naming.of(Role.CONTAINER)
        return aws.ecs.TaskDefinition(
            f"{self._name}-task",
            family=self.task_family,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(svc.cpu),
            memory=str(svc.memory),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(operating_system_family="LINUX", cpu_architecture="X86_64"),
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name="tmp")],
            container_definitions=pulumi.Output.all(
                args.db_host, args.db_port, args.app_db_secret_arn, self.cognito_secret.arn, self.log_group.name
            ).apply(lambda v: _container_definitions(args, container, v[0], v[1], v[2], v[3], v[4])),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(secrets_ready)),
        )

    def _security_group(self, args: FargateServiceArgs) -> aws.ec2.SecurityGroup:
        name, port = self._name, args.service.container_port
        sg_name = args.naming.of(Role.SERVICE_SECURITY_GROUP)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=sg_name,
            description=f"{self.service_name}: container port from the ALB only",
            vpc_id=args.vpc_id,
            tags={**self._tags, "Name": sg_name},
            opts=self._child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-alb",
            security_group_id=group.id,
            referenced_security_group_id=args.alb_security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description="container port from the monolith ALB",
            tags=self._tags,
            opts=self._child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress",
            security_group_id=group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="-1",
            description="ECR, Secrets Manager, CloudWatch, Cognito and the database",
            tags=self._tags,
            opts=self._child,
        )
        return group

    def _service(
        self, args: FargateServiceArgs, task_definition: aws.ecs.TaskDefinition, secrets_ready: Sequence[pulumi.Resource]
    ) -> aws.ecs.Service:
        """The service, created only after the listener rule and both injected secrets' values exist.

        `wait_for_steady_state` makes the provider follow the ECS deployment to its end: a deployment the circuit
        breaker rolls back (tasks that cannot start: a missing image, unreadable secrets) fails `pulumi up` instead
        of reporting success. Production requires it (validated); dev may skip the wait to iterate faster.
        """
        svc = args.service
        return aws.ecs.Service(
            f"{self._name}-service",
            name=self.service_name,
            cluster=args.cluster_arn,
            task_definition=task_definition.arn,
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
                    container_name=args.naming.of(Role.CONTAINER),
                    container_port=svc.container_port,
                )
            ],
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=svc.wait_for_steady_state,
            tags=self._tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.listener_rule, *secrets_ready],
                # Autoscaling owns the running count; a deploy must not reset it to the configured one.
                ignore_changes=["desired_count"],
            ),
        )

    def _autoscaling(self, args: FargateServiceArgs, service: aws.ecs.Service) -> aws.appautoscaling.Target:
        scaling = args.autoscaling
        target = aws.appautoscaling.Target(
            f"{self._name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", service.name),
            min_capacity=scaling.min,
            max_capacity=scaling.max,
            tags=self._tags,
            opts=self._child,
        )
        for metric, goal, role in (
            ("CPU", scaling.cpu_target, Role.CPU_SCALING_POLICY),
            ("Memory", scaling.memory_target, Role.MEMORY_SCALING_POLICY),
        ):
            aws.appautoscaling.Policy(
                f"{self._name}-scale-{metric.lower()}",
                name=args.naming.of(role),
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=goal,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=f"ECSServiceAverage{metric}Utilization",
                    ),
                    scale_out_cooldown=scaling.scale_out_cooldown,
                    scale_in_cooldown=scaling.scale_in_cooldown,
                ),
                opts=self._child,
            )
        return target

    def _alarms(self, args: FargateServiceArgs) -> pulumi.Output[list[str]]:
        dims = {"ClusterName": args.cluster_name, "ServiceName": self.service_name}
        alarms = [
            metric_alarm(
                f"{self._name}-{metric.lower()}-alarm",
                alarm_name=args.naming.of(role),
                description=f"ECS service {metric} above {threshold}% (warning)",
                namespace="AWS/ECS",
                metric_name=f"{metric}Utilization",
                dimensions=dims,
                statistic="Average",
                threshold=threshold,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=self._tags,
            )
            for metric, threshold, role in (("CPU", 80, Role.ALARM_ECS_CPU), ("Memory", 85, Role.ALARM_ECS_MEMORY))
        ]
        return pulumi.Output.all(*[a.name for a in alarms])


def _container_definitions(
    args: FargateServiceArgs, name: str, db_host: str, db_port: int, db_secret_arn: str, cognito_secret_arn: str, log_group: str
) -> str:
    svc = args.service
    port = svc.container_port
    container: dict[str, Any] = {
        "name": name,
        "image": str(svc.image),
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
            "command": ["CMD-SHELL", f"wget -q -O /dev/null {shlex.quote(f'http://127.0.0.1:{port}{svc.health_check_path}')} || exit 1"],
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
                "awslogs-stream-prefix": name,
            },
        },
    }
    return json.dumps([container], sort_keys=True)
