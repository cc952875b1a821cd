"""The real path and the hardening, asserted on the recorded registrations (inputs and dependencies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preview.engine import RecordedResource, Recording, run_program
from preview.wire import UNKNOWN
from task_service.naming import Naming

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "ap-northeast-1"
ROOT_PRINCIPAL = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
KEYS = "::task-service:kms:EncryptionKeys$aws:kms/key:Key::"


def statements(resource: RecordedResource, field: str = "policy") -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(resource.inputs[field])["Statement"]}


def key_policy(rec: Recording, key: str) -> dict[str, dict[str, Any]]:
    return statements(rec.one("aws:kms/key:Key", f"task-service-keys-{key}"))


def depends_on(resource: RecordedResource, name: str) -> bool:
    return any(urn.endswith(f"::{name}") for urn in resource.dependencies)


def key_of(resource: RecordedResource, field: str) -> str:
    """Which of the stack's keys a property names (its value is unknown in a preview; its dependency is not)."""
    [urn] = [u for u in resource.property_dependencies[field] if KEYS in u]
    return urn.rsplit("-", 1)[1]


# keys

def test_no_key_can_be_used_through_iam_alone(prod: Recording) -> None:
    """The root statement administers; every cryptographic use is a scoped statement of its own."""
    for key in ("data", "telemetry"):
        admin = key_policy(prod, key)["KeyAdministration"]
        assert admin["Principal"] == ROOT_PRINCIPAL and "Condition" not in admin
        assert not {"kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:ReEncrypt*"} & set(admin["Action"])
        assert all(a.startswith("kms:") and "Crypt" not in a and "DataKey" not in a for a in admin["Action"])
        for sid, statement in key_policy(prod, key).items():
            assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
            assert sid == "KeyAdministration" or statement["Condition"], sid


def test_data_key_serves_rds_dms_and_secrets_manager_only(prod: Recording) -> None:
    policy = key_policy(prod, "data")
    assert set(policy) == {
        "KeyAdministration", "SecretsThroughSecretsManager", "DescribeThroughSecretsManager", "RdsStorageAndPerformanceInsights", "DmsReplication",
    }
    via = {sid: s["Condition"]["StringEquals"]["kms:ViaService"] for sid, s in policy.items() if sid != "KeyAdministration"}
    assert via == {
        "SecretsThroughSecretsManager": f"secretsmanager.{REGION}.amazonaws.com",
        "DescribeThroughSecretsManager": f"secretsmanager.{REGION}.amazonaws.com",
        "RdsStorageAndPerformanceInsights": f"rds.{REGION}.amazonaws.com",
        "DmsReplication": f"dms.{REGION}.amazonaws.com",
    }
    for sid, statement in policy.items():
        assert statement["Principal"] == ROOT_PRINCIPAL  # only this account's principals, never a service on its own
        if sid != "KeyAdministration":
            assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT
    secrets = policy["SecretsThroughSecretsManager"]
    assert sorted(secrets["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert secrets["Condition"]["StringLike"] == {
        "kms:EncryptionContext:SecretARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:task-service/*"
    }
    # decrypting outside Secrets Manager (and RDS/DMS storage) is granted to nobody
    assert [sid for sid, s in policy.items() if "kms:Decrypt" in s["Action"]] == [
        "SecretsThroughSecretsManager", "RdsStorageAndPerformanceInsights", "DmsReplication",
    ]


def test_roles_that_read_credentials_decrypt_through_secrets_manager_only(prod_deployed: Recording) -> None:
    for name in ("task-service-execution-secrets", "task-service-dms-secrets-access-policy"):
        policy = json.loads(prod_deployed.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
        [decrypt] = [s for s in policy["Statement"] if s["Action"] == "kms:Decrypt"]
        assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}, name
        assert decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"], name


def test_telemetry_key_serves_exactly_the_stack_log_groups_and_the_alarm_topic(prod: Recording, dev: Recording) -> None:
    for rec, stack in ((prod, "prod"), (dev, "dev")):
        policy = statements(rec.one("aws:kms/key:Key", "task-service-keys-telemetry"))
        logs = policy["CloudWatchLogsForTheseLogGroups"]
        assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
        arns = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
        recorded = [g.inputs["name"] for g in rec.by_type("aws:cloudwatch/logGroup:LogGroup")]
        assert sorted(arns) == sorted(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}" for name in recorded)
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:{Naming.for_stack('task-service', stack).prefix}-alarms"
        alarms = policy["CloudWatchAlarmsToAlarmTopic"]
        assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert alarms["Condition"]["StringEquals"] == {"kms:EncryptionContext:aws:sns:topicArn": topic, "aws:SourceAccount": ACCOUNT}
    assert statements(prod.one("aws:kms/key:Key", "task-service-keys-telemetry"))["EventBridgeRulesToAlarmTopic"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:task-service-alarms"}
    }
    assert "EventBridgeRulesToAlarmTopic" not in statements(dev.one("aws:kms/key:Key", "task-service-keys-telemetry"))


# encryption at rest

def test_every_log_group_and_the_topic_use_the_telemetry_key(prod: Recording, dev: Recording) -> None:
    for rec in (prod, dev):
        for group in rec.by_type("aws:cloudwatch/logGroup:LogGroup"):
            assert group.inputs["kmsKeyId"] == UNKNOWN and key_of(group, "kmsKeyId") == "telemetry", group.name
    assert key_of(prod.one("aws:sns/topic:Topic"), "kmsMasterKeyId") == "telemetry"
    for secret in prod.by_type("aws:secretsmanager/secret:Secret"):
        assert key_of(secret, "kmsKeyId") == "data", secret.name
    db = prod.one("aws:rds/instance:Instance")
    assert key_of(db, "kmsKeyId") == key_of(db, "performanceInsightsKmsKeyId") == "data"


def test_groups_aws_would_create_on_first_write_exist_before_their_writers(prod: Recording) -> None:
    cluster = prod.one("aws:ecs/cluster:Cluster")
    assert depends_on(cluster, "task-service-ecs-insights-logs")
    assert prod.one("aws:cloudwatch/logGroup:LogGroup", "task-service-dms-task-logs").inputs["name"] == "dms-tasks-task-service-dms"
    assert depends_on(prod.one("aws:dms/replicationTask:ReplicationTask"), "task-service-dms-task-logs")
    for user in ("master", "app"):
        function = prod.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack", f"task-service-rotation-{user}-function")
        assert depends_on(function, f"task-service-rotation-{user}-logs")
        logs = prod.one("aws:cloudwatch/logGroup:LogGroup", f"task-service-rotation-{user}-logs").inputs["name"]
        assert logs == f"/aws/lambda/{function.inputs['parameters']['functionName']}"


# the alarm topic

def test_topic_policy_keeps_the_owner_and_admits_exactly_the_dms_event_rules(prod_deployed: Recording, dev: Recording) -> None:
    policy = statements(prod_deployed.one("aws:sns/topicPolicy:TopicPolicy"))
    owner = policy["AccountOwner"]
    assert owner["Principal"] == {"AWS": "*"} and owner["Condition"] == {"StringEquals": {"AWS:SourceOwner": ACCOUNT}}
    assert "SNS:Publish" in owner["Action"]
    events = policy["DmsEventsThroughEventBridge"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"} and events["Action"] == "SNS:Publish"
    rules = [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{r.inputs['name']}" for r in prod_deployed.by_type("aws:cloudwatch/eventRule:EventRule")]
    assert sorted(events["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(rules) and len(rules) == 2
    assert events["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert policy["PublishOverTlsOnly"]["Effect"] == "Deny"
    assert "DmsEventsThroughEventBridge" not in statements(dev.one("aws:sns/topicPolicy:TopicPolicy"))


def test_dms_events_reach_the_topic_through_eventbridge(prod_deployed: Recording) -> None:
    assert not prod_deployed.by_type("aws:dms/eventSubscription:EventSubscription")
    patterns = {json.loads(r.inputs["eventPattern"])["resources"][0] for r in prod_deployed.by_type("aws:cloudwatch/eventRule:EventRule")}
    assert patterns == {
        prod_deployed.outputs["dmsReplicationTaskArn"],
        prod_deployed.outputs["dmsReplicationInstanceArn"],
    }
    for target in prod_deployed.by_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert target.inputs["arn"] == prod_deployed.outputs["alarmTopicArn"] and "roleArn" not in target.inputs


# credentials and rotation

def test_the_service_runs_as_its_own_role_with_rotatable_credentials(prod_deployed: Recording, prod: Recording) -> None:
    master = json.loads(prod_deployed.one("aws:secretsmanager/secretVersion:SecretVersion", "task-service-db-secret-version").inputs["secretString"]["value"])
    app = json.loads(prod_deployed.one("aws:secretsmanager/secretVersion:SecretVersion", "task-service-db-app-secret-version").inputs["secretString"]["value"])
    assert set(master) == {"username", "password", "host", "port", "dbname", "engine"}  # DMS reads it as it is
    assert set(app) == set(master) | {"masterarn"}  # what the alternating-users function needs
    assert app["username"] == "task_service_app" != master["username"]
    assert app["masterarn"] == prod_deployed.outputs["dbSecretArn"]
    app_version = prod.one("aws:secretsmanager/secretVersion:SecretVersion", "task-service-db-app-secret-version")
    passwords = {u.rsplit("::", 1)[1] for u in app_version.property_dependencies["secretString"] if "randomPassword" in u}
    assert passwords == {"task-service-db-app-password"}  # its own password, not the master's
    assert prod_deployed.outputs["dbAppSecretArn"].endswith(":secret:task-service/db-app-credentials-1aee72")


def test_the_program_never_fights_rotation(prod: Recording) -> None:
    assert prod.one("aws:rds/instance:Instance").ignore_changes == ["password"]
    for version in prod.by_type("aws:secretsmanager/secretVersion:SecretVersion"):
        if version.name != "task-service-cognito-secret-version":
            assert version.ignore_changes == ["secretString"], version.name


def test_both_database_secrets_rotate_on_schedule_with_aws_functions(prod: Recording) -> None:
    rotations = {r.name: r for r in prod.by_type("aws:secretsmanager/secretRotation:SecretRotation")}
    assert set(rotations) == {"task-service-rotation-master", "task-service-rotation-app"}
    apps = {"master": "SecretsManagerRDSPostgreSQLRotationSingleUser", "app": "SecretsManagerRDSPostgreSQLRotationMultiUser"}
    for user, secret in (("master", "task-service-db-secret"), ("app", "task-service-db-app-secret")):
        rotation = rotations[f"task-service-rotation-{user}"]
        assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 30}
        assert rotation.inputs["rotateImmediately"] is False  # the app role exists only after the schema step
        assert any(u.endswith(f"::{secret}") for u in rotation.property_dependencies["secretId"])
        function = prod.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack", f"task-service-rotation-{user}-function")
        assert rotation.inputs["rotationLambdaArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function.inputs['parameters']['functionName']}"
        assert depends_on(rotation, function.name) and depends_on(rotation, f"{secret}-version")
        assert function.inputs["applicationId"] == f"arn:aws:serverlessrepo:us-east-1:297356227824:applications/{apps[user]}"
        assert function.inputs["semanticVersion"] and set(function.inputs["capabilities"]) == {"CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"}
        assert key_of(function, "parameters") == "data" and function.inputs["parameters"]["kmsKeyArn"] == UNKNOWN
    app_function = prod.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack", "task-service-rotation-app-function")
    assert any(u.endswith("::task-service-db-secret") for u in app_function.property_dependencies["parameters"])  # masterSecretArn


def test_rotation_schedule_comes_from_config() -> None:
    rec = run_program(ROOT, "prod", {"task-service:secrets.rotationDays": 7})
    assert {r.inputs["rotationRules"]["automaticallyAfterDays"] for r in rec.by_type("aws:secretsmanager/secretRotation:SecretRotation")} == {7}


def _rule(rec: Recording, type_: str, name: str) -> dict[str, Any]:
    return rec.one(f"aws:vpc/securityGroup{type_}Rule:SecurityGroup{type_}Rule", name).inputs


def test_rotation_functions_reach_the_database_and_secrets_manager_through_nat(prod: Recording) -> None:
    function = prod.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack", "task-service-rotation-app-function")
    assert function.inputs["parameters"]["vpcSubnetIds"] == "subnet-0a11b22c33d44e55f,subnet-0f66e77d88c99b00a"  # the private subnets
    assert function.inputs["parameters"]["endpoint"] == f"https://secretsmanager.{REGION}.amazonaws.com"
    assert any(u.endswith("::task-service-rotation-sg") for u in function.property_dependencies["parameters"])
    to_db = _rule(prod, "Egress", "task-service-rotation-to-db")
    assert (to_db["fromPort"], to_db["toPort"], to_db["ipProtocol"]) == (5432, 5432, "tcp")
    into_db = prod.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "task-service-db-from-rotation")
    assert any(u.endswith("::task-service-rotation-sg") for u in into_db.property_dependencies["referencedSecurityGroupId"])
    to_https = _rule(prod, "Egress", "task-service-rotation-to-https")
    assert (to_https["cidrIpv4"], to_https["fromPort"], to_https["toPort"]) == ("0.0.0.0/0", 443, 443)
    assert not prod.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")


def test_without_nat_the_functions_use_a_private_secrets_manager_endpoint() -> None:
    rec = run_program(ROOT, "prod", {"task-service:network.natGateway": False})
    endpoint = rec.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert endpoint["serviceName"] == f"com.amazonaws.{REGION}.secretsmanager" and endpoint["vpcEndpointType"] == "Interface"
    assert endpoint["privateDnsEnabled"] is True  # the functions' default endpoint resolves to it
    assert endpoint["subnetIds"] == ["subnet-0a11b22c33d44e55f", "subnet-0f66e77d88c99b00a"]
    into_endpoint = rec.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "task-service-rotation-endpoint-from-rotation")
    assert into_endpoint.inputs["fromPort"] == 443
    assert any(u.endswith("::task-service-rotation-sg") for u in into_endpoint.property_dependencies["referencedSecurityGroupId"])
    to_endpoint = rec.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "task-service-rotation-to-endpoint")
    assert "cidrIpv4" not in to_endpoint.inputs and to_endpoint.inputs["fromPort"] == 443
    assert not [r for r in rec.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") if r.name == "task-service-rotation-to-https"]
    for user in ("master", "app"):
        function = rec.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack", f"task-service-rotation-{user}-function")
        assert depends_on(function, "task-service-rotation-endpoint")


def test_recovery_window_per_stack(prod: Recording, dev: Recording) -> None:
    assert {s.inputs["recoveryWindowInDays"] for s in prod.by_type("aws:secretsmanager/secret:Secret")} == {30}
    assert {s.inputs["recoveryWindowInDays"] for s in dev.by_type("aws:secretsmanager/secret:Secret")} == {0}


# the first deploy

def test_tasks_start_only_after_both_secrets_hold_a_value(prod: Recording) -> None:
    for type_ in ("aws:ecs/taskDefinition:TaskDefinition", "aws:ecs/service:Service"):
        resource = prod.one(type_)
        assert depends_on(resource, "task-service-db-app-secret-version") and depends_on(resource, "task-service-cognito-secret-version"), type_


@pytest.fixture(scope="module")
def parked() -> Recording:
    """A new prod stack's first deploy: no image yet (the key left out; an explicit null is refused)."""
    return run_program(ROOT, "prod", {"task-service:service.image": None})


def test_a_parked_stack_points_at_no_image(parked: Recording, prod: Recording) -> None:
    for type_ in ("aws:ecs/taskDefinition:TaskDefinition", "aws:ecs/service:Service", "aws:appautoscaling/target:Target", "aws:appautoscaling/policy:Policy"):
        assert not parked.by_type(type_) and prod.by_type(type_), type_
    # what the image needs is all there, and nothing else differs
    for type_ in ("aws:ecr/repository:Repository", "aws:ecs/cluster:Cluster", "aws:iam/role:Role", "aws:lb/listenerRule:ListenerRule", "aws:rds/instance:Instance"):
        assert len(parked.by_type(type_)) == len(prod.by_type(type_)), type_
    assert len(prod.resources) - len(parked.resources) == 5  # task definition, service, scaling target, 2 policies


def test_a_parked_stack_keeps_the_output_contract(parked: Recording, prod: Recording) -> None:
    assert set(parked.outputs) == set(prod.outputs)
    assert parked.outputs["serviceName"] == "task-service" and parked.outputs["taskDefinitionFamily"] == "task-service"
    assert parked.outputs["canaryWeight"] == 0


def test_the_deploy_that_sets_the_image_creates_the_service_and_waits(prod: Recording) -> None:
    """Created, not scaled up from 0: `wait_for_steady_state` then covers the first tasks themselves."""
    service = prod.one("aws:ecs/service:Service")
    assert service.inputs["desiredCount"] == 2 and service.inputs["waitForSteadyState"] is True
    assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


# database details

def test_connections_alarm_is_80_percent_of_max_connections(prod: Recording) -> None:
    alarm = prod.one("aws:cloudwatch/metricAlarm:MetricAlarm", "task-service-db-connections-alarm").inputs
    assert alarm["threshold"] == 80 and "of max_connections 100" in alarm["alarmDescription"]
    rec = run_program(ROOT, "prod", {"task-service:db.maxConnections": 400})
    params = {p["name"]: p["value"] for p in rec.one("aws:rds/parameterGroup:ParameterGroup").inputs["parameters"]}
    assert params["max_connections"] == "400"
    assert rec.one("aws:cloudwatch/metricAlarm:MetricAlarm", "task-service-db-connections-alarm").inputs["threshold"] == 320


def test_dms_engine_supports_postgresql_16() -> None:
    rec = run_program(ROOT, "prod", {"task-service:dms.engineVersion": "3.5.3"})
    assert rec.one("aws:dms/replicationInstance:ReplicationInstance").inputs["engineVersion"] == "3.5.3"
