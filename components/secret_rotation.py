"""SecretRotation: both database secrets rotated by AWS's own rotation functions, on a schedule from config.

Creates, all parented to the component and named `<name>-...`:
- a security group for the rotation functions: out to the database on 5432 (the database admits it, see
  `TaskServiceDb.admit`) and to Secrets Manager on 443;
- when the private subnets have no NAT gateway (`network.natGateway: false`), an interface VPC endpoint for Secrets
  Manager with private DNS, admitting only the rotation functions, so the functions' default endpoint resolves to it;
- per secret, AWS's rotation application from the Serverless Application Repository, deployed in the private
  subnets with the data key passed in (its generated role may then decrypt through Secrets Manager), its log group
  `/aws/lambda/<function>` created first (encrypted, with the stack's retention), and the rotation schedule:
  - `task-service/db-password`, the master user: `SecretsManagerRDSPostgreSQLRotationSingleUser`, which keeps every
    key of the secret (username, password, host, port, dbname, engine: DMS reads it as is);
  - `task-service/db-app-credentials`, the application's role: `SecretsManagerRDSPostgreSQLRotationMultiUser`,
    alternating `<role>` and `<role>_clone` with the master secret (`masterarn`), so running tasks keep valid
    credentials for a whole rotation period.
The first rotation waits for the schedule: the application role exists only once the schema step ran (see
the README's "First deploy to a new account", which rotates both once by hand and lets `runbook verify` check the result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Mapping, Sequence

import pulumi
import pulumi_aws as aws
from pydantic import Field, StrictInt, model_validator

from components.settings import Settings, invalid
from task_service.naming import Arns, Naming, Role

APPLICATIONS: dict[str, tuple[str, str]] = {
    "aws": ("arn:aws:serverlessrepo:us-east-1:297356227824:applications", "1.1.671"),
    "aws-cn": ("arn:aws-cn:serverlessrepo:cn-north-1:193023089310:applications", "1.1.440"),
    "aws-us-gov": ("arn:aws-us-gov:serverlessrepo:us-gov-west-1:023102451235:applications", "1.1.397"),
}
"""Where AWS publishes its rotation applications, and the pinned version, per partition (as the AWS CDK pins them)."""
SINGLE_USER = "SecretsManagerRDSPostgreSQLRotationSingleUser"
MULTI_USER = "SecretsManagerRDSPostgreSQLRotationMultiUser"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]
"""The applications create the function's role and the permission letting Secrets Manager invoke it."""


class SecretsSettings(Settings):
    """`task-service:secrets`: how long a deleted secret can be restored, and how often the passwords rotate."""

    recovery_window_days: StrictInt = 30
    """0 (deleted at once, e.g. dev) or 7-30, what Secrets Manager accepts."""
    rotation_days: Annotated[StrictInt, Field(ge=1, le=365)] = 30

    @model_validator(mode="after")
    def _recovery_window(self) -> "SecretsSettings":
        if self.recovery_window_days != 0 and not 7 <= self.recovery_window_days <= 30:
            raise invalid("must be 0 or between 7 and 30 (what Secrets Manager accepts)", "recoveryWindowDays", self.recovery_window_days)
        return self


@dataclass
class RotatedSecret:
    """One secret to rotate, and what the rotation must wait for."""

    secret: aws.secretsmanager.Secret
    version: aws.secretsmanager.SecretVersion


@dataclass
class SecretRotationArgs:
    """Inputs of SecretRotation."""

    settings: SecretsSettings
    naming: Naming
    arns: Arns
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    """The private subnets the functions run in."""
    nat_gateway: bool
    """The subnets reach AWS APIs through a NAT gateway; without one the component adds the endpoint."""
    db_security_group_id: pulumi.Input[str]
    master: RotatedSecret
    app: RotatedSecret
    kms_key_arn: pulumi.Input[str]
    """The data key, encrypting both secrets."""
    logs_kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


class SecretRotation(pulumi.ComponentResource):
    """Rotation functions in the private subnets and both rotation schedules."""

    security_group: aws.ec2.SecurityGroup
    master_function_arn: str
    """The single-user function's ARN, known before it exists (the runbook's `verify` compares the live one)."""
    app_function_arn: str
    """The alternating-users function's ARN."""

    def __init__(self, name: str, args: SecretRotationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:secrets:SecretRotation", name, None, opts)
        self._name = name
        self._tags = dict(args.tags)
        self._child = pulumi.ResourceOptions(parent=self)
        self.master_function_arn = args.arns.function(args.naming.of(Role.MASTER_ROTATION_FUNCTION))
        self.app_function_arn = args.arns.function(args.naming.of(Role.APP_ROTATION_FUNCTION))
        self.security_group, endpoint = self._network(args)
        single = self._function(
            args, "master", SINGLE_USER, (Role.MASTER_ROTATION_FUNCTION, Role.MASTER_ROTATION_STACK, Role.MASTER_ROTATION_LOG_GROUP),
            {}, endpoint,
        )
        multi = self._function(
            args, "app", MULTI_USER, (Role.APP_ROTATION_FUNCTION, Role.APP_ROTATION_STACK, Role.APP_ROTATION_LOG_GROUP),
            {"masterSecretArn": args.master.secret.arn, "masterSecretKmsKeyArn": args.kms_key_arn}, endpoint,
        )
        self._schedule(args, "master", args.master, self.master_function_arn, single)
        self._schedule(args, "app", args.app, self.app_function_arn, multi)
        self.register_outputs(
            {"securityGroupId": self.security_group.id, "rotationDays": args.settings.rotation_days}
        )

    def _network(self, args: SecretRotationArgs) -> tuple[aws.ec2.SecurityGroup, list[pulumi.Resource]]:
        """The functions' security group, and the Secrets Manager endpoint when the subnets have no NAT."""
        sg_name = args.naming.of(Role.ROTATION_SECURITY_GROUP)
        group = aws.ec2.SecurityGroup(
            f"{self._name}-sg",
            name=sg_name,
            description=f"{sg_name}: secret rotation functions, to the database and Secrets Manager only",
            vpc_id=args.vpc_id,
            tags={**self._tags, "Name": sg_name},
            opts=self._child,
        )
        self._egress("to-db", group, 5432, "PostgreSQL to the Task Service database", referenced=args.db_security_group_id)
        if args.nat_gateway:
            self._egress("to-https", group, 443, "Secrets Manager through the NAT gateway", cidr="0.0.0.0/0")
            return group, []
        endpoint_sg_name = args.naming.of(Role.SECRETS_ENDPOINT_SECURITY_GROUP)
        endpoint_group = aws.ec2.SecurityGroup(
            f"{self._name}-endpoint-sg",
            name=endpoint_sg_name,
            description=f"{endpoint_sg_name}: Secrets Manager endpoint, from the rotation functions only",
            vpc_id=args.vpc_id,
            tags={**self._tags, "Name": endpoint_sg_name},
            opts=self._child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-endpoint-from-rotation",
            security_group_id=endpoint_group.id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS from the rotation functions",
            tags=self._tags,
            opts=self._child,
        )
        self._egress("to-endpoint", group, 443, "Secrets Manager through its VPC endpoint", referenced=endpoint_group.id)
        endpoint = aws.ec2.VpcEndpoint(
            f"{self._name}-endpoint",
            vpc_id=args.vpc_id,
            service_name=f"com.amazonaws.{args.arns.region}.secretsmanager",
            vpc_endpoint_type="Interface",
            subnet_ids=args.subnet_ids,
            security_group_ids=[endpoint_group.id],
            private_dns_enabled=True,
            tags={**self._tags, "Name": f"{args.naming.prefix}-secretsmanager"},
            opts=self._child,
        )
        return group, [endpoint]

    def _egress(
        self,
        suffix: str,
        group: aws.ec2.SecurityGroup,
        port: int,
        description: str,
        *,
        referenced: pulumi.Input[str] | None = None,
        cidr: str | None = None,
    ) -> None:
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-{suffix}",
            security_group_id=group.id,
            referenced_security_group_id=referenced,
            cidr_ipv4=cidr,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            tags=self._tags,
            opts=self._child,
        )

    def _function(
        self,
        args: SecretRotationArgs,
        user: str,
        application: str,
        roles: tuple[Role, Role, Role],
        extra: Mapping[str, pulumi.Input[str]],
        endpoint: Sequence[pulumi.Resource],
    ) -> aws.serverlessrepository.CloudFormationStack:
        """AWS's rotation application, its log group first (the function would create it unencrypted).

        `roles` names the function, the application's stack and the function's log group.
        """
        function_role, stack_role, log_role = roles
        logs = aws.cloudwatch.LogGroup(
            f"{self._name}-{user}-logs",
            name=args.naming.of(log_role),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=self._tags,
            opts=self._child,
        )
        repository, version = APPLICATIONS[args.arns.partition]
        parameters: dict[str, pulumi.Input[str]] = {
            "endpoint": f"https://{args.arns.via('secretsmanager')}",
            "functionName": args.naming.of(function_role),
            "vpcSubnetIds": pulumi.Output.from_input(args.subnet_ids).apply(",".join),
            "vpcSecurityGroupIds": self.security_group.id,
            "kmsKeyArn": args.kms_key_arn,
            **extra,
        }
        return aws.serverlessrepository.CloudFormationStack(
            f"{self._name}-{user}-function",
            name=args.naming.of(stack_role),
            application_id=f"{repository}/{application}",
            semantic_version=version,
            capabilities=CAPABILITIES,
            parameters=parameters,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, *endpoint]),
        )

    def _schedule(
        self,
        args: SecretRotationArgs,
        user: str,
        target: RotatedSecret,
        function_arn: str,
        function: aws.serverlessrepository.CloudFormationStack,
    ) -> aws.secretsmanager.SecretRotation:
        """Rotate every `rotation_days`, the first time on schedule (or by hand once the schema step ran)."""
        return aws.secretsmanager.SecretRotation(
            f"{self._name}-{user}",
            secret_id=target.secret.id,
            # Known before the function exists, so no output of the application's stack is needed.
            rotation_lambda_arn=function_arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(automatically_after_days=args.settings.rotation_days),
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[function, target.version]),
        )
