"""Bad stack config stops the program with one message naming the key, the stack file and what is expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from preview.engine import ProgramError, run_program
from preview.stack_files import StackFileError, load_stack

ROOT = Path(__file__).resolve().parents[2]

BAD: list[tuple[str, Any, str]] = [
    ("aws:region", "tokyo", "aws:region must be an AWS region"),
    ("task-service:canaryWeight", 101, "task-service:canaryWeight must be between 0 and 100"),
    ("task-service:canaryWeight", "five", "task-service:canaryWeight must be a whole number"),
    ("task-service:alarmEmails", ["ops-at-example.com"], "task-service:alarmEmails items must be e-mail addresses"),
    ("task-service:autoscaling.max", 1, "task-service:autoscaling.max must be >= min (min=2, max=1)"),
    ("task-service:autoscaling.min", 0, "task-service:autoscaling.min must be between 1 and 100"),
    ("task-service:autoscaling.cpuTarget", 99, "task-service:autoscaling.cpuTarget must be between 10 and 95"),
    ("task-service:service.cpu", 300, "task-service:service.cpu must be one of 256, 512, 1024, 2048, 4096"),
    ("task-service:service.memory", 8192, "task-service:service.memory must be one of Fargate's sizes for cpu 512"),
    ("task-service:service.desiredCount", 11, "task-service:service.desiredCount must be within autoscaling min..max"),
    ("task-service:service.image", "", "task-service:service.image must be a non-empty string"),
    ("task-service:service.containerPort", 70000, "task-service:service.containerPort must be between 1 and 65535"),
    ("task-service:service.healthCheckPath", "health", "task-service:service.healthCheckPath must be a URL path starting with /"),
    ("task-service:db.instanceClass", "t3.medium", "task-service:db.instanceClass must be an RDS instance class"),
    ("task-service:db.allocatedStorage", 10, "task-service:db.allocatedStorage must be between 20 and 65536"),
    ("task-service:db.maxAllocatedStorage", 50, "task-service:db.maxAllocatedStorage must be between 100 and 65536"),
    ("task-service:db.backupRetentionDays", 0, "task-service:db.backupRetentionDays must be between 1 and 35"),
    ("task-service:db.backupRetentionDays", 40, "task-service:db.backupRetentionDays must be between 1 and 35"),
    ("task-service:db.multiAz", "yes", "task-service:db.multiAz must be true or false"),
    ("task-service:db.monitoringInterval", 45, "task-service:db.monitoringInterval must be one of 0, 1, 5, 10, 15, 30, 60"),
    ("task-service:db.performanceInsightsRetentionDays", 30, "task-service:db.performanceInsightsRetentionDays must be 7 or a multiple of 31"),
    ("task-service:db.backupWindow", "3am", "task-service:db.backupWindow must be a UTC window"),
    ("task-service:db.instanceClas", "db.t3.micro", "task-service:db.instanceClas is not a known setting"),
    ("task-service:db", "db.t3.medium", "task-service:db must be a map of settings"),
    ("task-service:network.vpcId", "vpc-xyz", "task-service:network.vpcId must be a VPC id"),
    ("task-service:network.dbSubnetIds", ["subnet-01a2b3c4d5e6f7a8b"], "task-service:network.dbSubnetIds must list at least 2 item(s)"),
    ("task-service:network.serviceSubnetIds", "subnet-0a11b22c33d44e55f", "task-service:network.serviceSubnetIds must be a list of strings"),
    ("task-service:monolith.listenerArn", "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/x/1", "task-service:monolith.listenerArn must be an ALB listener ARN"),
    ("task-service:monolith.targetGroupArn", "myteacher-app-tg", "task-service:monolith.targetGroupArn must be a target group ARN"),
    ("task-service:monolith.dbSecretArn", "myteacher/db-credentials", "task-service:monolith.dbSecretArn must be a Secrets Manager secret ARN"),
    ("task-service:monolith.dbSecurityGroupId", "default", "task-service:monolith.dbSecurityGroupId must be a security group id"),
    ("task-service:route.priority", 0, "task-service:route.priority must be between 1 and 50000"),
    ("task-service:route.pathPatterns", [], "task-service:route.pathPatterns must list at least 1 item(s)"),
    ("task-service:dms.instanceClass", "db.t3.medium", "task-service:dms.instanceClass must be a DMS instance class"),
    ("task-service:dms.migrationType", "full", "task-service:dms.migrationType must be one of full-load, cdc, full-load-and-cdc"),
    ("task-service:dms.tables", ["tasks", "Tasks;drop"], "task-service:dms.tables items must be PostgreSQL table names"),
    ("task-service:dms.tables", ["tasks", "tasks"], "task-service:dms.tables must not repeat an item"),
    ("task-service:cognito.userPoolId", "pool", "task-service:cognito.userPoolId must be a Cognito user pool id"),
    ("task-service:tags", {"aws:owner": "me"}, "task-service:tags.aws:owner must not start with 'aws:'"),
    ("task-service:canaryWieght", 5, "task-service:canaryWieght is not a known key (expected one of: environment, logRetentionDays, canaryWeight,"),
    ("task-service:monolithStack.name", "myteacher-dev", "task-service:monolithStack.name must be a fully qualified stack name"),
    ("task-service:monolithStack", {"name": "acme/myteacher/dev", "outputs": {"vpcID": "vpcId"}}, "task-service:monolithStack.outputs.vpcID is not a known setting"),
    ("task-service:dms.tables", ["tasks", "users"], "task-service:dms.tables items must be one of tasks, task_images, task_tag"),
    ("task-service:db.allocatedStorage", True, "task-service:db.allocatedStorage must be a whole number (got True)"),
    ("task-service:db.allocatedStorage", "100", "task-service:db.allocatedStorage must be a whole number (got '100')"),
    ("task-service:db.multiAz", "true", "task-service:db.multiAz must be true or false (got 'true')"),
    ("task-service:canaryWeight", "true", "task-service:canaryWeight must be a whole number"),
    ("task-service:namePrefix", "Task_Service", "task-service:namePrefix must be a lower-case name prefix"),
    ("task-service:tags", {"ManagedBy": "me"}, "task-service:tags.ManagedBy must not be set: the program sets ManagedBy"),
    ("task-service:network.vpcId", "vpc-0a1b2c3d4e5f60718\n", "task-service:network.vpcId must be a VPC id"),
    ("aws:allowedAccountIds", ["12345"], "aws:allowedAccountIds must list exactly one 12-digit AWS account id"),
    ("aws:allowedAccountIds", ["123456789012", "210987654321"], "aws:allowedAccountIds must list exactly one 12-digit AWS account id"),
    ("task-service:environment", "prod", "task-service:environment must be one of production, development"),
    ("task-service:logRetentionDays", 100, "task-service:logRetentionDays must be one of 1, 3, 5, 7"),
    ("task-service:logRetentionDays", 90, "task-service:logRetentionDays must be at least 365 in a production stack"),
    ("task-service:db.logRetentionDays", 90, "task-service:db.logRetentionDays is not a known setting"),
    ("task-service:secrets.recoveryWindowDays", 5, "task-service:secrets.recoveryWindowDays must be 0 or between 7 and 30"),
    ("task-service:secrets.recoveryWindowDays", 31, "task-service:secrets.recoveryWindowDays must be 0 or between 7 and 30"),
    ("task-service:secrets.recoveryWindowDays", 0, "task-service:secrets.recoveryWindowDays must be between 7 and 30 in a production stack"),
    ("task-service:secrets.rotationDays", 0, "task-service:secrets.rotationDays must be between 1 and 365"),
    ("task-service:service.waitForSteadyState", False, "task-service:service.waitForSteadyState must be true in a production stack"),
    ("task-service:service.waitForSteadyState", "yes", "task-service:service.waitForSteadyState must be true or false"),
    ("task-service:service.image", "task-service", "task-service:service.image must be an image with a tag or digest"),
    ("task-service:dms.engineVersion", "3.5.2", "task-service:dms.engineVersion must be a DMS engine version of at least 3.5.3"),
    ("task-service:dms.engineVersion", "3.6", "task-service:dms.engineVersion must be a DMS engine version of at least 3.5.3"),
    ("task-service:db.maxConnections", 10, "task-service:db.maxConnections must be between 20 and 5000"),
    ("task-service:db.appUsername", "task_service_user", "task-service:db.appUsername must differ from db.username"),
    ("task-service:db.appUsername", "App", "task-service:db.appUsername must be a PostgreSQL role name of at most 57"),
    ("task-service:network.natGateway", "no", "task-service:network.natGateway must be true or false"),
]


@pytest.mark.parametrize("key,value,message", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_names_the_key_and_the_stack_file(key: str, value: Any, message: str) -> None:
    with pytest.raises(ProgramError) as caught:
        run_program(ROOT, "prod", {key: value})
    text = str(caught.value)
    assert message in text
    assert text.endswith("in Pulumi.prod.yaml")
    assert "\n" not in text and "Traceback" not in text


def test_a_top_level_number_arrives_as_text_and_is_read_as_one() -> None:
    """The CLI hands every top-level value over as a string: `canaryWeight: 5` reaches the program as "5"."""
    rec = run_program(ROOT, "prod", {"task-service:canaryWeight": "5"})
    assert rec.outputs["canaryWeight"] == 5


def test_a_long_bad_value_is_quoted_shortened() -> None:
    with pytest.raises(ProgramError) as caught:
        run_program(ROOT, "prod", {"task-service:service.healthCheckPath": "health" + "x" * 5000})
    assert len(str(caught.value)) < 250 and "..." in str(caught.value)


def test_no_resource_is_declared_before_config_is_valid() -> None:
    """A stack reference is a resource; with bad config even the dev stack declares nothing."""
    from preview import engine

    seen: list[str] = []
    original = engine._RecordingMonitor.RegisterResource

    def spy(self: engine._RecordingMonitor, request: Any) -> Any:
        seen.append(request.type)
        return original(self, request)

    engine._RecordingMonitor.RegisterResource = spy  # type: ignore[method-assign]
    try:
        with pytest.raises(ProgramError, match="task-service:autoscaling.max must be >= min"):
            run_program(ROOT, "dev", {"task-service:autoscaling.max": 1})
    finally:
        engine._RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
    assert seen == ["pulumi:pulumi:Stack"]


def test_missing_required_key() -> None:
    settings = load_stack(ROOT, "prod")
    del settings.config["task-service:cognito"]
    with pytest.raises(ProgramError, match=r"^task-service:cognito.userPoolId is required in Pulumi.prod.yaml$"):
        run_program(ROOT, "prod", settings_=settings)


def test_traffic_needs_an_image() -> None:
    """Without an image nothing serves /api/tasks, so the canary cannot take any of it."""
    with pytest.raises(ProgramError, match=r"^task-service:canaryWeight must be 0 until service.image is set .* \(got 5\) in Pulumi.prod.yaml$"):
        run_program(ROOT, "prod", {"task-service:service.image": None, "task-service:canaryWeight": 5})


def test_null_is_not_unset(tmp_path: Path) -> None:
    """`image: ~` would park a live service (delete it) without a word; only a key left out is "not set"."""
    text = (ROOT / "Pulumi.prod.yaml").read_text().replace("    image: ", "    image: ~  # ", 1)
    assert "image: ~" in text
    for name in ("Pulumi.yaml", "__main__.py", "stack_config.py", "components", "task_service", "stack-references"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "Pulumi.prod.yaml").write_text(text)
    with pytest.raises(ProgramError, match=r"^task-service:service.image must not be null: leave the key out"):
        run_program(tmp_path, "prod")


def test_a_development_stack_may_relax_the_production_rules() -> None:
    relaxed = {
        "task-service:environment": "development",
        "task-service:logRetentionDays": 7,
        "task-service:secrets.recoveryWindowDays": 0,
        "task-service:service.waitForSteadyState": False,
    }
    rec = run_program(ROOT, "prod", relaxed)
    assert {g.inputs["retentionInDays"] for g in rec.by_type("aws:cloudwatch/logGroup:LogGroup")} == {7}
    assert {s.inputs["recoveryWindowInDays"] for s in rec.by_type("aws:secretsmanager/secret:Secret")} == {0}
    assert rec.one("aws:ecs/service:Service").inputs["waitForSteadyState"] is False


def test_an_unset_environment_is_production() -> None:
    with pytest.raises(ProgramError, match=r"^task-service:logRetentionDays must be at least 365 in a production stack"):
        run_program(ROOT, "dev", {"task-service:environment": None})


def test_missing_region() -> None:
    settings = load_stack(ROOT, "prod")
    del settings.config["aws:region"]
    with pytest.raises(ProgramError, match=r"^aws:region is required"):
        run_program(ROOT, "prod", settings_=settings)


def test_declared_type_is_enforced_like_the_cli(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  task-service:canaryWeight: five\n")
    with pytest.raises(StackFileError, match="task-service:canaryWeight must be of type integer .* in Pulumi.bad.yaml"):
        load_stack(tmp_path, "bad")


def test_missing_and_malformed_stack_files(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    with pytest.raises(StackFileError, match="Pulumi.nope.yaml not found"):
        load_stack(tmp_path, "nope")
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  task-service:db: [unclosed\n")
    with pytest.raises(StackFileError, match="Pulumi.broken.yaml is not valid YAML at line"):
        load_stack(tmp_path, "broken")


def test_missing_stack_reference_file(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match="stack reference 'acme/myteacher/dev': no outputs file"):
        run_program(ROOT, "dev", references_dir=tmp_path)


def test_stack_reference_fills_what_explicit_config_leaves_out() -> None:
    rec = run_program(ROOT, "dev", {"task-service:network.vpcId": "vpc-0123456789abcdef0"})
    tg = rec.one("aws:lb/targetGroup:TargetGroup").inputs
    assert tg["vpcId"] == "vpc-0123456789abcdef0"  # explicit wins
    rule = rec.one("aws:lb/listenerRule:ListenerRule").inputs
    assert "myteacher-dev-alb" in rule["listenerArn"]  # from the referenced stack's outputs
    assert rec.reads == [("pulumi:pulumi:StackReference", "monolith", "acme/myteacher/dev")]
