"""`preflight` against moto: a good existing estate passes, then each precondition is broken on its own.

The stack file is prod's with the network/monolith ids replaced by what moto assigned; the command reads it with the
program's own loader, as it reads the committed ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from preview.stack_files import set_path
from runbook.cli import main
from task_service import contract
from task_service.canary import CANARY_TAG
from tests.runbook import moto_stack
from tests.runbook.report_rows import check_rows

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-1"
IMAGE_TAG = "1.0.0"
SECRET = {"host": "", "port": 5432, "username": "myteacher", "password": "not-printed-anywhere", "dbname": "myteacher_production"}


def _client(service: str) -> Any:
    return moto_stack.client(service, REGION)


@dataclass
class Estate:
    """The monolith's side of AWS as the Task Service finds it, and a stack file pointing at it."""

    project: Path
    ids: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    def write(self, **changes: Any) -> None:
        """Pulumi.prod.yaml with `changes` ("section.key" or "key" -> value; None removes the key)."""
        doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
        config = doc["config"]
        config["task-service:network"] = {k: self.ids[k] for k in ("vpcId", "serviceSubnetIds", "dbSubnetIds")}
        config["task-service:monolith"] = {
            k: self.ids[k] for k in ("listenerArn", "albSecurityGroupId", "targetGroupArn", "dbHost", "dbSecurityGroupId", "dbSecretArn")
        }
        config["task-service:service"]["image"] = self.ids["image"]
        for dotted, value in changes.items():
            set_path(config, f"task-service:{dotted}", value)
        (self.project / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))

    def run(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, tuple[str, str]], str, str]:
        code = main(["preflight", "--stack", "prod", "-C", str(self.project), *extra])
        captured = capsys.readouterr()
        return code, check_rows(captured.out), captured.out, captured.err


def _build(project: Path) -> Estate:
    ec2, elbv2, rds = _client("ec2"), _client("elbv2"), _client("rds")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = lambda cidr, az: ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]  # noqa: E731
    service_subnets = [subnet("10.1.1.0/24", "a"), subnet("10.1.2.0/24", "c")]
    db_subnets = [subnet("10.1.3.0/24", "a"), subnet("10.1.4.0/24", "c")]
    alb_sg = ec2.create_security_group(GroupName="myteacher-alb", Description="alb", VpcId=vpc)["GroupId"]
    db_sg = ec2.create_security_group(GroupName="myteacher-db", Description="db", VpcId=vpc)["GroupId"]
    alb = elbv2.create_load_balancer(Name="myteacher-alb", Subnets=service_subnets, SecurityGroups=[alb_sg])["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="myteacher-app-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]
    forward = [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]
    listener = elbv2.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=forward)["Listeners"][0]
    elbv2.create_rule(ListenerArn=listener["ListenerArn"], Priority=5, Conditions=[{"Field": "path-pattern", "Values": ["/api/users/*"]}], Actions=forward)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "dms.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for role in ("dms-vpc-role", "dms-cloudwatch-logs-role"):
        _client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    rds.create_db_parameter_group(DBParameterGroupName="myteacher-pg16", DBParameterGroupFamily="postgres16", Description="monolith")
    rds.modify_db_parameter_group(
        DBParameterGroupName="myteacher-pg16",
        Parameters=[{"ParameterName": "rds.logical_replication", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}],
    )
    db = rds.create_db_instance(
        DBInstanceIdentifier="myteacher-db", DBInstanceClass="db.t3.medium", Engine="postgres", MasterUsername="myteacher",
        MasterUserPassword="a-long-enough-password", AllocatedStorage=20, DBParameterGroupName="myteacher-pg16", StorageEncrypted=True,
    )["DBInstance"]
    host = db["Endpoint"]["Address"]
    secret = _client("secretsmanager").create_secret(Name="myteacher/db-credentials", SecretString=json.dumps(SECRET | {"host": host}))["ARN"]
    repository = _client("ecr").create_repository(repositoryName="task-service")["repository"]["repositoryUri"]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {}, "layers": []}
    _client("ecr").put_image(repositoryName="task-service", imageManifest=json.dumps(manifest), imageTag=IMAGE_TAG)
    (project / "Pulumi.yaml").symlink_to(ROOT / "Pulumi.yaml")
    ids = {
        "vpcId": vpc, "serviceSubnetIds": service_subnets, "dbSubnetIds": db_subnets, "listenerArn": listener["ListenerArn"],
        "albSecurityGroupId": alb_sg, "targetGroupArn": tg["TargetGroupArn"], "dbHost": host, "dbSecurityGroupId": db_sg,
        "dbSecretArn": secret, "image": f"{repository}:{IMAGE_TAG}", "subnet": subnet,
    }
    estate = Estate(project, ids)
    estate.write()
    return estate


def _backup(estate: Estate) -> None:
    """`runbook backup` of the monolith DB, recorded in backup-prod.json of the current directory."""
    outputs = moto_stack.with_values(moto_stack.program_outputs(), {contract.MONOLITH_DB_HOST: estate.ids["dbHost"]})
    path = estate.project / "outputs-prod.json"
    path.write_text(json.dumps(outputs))
    assert main(["backup", "--outputs", str(path), "--poll-seconds", "0.1"]) == 0


@pytest.fixture
def estate(aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Estate:
    monkeypatch.chdir(tmp_path)
    built = _build(tmp_path)
    _backup(built)
    capsys.readouterr()
    return built


CHECKS = {
    "vpc exists", "service subnets", "db subnets", "listener exists", "rule priority free", "alb security group exists",
    "monolith target group exists", "monolith stickiness", "dms account roles", "monolith logical replication",
    "monolith secret", "image in ecr", "monolith backup",
}


def test_a_good_estate_passes_every_check(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, out, err = estate.run(capsys)
    assert (code, err) == (0, "")
    assert set(rows) == CHECKS and {status for status, _ in rows.values()} == {"PASS"}
    assert rows["rule priority free"] == ("PASS", "priority 10 is free on the listener")
    assert rows["service subnets"][1] == f"2 subnets in {REGION}a, {REGION}c"
    assert "13 passed, 0 failed, 0 not available" in out
    assert rows["monolith backup"][1].startswith("task-service-backup-monolith-") and "available, encrypted" in rows["monolith backup"][1]
    assert SECRET["password"] not in out


def test_json_output(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preflight", "--stack", "prod", "-C", str(estate.project), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and (report["passed"], report["failed"], report["notAvailable"]) == (len(CHECKS), 0, 0)
    assert {row["check"] for row in report["checks"]} == CHECKS and all(row["remedy"] == "" for row in report["checks"])
    assert {row["result"] for row in report["checks"]} == {"PASS"} and report["stack"] == "prod"


def _foreign_rule_at_10(estate: Estate) -> None:
    _client("elbv2").create_rule(
        ListenerArn=estate.ids["listenerArn"], Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/legacy/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": estate.ids["targetGroupArn"]}],
    )


def _one_az_subnets(estate: Estate) -> None:
    estate.write(**{"network.serviceSubnetIds": [estate.ids["subnet"]("10.1.9.0/24", "a"), estate.ids["subnet"]("10.1.10.0/24", "a")]})


def _sticky_monolith(estate: Estate) -> None:
    _client("elbv2").modify_target_group_attributes(
        TargetGroupArn=estate.ids["targetGroupArn"], Attributes=[{"Key": "stickiness.enabled", "Value": "true"}]
    )


def _no_logical_replication(estate: Estate) -> None:
    _client("rds").modify_db_parameter_group(
        DBParameterGroupName="myteacher-pg16",
        Parameters=[{"ParameterName": "rds.logical_replication", "ParameterValue": "0", "ApplyMethod": "pending-reboot"}],
    )


def _snapshot_deleted(estate: Estate) -> None:
    record = json.loads((estate.project / "backup-prod.json").read_text())
    _client("rds").delete_db_snapshot(DBSnapshotIdentifier=record["snapshots"][0]["snapshotId"])


def _secret_without_password(estate: Estate) -> None:
    _client("secretsmanager").put_secret_value(SecretId=estate.ids["dbSecretArn"], SecretString=json.dumps({"host": "h", "port": 5432, "username": "u"}))


BREAKS: dict[str, tuple[Callable[[Estate], None], str, str, str]] = {
    # name: (break, failing row, detail contains, remedy contains)
    "vpc": (lambda e: e.write(**{"network.vpcId": "vpc-0123456789abcdef0"}), "vpc exists", "vpc-0123456789abcdef0 not found", "network.vpcId"),
    "one-az": (_one_az_subnets, "service subnets", f"all in {REGION}a", ">= 2 AZs"),
    "subnet": (lambda e: e.write(**{"network.dbSubnetIds": [e.ids["dbSubnetIds"][0], "subnet-0123456789abcdef0"]}), "db subnets", "InvalidSubnetID.NotFound", "existing subnets"),
    "listener": (lambda e: _client("elbv2").delete_listener(ListenerArn=e.ids["listenerArn"]), "listener exists", "not found", "monolith.listenerArn"),
    "priority": (_foreign_rule_at_10, "rule priority free", "priority 10 is held by", "route.priority to a free one (e.g. 1, 2, 3)"),
    "alb-sg": (lambda e: _client("ec2").delete_security_group(GroupId=e.ids["albSecurityGroupId"]), "alb security group exists", "not found", "albSecurityGroupId"),
    "target-group": (lambda e: e.write(**{"monolith.targetGroupArn": e.ids["targetGroupArn"][:-4] + "0000"}), "monolith target group exists", "not found", "monolith.targetGroupArn"),
    "stickiness": (_sticky_monolith, "monolith stickiness", "stickiness on", "turn stickiness off"),
    "dms-roles": (lambda e: _client("iam").delete_role(RoleName="dms-vpc-role"), "dms account roles", "missing: dms-vpc-role", "dms.createAccountRoles: true"),
    "logical-replication": (_no_logical_replication, "monolith logical replication", "rds.logical_replication=0", "reboot the monolith DB"),
    "db-host": (lambda e: e.write(**{"monolith.dbHost": "elsewhere.example.com"}), "monolith logical replication", "no RDS instance has endpoint elsewhere.example.com", "monolith.dbHost"),
    "secret": (_secret_without_password, "monolith secret", "lacks password (values not shown)", "host, port, username, password"),
    "image": (lambda e: e.write(**{"service.image": e.ids["image"].replace(IMAGE_TAG, "2.0.0")}), "image in ecr", "not in task-service", "docs/first-deploy.md"),
    "no-backup": (lambda e: (e.project / "backup-prod.json").unlink(), "monolith backup", "no backup record backup-prod.json", "python -m runbook backup --stack prod"),
    "backup-deleted": (_snapshot_deleted, "monolith backup", "no longer exists", "python -m runbook backup --stack prod"),
}


CONSEQUENCES = {"vpc": {"alb security group exists"}}
"""A config pointing at another VPC also leaves the ALB's security group outside it: both rows say so."""


@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_each_broken_precondition_fails_alone_with_a_remedy(estate: Estate, capsys: pytest.CaptureFixture[str], broken: str) -> None:
    breaking, row, detail, remedy = BREAKS[broken]
    breaking(estate)
    code, rows, out, _ = estate.run(capsys)
    assert code == 1
    failed = {name: text for name, (status, text) in rows.items() if status == "FAIL"}
    also = CONSEQUENCES.get(broken, set())
    assert set(failed) == {row} | also and detail in failed[row], out
    fixes = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(fixes) == len(failed) and any(fix.startswith(f"- {row}: ") and remedy in fix for fix in fixes)
    assert {status for name, (status, _) in rows.items() if name not in failed} == {"PASS"}


def test_our_own_rule_may_hold_the_priority(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    _client("elbv2").create_rule(
        ListenerArn=estate.ids["listenerArn"], Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/tasks/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": estate.ids["targetGroupArn"]}], Tags=[{"Key": CANARY_TAG, "Value": "task-service-tg"}],
    )
    code, rows, _, _ = estate.run(capsys)
    assert code == 0 and rows["rule priority free"] == ("PASS", f"priority 10 is held by our own rule ({CANARY_TAG}=task-service-tg)")


def test_checks_that_do_not_apply_say_why(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    _client("iam").delete_role(RoleName="dms-vpc-role")
    estate.write(**{"dms.createAccountRoles": True, "dms.migrationType": "full-load"})
    _no_logical_replication(estate)
    code, rows, _, _ = estate.run(capsys)
    assert code == 0
    assert rows["dms account roles"] == ("PASS", "not needed: this stack creates them (dms.createAccountRoles)")
    assert rows["monolith logical replication"] == ("PASS", "not needed: full-load only, no CDC")


def test_before_the_first_deploy_the_repository_is_ours_to_create(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    _client("ecr").delete_repository(repositoryName="task-service", force=True)
    code, rows, out, _ = estate.run(capsys)
    assert code == 0
    assert rows["image in ecr"] == (
        "N/A",
        "repository task-service does not exist yet: this stack creates it; the first deploy needs the bootstrap in docs/first-deploy.md",
    )
    assert "confirm by hand: image in ecr" in out


def test_ids_from_the_monolith_stack_come_from_references(estate: Estate, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    references = tmp_path / "refs"
    references.mkdir()
    outputs = {"vpcId": estate.ids["vpcId"], "privateSubnetIds": estate.ids["serviceSubnetIds"], "albHttpsListenerArn": estate.ids["listenerArn"]}
    (references / "acme.myteacher.prod.json").write_text(json.dumps(outputs))
    mapping = {"serviceSubnetIds": "privateSubnetIds", "listenerArn": "albHttpsListenerArn"}
    estate.write(**{"monolithStack": {"name": "acme/myteacher/prod", "outputs": mapping}, "network.vpcId": None,
                    "network.serviceSubnetIds": None, "monolith.listenerArn": None})
    code, rows, _, _ = estate.run(capsys, "--references", str(references))
    assert code == 0 and rows["vpc exists"] == ("PASS", estate.ids["vpcId"])

    (references / "acme.myteacher.prod.json").write_text(json.dumps({k: v for k, v in outputs.items() if k != "vpcId"}))
    code, _, out, err = estate.run(capsys, "--references", str(references))
    assert (code, out) == (2, "")
    assert err.strip() == "error: stack acme/myteacher/prod has no output 'vpcId' (for task-service:network.vpcId in Pulumi.prod.yaml)"

    (references / "acme.myteacher.prod.json").write_text(json.dumps(outputs | {"vpcId": "not-a-vpc"}))
    code, _, _, err = estate.run(capsys, "--references", str(references))
    assert code == 2 and err.startswith("error: stack acme/myteacher/prod output 'vpcId' (task-service:network.vpcId) is not valid: ")

    path = os.environ["PATH"]
    os.environ["PATH"] = "/nonexistent"
    try:
        code, _, _, err = estate.run(capsys)
    finally:
        os.environ["PATH"] = path
    assert code == 2 and "monolithStack acme/myteacher/prod is referenced: pass --references DIR or install the pulumi CLI" in err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"autoscaling.min": 5, "autoscaling.max": 2}, "task-service:autoscaling.max must be >= min (min=5, max=2) in Pulumi.prod.yaml"),
        ({"network.vpcId": "vpc-XYZ"}, "task-service:network.vpcId"),
    ],
)
def test_bad_config_exits_2_naming_the_key(estate: Estate, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], message: str) -> None:
    estate.write(**changes)
    code, _, out, err = estate.run(capsys)
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1 and message in err


def test_a_missing_stack_file_exits_2(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preflight", "--stack", "staging", "-C", str(estate.project)])
    assert code == 2 and "Pulumi.staging.yaml not found" in capsys.readouterr().err


def test_without_dms_no_backup_is_needed(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    (estate.project / "backup-prod.json").unlink()
    estate.write(**{"dms.enabled": False})
    code, rows, _, _ = estate.run(capsys)
    assert code == 0 and rows["monolith backup"] == ("PASS", "not needed: dms.enabled is false (nothing is copied from the monolith)")
