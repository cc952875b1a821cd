"""Build a stack like ours inside moto and return the outputs `pulumi stack output` would give.

Physical names come from `task_service.naming` and every output starts from the generated prod fixture (the
program's own exports), so the only outputs that differ from it are the ARNs, ids and endpoints moto assigns
(`ASSIGNED`) and the canary weight a test asks for. State moto cannot reach through the API (running task
count, a DMS task becoming "ready") is set explicitly and visibly here, never assumed.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dms.models import dms_backends

from runbook.alb import dimension_load_balancer, dimension_target_group
from task_service import contract
from task_service.canary import CANARY_TAG, TEST_ROUTE_HEADER
from task_service.contract import Output
from task_service.naming import Naming, Role
from tests.runbook.generate_fixtures import FIXTURES

FIXTURE = FIXTURES / "outputs-prod.json"
MASTER_PASSWORD = "a-long-enough-password"
APP_PASSWORD = "app-Pa55word-never-shown-7d1e"
"""The application's password in its secret: tests look for it in everything the runbook prints and the server logs."""
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
PATH_PATTERN = "/api/tasks/*"
SERVICE_PORT = 3001
MIGRATION_TYPE = "full-load-and-cdc"

ASSIGNED = (
    contract.DB_ENDPOINT,
    contract.DB_ADDRESS,
    contract.DB_SECRET_ARN,
    contract.DB_APP_SECRET_ARN,
    contract.DB_ROTATION_FUNCTION_ARN,
    contract.DB_APP_ROTATION_FUNCTION_ARN,
    contract.DB_SECURITY_GROUP_ID,
    contract.SERVICE_SECURITY_GROUP_ID,
    contract.COGNITO_SECRET_ARN,
    contract.LISTENER_ARN,
    contract.LISTENER_RULE_ARN,
    contract.TARGET_GROUP_ARN,
    contract.MONOLITH_TARGET_GROUP_ARN,
    contract.DMS_REPLICATION_INSTANCE_ARN,
    contract.DMS_REPLICATION_TASK_ARN,
    contract.DMS_SOURCE_ENDPOINT_ARN,
    contract.DMS_TARGET_ENDPOINT_ARN,
    contract.ALARM_TOPIC_ARN,
)
"""The outputs whose values moto chooses (ARNs, ids, endpoints): the program's fakes cannot match them."""

_CLIENTS: dict[tuple[str, str, str], Any] = {}


def client(service: str, region: str) -> Any:
    """Test-side clients, reused across tests: the endpoint and fake credentials never change."""
    key = (service, region, os.environ["AWS_ENDPOINT_URL"])
    if key not in _CLIENTS:
        _CLIENTS[key] = boto3.client(service, region_name=region)
    return _CLIENTS[key]


def program_outputs() -> dict[str, Any]:
    """The prod outputs as the program exports them (the generated fixture)."""
    document: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return document


def with_values(outputs: dict[str, Any], changes: dict[Output, Any]) -> dict[str, Any]:
    """A copy of `outputs` with some values replaced, keyed by contract constant."""
    return {**outputs, **{output.name: value for output, value in changes.items()}}


def without(outputs: dict[str, Any], *dropped: Output) -> dict[str, Any]:
    """A copy of `outputs` without some of them."""
    return {name: value for name, value in outputs.items() if name not in {output.name for output in dropped}}


@dataclass
class Stack:
    region: str
    outputs: dict[str, Any]
    names: Naming

    def client(self, service: str) -> Any:
        return client(service, self.region)

    def value(self, output: Output) -> Any:
        return self.outputs[output.name]

    def assign(self, values: dict[Output, Any]) -> None:
        """Record what moto assigned (or what the test chose) in place of the program's value."""
        self.outputs.update(with_values({}, values))

    def rule_weights(self) -> dict[str, int]:
        rule = self.client("elbv2").describe_rules(RuleArns=[self.value(contract.LISTENER_RULE_ARN)])["Rules"][0]
        groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
        return {g["TargetGroupArn"]: g["Weight"] for g in groups}

    def set_rule_weight(self, service_weight: int) -> None:
        self.client("elbv2").modify_rule(
            RuleArn=self.value(contract.LISTENER_RULE_ARN),
            Actions=_forward(self.value(contract.MONOLITH_TARGET_GROUP_ARN), self.value(contract.TARGET_GROUP_ARN), service_weight),
        )

    def service(self) -> dict[str, Any]:
        """The ECS service as moto describes it now."""
        cluster, service = self.value(contract.CLUSTER_NAME), self.value(contract.SERVICE_NAME)
        found: dict[str, Any] = self.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0]
        return found

    def pending_versions(self, secret: Output) -> list[str]:
        """Versions of `secret` staged AWSPENDING but not AWSCURRENT: what a rotation that did not finish leaves."""
        stages = self.client("secretsmanager").describe_secret(SecretId=self.value(secret)).get("VersionIdsToStages", {})
        return [version for version, labels in stages.items() if PENDING in labels and CURRENT not in labels]

    def dms_task(self) -> Any:
        """moto's own task object: moto never moves a new task to "ready", so tests do."""
        return dms_backends[DEFAULT_ACCOUNT_ID][self.region].replication_tasks[self.value(contract.DMS_REPLICATION_TASK_ARN)]

    def dms_load(self, status: str, **stats: Any) -> None:
        """Put the task mid-way through a full load: moto reports every task's ReplicationTaskStats as finished
        (100%), so the statistics DMS would report are laid over moto's own description of the task."""
        task = self.dms_task()
        task.status = status
        described = type(task).to_dict
        task.to_dict = lambda: (lambda d: {**d, "ReplicationTaskStats": {**d["ReplicationTaskStats"], **stats}})(described(task))


def _forward(monolith_arn: str, service_arn: str, service_weight: int) -> list[dict[str, Any]]:
    groups = [{"TargetGroupArn": monolith_arn, "Weight": 100 - service_weight}, {"TargetGroupArn": service_arn, "Weight": service_weight}]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


def _network(stack: Stack) -> tuple[str, list[str]]:
    ec2 = stack.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{stack.region}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "c"))
    ]
    for output, role in ((contract.SERVICE_SECURITY_GROUP_ID, Role.SERVICE_SECURITY_GROUP), (contract.DB_SECURITY_GROUP_ID, Role.DB_SECURITY_GROUP)):
        stack.assign({output: ec2.create_security_group(GroupName=stack.names.of(role), Description=role.name, VpcId=vpc)["GroupId"]})
    return vpc, subnets


def _route(stack: Stack, vpc: str, subnets: list[str], canary_weight: int) -> None:
    """The monolith's ALB, listener and target group (names from the program's outputs) and our rule."""
    elbv2 = stack.client("elbv2")
    alb_name = dimension_load_balancer(stack.value(contract.LISTENER_ARN)).split("/")[1]
    monolith_tg_name = dimension_target_group(stack.value(contract.MONOLITH_TARGET_GROUP_ARN)).split("/")[1]
    alb = elbv2.create_load_balancer(Name=alb_name, Subnets=subnets)["LoadBalancers"][0]
    monolith_tg = elbv2.create_target_group(Name=monolith_tg_name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]
    service_tg = elbv2.create_target_group(
        Name=stack.names.of(Role.TARGET_GROUP), Protocol="HTTP", Port=SERVICE_PORT, VpcId=vpc, TargetType="ip", HealthCheckPath="/health"
    )["TargetGroups"][0]
    targets = [{"Id": "10.0.1.10", "Port": SERVICE_PORT}, {"Id": "10.0.2.10", "Port": SERVICE_PORT}]
    elbv2.register_targets(TargetGroupArn=service_tg["TargetGroupArn"], Targets=targets)
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": monolith_tg["TargetGroupArn"]}],
    )["Listeners"][0]
    rule = elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=stack.value(contract.LISTENER_RULE_PRIORITY),
        Conditions=[{"Field": "path-pattern", "Values": [PATH_PATTERN]}],
        Actions=_forward(monolith_tg["TargetGroupArn"], service_tg["TargetGroupArn"], canary_weight),
        Tags=[{"Key": CANARY_TAG, "Value": service_tg["TargetGroupName"]}],
    )["Rules"][0]
    stack.assign(
        {
            contract.LISTENER_ARN: listener["ListenerArn"],
            contract.LISTENER_RULE_ARN: rule["RuleArn"],
            contract.TARGET_GROUP_ARN: service_tg["TargetGroupArn"],
            contract.MONOLITH_TARGET_GROUP_ARN: monolith_tg["TargetGroupArn"],
            contract.CANARY_WEIGHT: canary_weight,
        }
    )


def _service(stack: Stack, monkeypatch: pytest.MonkeyPatch, running: int) -> None:
    ecs = stack.client("ecs")
    cluster, service, family = stack.names.of(Role.CLUSTER), stack.names.of(Role.SERVICE), stack.names.of(Role.TASK_FAMILY)
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        containerDefinitions=[{"name": stack.names.of(Role.CONTAINER), "image": "task-service:latest", "portMappings": [{"containerPort": SERVICE_PORT}]}],
    )
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))  # moto reads it when the service is created
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=2, launchType="FARGATE")
    monkeypatch.delenv("MOTO_ECS_SERVICE_RUNNING")
    stack.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{cluster}/{service}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=stack.value(contract.AUTOSCALING_MIN),
        MaxCapacity=stack.value(contract.AUTOSCALING_MAX),
    )
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for role in (Role.EXECUTION_ROLE, Role.TASK_ROLE):
        stack.client("iam").create_role(RoleName=stack.names.of(role), AssumeRolePolicyDocument=trust)


def _database(stack: Stack) -> None:
    """The RDS instance, the master's and the application's credentials secrets and the Cognito config secret."""
    password = MASTER_PASSWORD
    db = stack.client("rds").create_db_instance(
        DBInstanceIdentifier=stack.names.of(Role.DB_INSTANCE),
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        EngineVersion=stack.value(contract.DB_ENGINE_VERSION),
        DBName=stack.value(contract.DB_NAME),
        MasterUsername=stack.value(contract.DB_USERNAME),
        MasterUserPassword=password,
        Port=stack.value(contract.DB_PORT),
        AllocatedStorage=100,
        MultiAZ=True,
        StorageEncrypted=True,
        BackupRetentionPeriod=7,
        EnablePerformanceInsights=True,
        VpcSecurityGroupIds=[stack.value(contract.DB_SECURITY_GROUP_ID)],
    )["DBInstance"]
    address, port = db["Endpoint"]["Address"], db["Endpoint"]["Port"]
    credentials = {
        "username": stack.value(contract.DB_USERNAME),
        "password": password,
        "host": address,
        "port": port,
        "dbname": stack.value(contract.DB_NAME),
        "engine": "postgres",
    }
    secrets = stack.client("secretsmanager")
    db_secret = secrets.create_secret(Name=stack.names.of(Role.DB_SECRET), SecretString=json.dumps(credentials))["ARN"]
    app = {**credentials, "username": stack.value(contract.DB_APP_USERNAME), "password": APP_PASSWORD, "masterarn": db_secret}
    app_secret = secrets.create_secret(Name=stack.names.of(Role.APP_DB_SECRET), SecretString=json.dumps(app))["ARN"]
    cognito = json.dumps({"user_pool_id": f"{stack.region}_x", "client_id": "abc"})
    cognito_secret = secrets.create_secret(Name=stack.names.of(Role.COGNITO_SECRET), SecretString=cognito)["ARN"]
    stack.assign(
        {
            contract.DB_ADDRESS: address,
            contract.DB_ENDPOINT: f"{address}:{port}",
            contract.DB_SECRET_ARN: db_secret,
            contract.DB_APP_SECRET_ARN: app_secret,
            contract.COGNITO_SECRET_ARN: cognito_secret,
        }
    )


def _lambda_without_docker() -> None:
    """moto runs rotation functions through Docker unless told not to; its simple backend invokes nothing and succeeds."""
    request = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def function_code() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return None\n")
    return archive.getvalue()


def _rotation(stack: Stack) -> None:
    """Both rotation functions and schedules, as `pulumi up` leaves them (RotateImmediately false).

    Secrets Manager then runs only the function's testSecret step, which "creates an AWSPENDING version of the secret
    and then removes it" (RotateSecret's documentation); moto's function runs nothing and leaves that version staged,
    so the removal is done here. moto also stamps LastRotatedDate when rotation is configured, where AWS leaves it
    null until the first rotation: this estate stands for a stack after docs/first-deploy.md's rotation by hand.
    """
    _lambda_without_docker()
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = stack.client("iam").create_role(RoleName=f"{stack.names.prefix}-rotation", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    for secret, function, output in (
        (contract.DB_SECRET_ARN, Role.MASTER_ROTATION_FUNCTION, contract.DB_ROTATION_FUNCTION_ARN),
        (contract.DB_APP_SECRET_ARN, Role.APP_ROTATION_FUNCTION, contract.DB_APP_ROTATION_FUNCTION_ARN),
    ):
        arn = stack.client("lambda").create_function(
            FunctionName=stack.names.of(function),
            Runtime="python3.12",
            Role=role,
            Handler="lambda_function.lambda_handler",
            Code={"ZipFile": function_code()},
        )["FunctionArn"]
        stack.assign({output: arn})
        stack.client("secretsmanager").rotate_secret(
            SecretId=stack.value(secret),
            RotationLambdaARN=arn,
            RotationRules={"AutomaticallyAfterDays": stack.value(contract.SECRET_ROTATION_DAYS)},
            RotateImmediately=False,
        )
        for version in stack.pending_versions(secret):
            stack.client("secretsmanager").update_secret_version_stage(
                SecretId=stack.value(secret), VersionStage=PENDING, RemoveFromVersionId=version
            )


def _monitoring(stack: Stack) -> None:
    cloudwatch = stack.client("cloudwatch")
    topic = stack.client("sns").create_topic(Name=stack.names.of(Role.ALARM_TOPIC))["TopicArn"]
    for name in stack.names.alarm_names():
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
    cloudwatch.put_dashboard(DashboardName=stack.names.of(Role.DASHBOARD), DashboardBody=json.dumps({"widgets": []}))
    stack.assign({contract.ALARM_TOPIC_ARN: topic})


def _dms(stack: Stack) -> None:
    dms = stack.client("dms")
    instance = dms.create_replication_instance(
        ReplicationInstanceIdentifier=stack.names.of(Role.DMS_INSTANCE), ReplicationInstanceClass="dms.t3.medium", AllocatedStorage=50
    )["ReplicationInstance"]["ReplicationInstanceArn"]
    endpoints = {}
    for role, kind, host, database in (
        (Role.DMS_SOURCE_ENDPOINT, "source", stack.value(contract.MONOLITH_DB_HOST), stack.value(contract.MONOLITH_DB_NAME)),
        (Role.DMS_TARGET_ENDPOINT, "target", stack.value(contract.DB_ADDRESS), stack.value(contract.DB_NAME)),
    ):
        endpoints[kind] = dms.create_endpoint(
            EndpointIdentifier=stack.names.of(role), EndpointType=kind, EngineName="postgres", ServerName=host, Port=5432, DatabaseName=database
        )["Endpoint"]["EndpointArn"]
    rules = [
        {"rule-type": "selection", "rule-id": str(i), "rule-name": name, "object-locator": {"schema-name": name.split(".")[0], "table-name": name.split(".")[1]}, "rule-action": "include"}
        for i, name in enumerate(stack.value(contract.DMS_TABLES), 1)
    ]
    task = dms.create_replication_task(
        ReplicationTaskIdentifier=stack.names.of(Role.DMS_TASK, migration_type=MIGRATION_TYPE),
        SourceEndpointArn=endpoints["source"],
        TargetEndpointArn=endpoints["target"],
        ReplicationInstanceArn=instance,
        MigrationType=MIGRATION_TYPE,
        TableMappings=json.dumps({"rules": rules}),
    )["ReplicationTask"]["ReplicationTaskArn"]
    stack.assign(
        {
            contract.DMS_REPLICATION_INSTANCE_ARN: instance,
            contract.DMS_REPLICATION_TASK_ARN: task,
            contract.DMS_SOURCE_ENDPOINT_ARN: endpoints["source"],
            contract.DMS_TARGET_ENDPOINT_ARN: endpoints["target"],
        }
    )


def add_test_route(stack: Stack, value: str = "test-route-value-0123456789abcdefghijklm") -> str:
    """What `testRoute.enabled: true` deploys: the header's secret and the rule requiring it (priority 9); its value."""
    secret = stack.client("secretsmanager").create_secret(
        Name=stack.names.of(Role.TEST_ROUTE_SECRET), SecretString=json.dumps({"header": TEST_ROUTE_HEADER, "value": value})
    )["ARN"]
    rule = stack.client("elbv2").create_rule(
        ListenerArn=stack.value(contract.LISTENER_ARN),
        Priority=stack.value(contract.LISTENER_RULE_PRIORITY) - 1,
        Conditions=[
            {"Field": "path-pattern", "Values": [PATH_PATTERN]},
            {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": TEST_ROUTE_HEADER, "Values": [value]}},
        ],
        Actions=[{"Type": "forward", "TargetGroupArn": stack.value(contract.TARGET_GROUP_ARN)}],
    )["Rules"][0]
    stack.assign({contract.TEST_ROUTE_SECRET_ARN: secret, contract.TEST_ROUTE_RULE_ARN: rule["RuleArn"]})
    return value


def build(monkeypatch: pytest.MonkeyPatch, canary_weight: int = 50, running: int = 2) -> Stack:
    """The prod stack in moto at `canary_weight`, with `running` of its 2 desired tasks running."""
    outputs = program_outputs()
    names = Naming.for_stack(outputs[contract.PROJECT.name], outputs[contract.STACK.name])
    stack = Stack(outputs[contract.REGION.name], outputs, names)
    vpc, subnets = _network(stack)
    _route(stack, vpc, subnets, canary_weight)
    _service(stack, monkeypatch, running)
    _database(stack)
    _rotation(stack)
    _monitoring(stack)
    _dms(stack)
    stack.dms_task().ready()
    return stack
