"""Per component: type tokens, child naming and parenting, registered outputs, security and secrets."""

from __future__ import annotations

import json

import pytest

from preview.engine import Recording
from preview.wire import SIGNATURE_KEY as SECRET_SIG, UNKNOWN

COMPONENTS = {
    "task-service:database:TaskServiceDb": "task-service-db",
    "task-service:fargate:FargateService": "task-service",
    "task-service:ecr:ImageRepository": "task-service-image",
    "task-service:ecs:EcsCluster": "task-service-ecs",
    "task-service:alb:AlbRoute": "task-service-route",
    "task-service:dms:DmsReplication": "task-service-dms",
    "task-service:monitoring:Monitoring": "task-service-monitoring",
    "task-service:monitoring:Dashboard": "task-service-metrics",
}


def test_every_resource_belongs_to_a_component_and_is_named_after_it(prod: Recording) -> None:
    components = {r.urn: r for r in prod.resources if not r.custom}
    assert {(r.type, r.name) for r in components.values()} == set(COMPONENTS.items())
    for component in components.values():
        assert component.parent == prod.stack_urn  # components sit directly under the stack
    for resource in prod.resources:
        if resource.custom:
            parent = components[resource.parent]  # KeyError = a resource outside any component
            assert resource.name.startswith(parent.name + "-"), resource.name
            assert f"::{parent.type}${resource.type}::" in resource.urn


def test_every_component_registers_its_outputs(prod: Recording) -> None:
    registered = {urn.rsplit("::", 1)[1]: outputs for urn, outputs in prod.component_outputs.items()}
    assert set(registered) == set(COMPONENTS.values())
    assert registered["task-service-db"]["instanceId"] == "task-service-db"
    assert registered["task-service-route"]["priority"] == 10
    assert registered["task-service-dms"]["tables"][0] == "public.tasks"


def test_db_admits_postgres_only_from_the_service_and_dms(prod: Recording) -> None:
    db_sg = prod.one("aws:ec2/securityGroup:SecurityGroup", "task-service-db-sg")
    assert "ingress" not in db_sg.inputs and db_sg.inputs["vpcId"] == "vpc-0a1b2c3d4e5f60718"
    rules = [r for r in prod.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.parent.endswith("::task-service-db")]
    assert sorted(r.name for r in rules) == ["task-service-db-from-dms", "task-service-db-from-service"]
    for rule in rules:
        assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (5432, 5432, "tcp")
        assert "cidrIpv4" not in rule.inputs and rule.inputs["referencedSecurityGroupId"] == UNKNOWN
    # the referenced groups are the service's and DMS's own security groups
    service_rule = next(r for r in rules if r.name.endswith("service"))
    assert any(u.endswith("::task-service-sg") for u in service_rule.property_dependencies["referencedSecurityGroupId"])
    dms_rule = next(r for r in rules if r.name.endswith("dms"))
    assert any(u.endswith("::task-service-dms-sg") for u in dms_rule.property_dependencies["referencedSecurityGroupId"])


def test_service_admits_only_the_alb_on_the_container_port(prod: Recording) -> None:
    rules = [r for r in prod.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.parent.endswith("::task-service")]
    assert len(rules) == 1
    assert rules[0].inputs["referencedSecurityGroupId"] == "sg-0a1b2c3d4e5f60001"
    assert (rules[0].inputs["fromPort"], rules[0].inputs["toPort"]) == (3001, 3001)


def test_dms_reaches_both_databases_and_is_admitted_by_the_monolith(prod: Recording) -> None:
    into_source = prod.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "task-service-dms-into-source-db")
    assert into_source.inputs["securityGroupId"] == "sg-0a1b2c3d4e5f60002" and into_source.inputs["fromPort"] == 5432
    egress = {r.name: r.inputs for r in prod.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") if "-dms-" in r.name}
    assert egress["task-service-dms-to-source-db"]["referencedSecurityGroupId"] == "sg-0a1b2c3d4e5f60002"
    assert egress["task-service-dms-to-target-db"]["toPort"] == 5432


def test_task_definition_runs_non_root_with_injected_secrets(prod_deployed: Recording) -> None:
    task = prod_deployed.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    (container,) = json.loads(task["containerDefinitions"])
    assert container["user"] == "1000:1000" and container["readonlyRootFilesystem"] is True
    assert container["portMappings"] == [{"containerPort": 3001, "hostPort": 3001, "protocol": "tcp"}]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["DB_HOST"] == "task-service-db.abcdefghij12.ap-northeast-1.rds.amazonaws.com"
    assert env["DB_DATABASE"] == "task_service" and env["DB_PORT"] == "5432"
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["DB_PASSWORD"].endswith(":secret:task-service/db-password-004569:password::")
    assert secrets["COGNITO_CLIENT_ID"].endswith(":secret:task-service/cognito-config-3553cc:client_id::")
    assert "/health" in " ".join(container["healthCheck"]["command"])
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/task-service"
    assert "password" not in json.dumps(env).lower()


def test_execution_role_reads_exactly_the_two_injected_secrets(prod_deployed: Recording) -> None:
    policy = json.loads(prod_deployed.one("aws:iam/rolePolicy:RolePolicy", "task-service-execution-secrets").inputs["policy"])
    read = next(s for s in policy["Statement"] if s["Action"] == "secretsmanager:GetSecretValue")
    assert sorted(read["Resource"]) == sorted(
        [
            "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:task-service/db-password-004569",
            "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:task-service/cognito-config-3553cc",
        ]
    )
    decrypt = next(s for s in policy["Statement"] if s["Action"] == "kms:Decrypt")
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.ap-northeast-1.amazonaws.com"
    # the task role has no policies at all
    task_role = prod_deployed.one("aws:iam/role:Role", "task-service-task-role")
    attached = [r for r in prod_deployed.resources if r.type.startswith("aws:iam/rolePolicy") and "task-role" in json.dumps(r.property_dependencies)]
    assert task_role.inputs["name"] == "task-service-task-role" and attached == []


def test_credentials_secret_is_complete_and_stays_secret(prod_deployed: Recording) -> None:
    version = prod_deployed.one("aws:secretsmanager/secretVersion:SecretVersion", "task-service-db-secret-version")
    wrapped = version.inputs["secretString"]
    assert wrapped[SECRET_SIG]  # secret on the wire, so encrypted in state
    document = json.loads(wrapped["value"])
    assert set(document) == {"username", "password", "host", "port", "dbname", "engine"}
    assert document["host"].startswith("task-service-db.") and document["engine"] == "postgres"
    secret = prod_deployed.one("aws:secretsmanager/secret:Secret", "task-service-db-secret").inputs
    assert secret["name"] == "task-service/db-password" and secret["kmsKeyId"].startswith("arn:aws:kms:")
    password = document["password"]
    assert password not in json.dumps(prod_deployed.outputs)
    for resource in prod_deployed.resources:
        for key, value in resource.inputs.items():
            if password in json.dumps(value):
                assert isinstance(value, dict) and SECRET_SIG in value, (resource.name, key)


def test_cognito_secret_holds_pool_and_client(prod: Recording) -> None:
    version = prod.one("aws:secretsmanager/secretVersion:SecretVersion", "task-service-cognito-secret-version").inputs
    assert version["secretString"][SECRET_SIG]  # the provider schema marks it secret
    assert json.loads(version["secretString"]["value"]) == {"user_pool_id": "ap-northeast-1_Xy7AbCdEf", "client_id": "4f1e2d3c4b5a69788796a5b4c3"}


def test_ecr_repository(prod: Recording) -> None:
    repo = prod.one("aws:ecr/repository:Repository").inputs
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    lifecycle = json.loads(prod.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert len(lifecycle["rules"]) == 2


def test_log_groups_have_retention(prod: Recording) -> None:
    groups = {g.inputs["name"]: g.inputs["retentionInDays"] for g in prod.by_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups == {
        "/ecs/task-service": 90,
        "/aws/rds/instance/task-service-db/postgresql": 90,
        "/aws/rds/instance/task-service-db/upgrade": 90,
    }
    instance = prod.one("aws:rds/instance:Instance")
    assert {u.rsplit("::", 1)[1] for u in instance.dependencies} >= {"task-service-db-log-postgresql", "task-service-db-log-upgrade"}


def test_ecs_service_waits_for_the_listener_rule(prod: Recording) -> None:
    service = prod.one("aws:ecs/service:Service")
    assert any(u.endswith("::task-service-route-rule") for u in service.dependencies)


def test_dashboard_covers_both_target_groups(prod_deployed: Recording) -> None:
    body = json.loads(prod_deployed.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    text = json.dumps(body)
    assert "targetgroup/task-service-tg/97d6739b5d16c09e" in text and "targetgroup/myteacher-app-tg/73e2d6bc24d8a067" in text
    assert "app/myteacher-alb/50dc6c495c0c9188" in text
    assert "CDCLatencySource" in text and "task-service-full-load-and-cdc" in text
    assert len(body["widgets"]) == 7


def test_dms_account_roles_only_when_asked() -> None:
    from pathlib import Path

    from preview.engine import run_program

    rec = run_program(Path(__file__).resolve().parents[2], "prod", {"task-service:dms.createAccountRoles": True})
    roles = {r.inputs["name"] for r in rec.by_type("aws:iam/role:Role")}
    assert {"dms-vpc-role", "dms-cloudwatch-logs-role"} <= roles
    subnet_group = rec.one("aws:dms/replicationSubnetGroup:ReplicationSubnetGroup")
    assert any(u.endswith("::task-service-dms-dms-vpc-role-policy") for u in subnet_group.dependencies)


@pytest.mark.parametrize("weight,expected", [(0, [100, 0]), (5, [95, 5]), (25, [75, 25]), (50, [50, 50]), (100, [0, 100])])
def test_every_canary_step_is_a_weight_change_on_the_same_rule(weight: int, expected: list[int]) -> None:
    from pathlib import Path

    from preview.engine import run_program

    rec = run_program(Path(__file__).resolve().parents[2], "prod", {"task-service:canaryWeight": weight})
    rule = rec.one("aws:lb/listenerRule:ListenerRule")
    assert rule.urn.endswith("::task-service-route-rule") and rule.inputs["priority"] == 10
    assert [tg["weight"] for tg in rule.inputs["actions"][0]["forward"]["targetGroups"]] == expected
    assert rec.outputs["canaryWeight"] == weight


def _former_urn(resource: object, alias: dict) -> str:
    """The URN the engine derives from an alias spec: the old parent's type chain, the type and the old name."""
    spec = alias["spec"]
    parent_types = spec["parentUrn"].split("::")[2]
    return f"urn:pulumi:prod::task-service::{parent_types}${spec.get('type') or resource.type}::{spec['name']}"  # type: ignore[attr-defined]


def test_resources_moved_into_new_components_keep_their_urns(prod: Recording) -> None:
    """ECR, the cluster and the dashboard left FargateService/Monitoring; an existing stack must move, not replace them."""
    moved = {
        _former_urn(r, alias)
        for r in prod.resources
        for alias in r.aliases
        if "spec" in alias and alias["spec"].get("name")
    }
    fargate = "urn:pulumi:prod::task-service::task-service:fargate:FargateService$"
    assert moved == {
        fargate + "aws:ecr/repository:Repository::task-service-repo",
        fargate + "aws:ecr/lifecyclePolicy:LifecyclePolicy::task-service-repo-lifecycle",
        fargate + "aws:ecs/cluster:Cluster::task-service-cluster",
        "urn:pulumi:prod::task-service::task-service:monitoring:Monitoring$aws:cloudwatch/dashboard:Dashboard::task-service-monitoring-dashboard",
    }
