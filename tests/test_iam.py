"""The two CI roles' policies (iam/, documented in the README) cover what the stack and the pack touch, and no more.

Resource types come from the real program run under mocks (both stacks); the pack's live reads from its source.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from preview.engine import Recording

ROOT = Path(__file__).resolve().parents[1]
IAM = {path.stem: json.loads(path.read_text()) for path in (ROOT / "iam").glob("*.json")}
README = (ROOT / "README.md").read_text()
# Pulumi module of a resource token -> IAM service prefix, where they differ.
SERVICE = {"lb": "elasticloadbalancing", "appautoscaling": "application-autoscaling", "vpc": "ec2", "serverlessrepository": "serverlessrepo"}
READ_VERBS = ("Describe", "List", "Get")


def _actions(policy: dict) -> set[str]:
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        found = statement["Action"]
        actions |= {found} if isinstance(found, str) else set(found)
    return actions


def _services(recording: Recording) -> set[str]:
    services = set()
    for resource in recording.resources:
        package, module, _ = resource.type.split(":")
        if package != "aws":
            continue
        module = module.split("/")[0]
        if module == "cloudwatch" and resource.type.startswith("aws:cloudwatch/logGroup"):
            module = "logs"
        if module == "cloudwatch" and resource.type.startswith("aws:cloudwatch/event"):
            module = "events"
        services.add(SERVICE.get(module, module))
    return services


def test_policy_documents_are_valid_and_match_the_readme() -> None:
    assert set(IAM) == {"preview-role-policy", "preview-role-trust", "deploy-role-policy", "deploy-role-trust"}
    assert all(doc["Version"] == "2012-10-17" for doc in IAM.values())
    for name in IAM:
        assert f"iam/{name}.json" in README, f"README does not mention iam/{name}.json"


def test_trust_is_github_oidc_for_the_workflow_environments_only() -> None:
    workflows = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / ".github" / "workflows").glob("*.yml")}
    environments = {"preview-role-trust": workflows["pull-request.yml"]["jobs"]["pulumi-preview"]["environment"],
                    "deploy-role-trust": workflows["deploy.yml"]["jobs"]["up"]["environment"]}
    assert environments == {"preview-role-trust": "preview", "deploy-role-trust": "prod"}
    for name, environment in environments.items():
        (statement,) = IAM[name]["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
        assert statement["Condition"]["StringEquals"] == {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:OWNER/REPO:environment:{environment}",
        }


def test_the_preview_role_only_reads_and_never_reads_secret_values() -> None:
    actions = _actions(IAM["preview-role-policy"])
    assert all(action.split(":")[1].startswith(READ_VERBS) for action in actions), sorted(actions)
    assert not any(action.startswith("secretsmanager:GetSecretValue") for action in actions)
    canary_gate = {"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "elasticloadbalancing:DescribeTargetHealth"}
    assert canary_gate <= actions


def test_the_preview_role_covers_the_packs_live_read() -> None:
    source = (ROOT / "policy" / "task_service_policies" / "live.py").read_text()
    assert 'client("elbv2"' in source
    calls = set(re.findall(r"\.((?:describe|get|list)_\w+)\(", source))
    assert calls == {"describe_rules", "describe_tags"}
    actions = _actions(IAM["preview-role-policy"])
    for call in calls:
        assert "elasticloadbalancing:" + "".join(part.title() for part in call.split("_")) in actions


def _gate_calls() -> set[tuple[str, str]]:
    """(boto3 operation, IAM action) of every AWS call the canary health gate makes (health_gate.call sites)."""
    source = (ROOT / "policy" / "task_service_policies" / "health_gate.py").read_text()
    return set(re.findall(r'call\(\w+(?:\("\w+"\))?, "(\w+)", "([\w-]+:\w+)"', source))


def _statements_allowing(policy: dict, action: str) -> list[dict]:
    found = []
    for statement in policy["Statement"]:
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action in listed:
            found.append(statement)
    return found


def test_both_roles_cover_the_canary_health_gate() -> None:
    """The gate runs in every preview and deploy of prod: both roles need its reads, and only reads."""
    calls = _gate_calls()
    assert {action for _, action in calls} == {"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms",
                                               "elasticloadbalancing:DescribeTargetHealth", "ssm:GetParameter"}
    for operation, action in calls:
        assert action.split(":")[1] == "".join(part.title() for part in operation.split("_")), (operation, action)
        for role in ("preview-role-policy", "deploy-role-policy"):
            statements = _statements_allowing(IAM[role], action)
            assert statements, f"{role} lacks {action}"
            if action == "ssm:GetParameter":  # the load-test result only, never the stack's other parameters
                assert [s["Resource"] for s in statements] == [
                    "arn:aws:ssm:ap-northeast-1:ACCOUNT_ID:parameter/task-service*/loadtest/result"]
    for action in ("cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "elasticloadbalancing:DescribeTargetHealth",
                   "ssm:GetParameter"):
        assert f"`{action}`" in README, f"README does not name {action}"


def test_both_roles_cover_every_aws_service_the_program_declares(prod: Recording, dev: Recording) -> None:
    services = _services(prod) | _services(dev)
    assert {"rds", "ecs", "elasticloadbalancing", "dms", "iam", "kms", "secretsmanager", "ec2"} <= services
    preview, deploy = _actions(IAM["preview-role-policy"]), _actions(IAM["deploy-role-policy"])
    for service in services:
        assert any(a.startswith(f"{service}:") for a in preview), f"the preview role cannot read {service}"
        writes = [a for a in deploy if a.startswith(f"{service}:") and not a.split(":")[1].startswith(READ_VERBS)]
        assert writes, f"the deploy role cannot change {service}"


def test_the_deploy_role_passes_roles_only_to_their_services() -> None:
    statements = IAM["deploy-role-policy"]["Statement"]
    own, rotation = [s for s in statements if "iam:PassRole" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert own["Resource"].endswith(":role/task-service*")
    assert set(own["Condition"]["StringEquals"]["iam:PassedToService"]) >= {"ecs-tasks.amazonaws.com", "monitoring.rds.amazonaws.com"}
    # the roles the rotation applications' stacks create, passed to their Lambda functions only
    assert rotation["Resource"].endswith(":role/serverlessrepo-task-service*")
    assert rotation["Condition"]["StringEquals"]["iam:PassedToService"] == "lambda.amazonaws.com"
    attaching = [s for s in statements if "iam:AttachRolePolicy" in s["Action"]]
    assert len(attaching) == 2  # the stack's own roles, and the rotation functions' roles
    for attach in attaching:
        assert all(arn.startswith("arn:aws:iam::aws:policy/service-role/") for arn in attach["Condition"]["ArnEquals"]["iam:PolicyARN"])
    assert not any(s["Action"] == "*" or "*" in s["Action"] for s in statements)
