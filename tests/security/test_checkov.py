"""checkov on a Terraform-plan view of the recorded prod program: nothing fails but the waived findings.

checkov runs from its own virtualenv (`.venv-checkov`, `make test` creates it from security_scan/requirements.txt):
it pins boto3 1.35 and the runbook pins 1.44. It is slow to start, so one run per session scans two plans at once:
the program as it is, and a copy with three regressions that must be caught.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from preview.engine import Recording
from security_scan.tfplan import TERRAFORM_TYPES, plan

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
WAIVERS = yaml.safe_load((ROOT / "security_scan" / "waivers.yaml").read_text())


def _resource(doc: dict[str, Any], address: str) -> dict[str, Any]:
    return next(r for r in doc["planned_values"]["root_module"]["resources"] if r["address"] == address)


def _unset(doc: dict[str, Any], address: str, attribute: str) -> None:
    """Drop an attribute from the planned values and its reference from the configuration, as deleting it would."""
    del _resource(doc, address)["values"][attribute]
    configured = next(r for r in doc["configuration"]["root_module"]["resources"] if r["address"] == address)
    configured["expressions"].pop(attribute, None)


def _regressed(doc: dict[str, Any]) -> dict[str, Any]:
    """The same plan with a log group unencrypted and kept 90 days, the topic unencrypted, the master secret unrotated."""
    bad = copy.deepcopy(doc)
    _unset(bad, "aws_cloudwatch_log_group.task_service_logs", "kms_key_id")
    _resource(bad, "aws_cloudwatch_log_group.task_service_logs")["values"]["retention_in_days"] = 90
    _unset(bad, "aws_sns_topic.task_service_monitoring_alarms", "kms_master_key_id")
    gone = "aws_secretsmanager_secret_rotation.task_service_rotation_master"
    bad["planned_values"]["root_module"]["resources"] = [r for r in bad["planned_values"]["root_module"]["resources"] if r["address"] != gone]
    bad["resource_changes"] = [r for r in bad["resource_changes"] if r["address"] != gone]
    bad["configuration"]["root_module"]["resources"] = [r for r in bad["configuration"]["root_module"]["resources"] if r["address"] != gone]
    return bad


@pytest.fixture(scope="session")
def prod_plan(prod_deployed: Recording) -> dict[str, Any]:
    return plan(prod_deployed)


@pytest.fixture(scope="session")
def scans(prod_plan: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[str, str]]]:
    """(check id, resource address) of every failed and passed check, per plan, from one checkov run."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make .venv-checkov/.installed` (make test does)")
    folder = tmp_path_factory.mktemp("plans")
    (folder / "prod.json").write_text(json.dumps(prod_plan))
    (folder / "regressed.json").write_text(json.dumps(_regressed(prod_plan)))
    files = [arg for name in ("prod.json", "regressed.json") for arg in ("-f", str(folder / name))]
    run = subprocess.run(
        [str(CHECKOV), *files, "--framework", "terraform_plan", "--output", "json", "--skip-download", "--compact"],
        capture_output=True, text=True, timeout=300, cwd=folder,
    )
    report = json.loads(run.stdout)
    out: dict[str, set[tuple[str, str]]] = {}
    for state in ("failed", "passed"):
        for check in report["results"][f"{state}_checks"]:
            name = Path(check["file_path"]).stem
            out.setdefault(f"{name}:{state}", set()).add((check["check_id"], check["resource"]))
    assert report["summary"]["parsing_errors"] == 0
    return out


def test_prod_fails_only_on_the_waived_findings(scans: dict[str, set[tuple[str, str]]]) -> None:
    waived = {(w["check"], w["resource"]) for w in WAIVERS}
    assert scans["prod:failed"] == waived  # nothing else fails, and no waiver is stale
    assert all(len(w["reason"]) > 80 for w in WAIVERS)


def test_the_scan_sees_the_hardening(scans: dict[str, set[tuple[str, str]]], prod_plan: dict[str, Any]) -> None:
    """Not a vacuous pass: the checks this work closes ran on every resource they concern, and passed."""
    passed = scans["prod:passed"]
    groups = {r["address"] for r in prod_plan["planned_values"]["root_module"]["resources"] if r["type"] == "aws_cloudwatch_log_group"}
    assert len(groups) == 7
    for check in ("CKV_AWS_158", "CKV_AWS_338"):  # encrypted with a KMS key; kept at least a year
        assert {address for cid, address in passed if cid == check} == groups, check
    assert ("CKV_AWS_26", "aws_sns_topic.task_service_monitoring_alarms") in passed
    for key in ("aws_kms_key.task_service_keys_data", "aws_kms_key.task_service_keys_telemetry"):
        assert {("CKV2_AWS_64", key), ("CKV_AWS_33", key), ("CKV_AWS_7", key)} <= passed  # explicit policy, no *, rotation
    for secret in ("aws_secretsmanager_secret.task_service_db_secret", "aws_secretsmanager_secret.task_service_db_app_secret"):
        assert {("CKV2_AWS_57", secret), ("CKV_AWS_149", secret)} <= passed  # rotating, customer key
    assert ("CKV_AWS_211", "aws_db_instance.task_service_db_instance") in passed  # the CA is current
    assert ("CKV_AWS_222", "aws_dms_replication_instance.task_service_dms_instance") in passed


def test_regressions_are_caught(scans: dict[str, set[tuple[str, str]]]) -> None:
    new = scans["regressed:failed"] - scans["prod:failed"]
    assert new == {
        ("CKV_AWS_158", "aws_cloudwatch_log_group.task_service_logs"),
        ("CKV_AWS_338", "aws_cloudwatch_log_group.task_service_logs"),
        ("CKV_AWS_26", "aws_sns_topic.task_service_monitoring_alarms"),
        ("CKV2_AWS_57", "aws_secretsmanager_secret.task_service_db_secret"),
    }


def test_the_plan_is_a_faithful_terraform_view(prod_plan: dict[str, Any], prod_deployed: Recording) -> None:
    resources = prod_plan["planned_values"]["root_module"]["resources"]
    aws_resources = [r for r in prod_deployed.resources if r.custom and r.type.startswith("aws:")]
    assert len(resources) == len(aws_resources) and {r["type"] for r in resources} <= set(TERRAFORM_TYPES.values())
    ecr = _resource(prod_plan, "aws_ecr_repository.task_service_image_repo")["values"]
    assert ecr["encryption_configuration"] == [{"encryption_type": "AES256"}]  # pluralised block, back to Terraform's
    assert ecr["image_scanning_configuration"] == [{"scan_on_push": True}]  # a single block is a list of one
    tg = _resource(prod_plan, "aws_lb_target_group.task_service_route_tg")["values"]
    assert tg["health_check"][0]["path"] == "/health" and tg["port"] == 3001
    params = {p["name"]: p for p in _resource(prod_plan, "aws_db_parameter_group.task_service_db_params")["values"]["parameter"]}
    assert params["rds.force_ssl"]["value"] == "1"
    sar = _resource(prod_plan, "aws_serverlessapplicationrepository_cloudformation_stack.task_service_rotation_app_function")["values"]
    assert sar["parameters"]["functionName"] == "task-service-rotate-app"  # a map stays a map
    rotation = next(r for r in prod_plan["configuration"]["root_module"]["resources"] if r["address"] == "aws_secretsmanager_secret_rotation.task_service_rotation_master")
    assert "aws_secretsmanager_secret.task_service_db_secret" in rotation["expressions"]["secret_id"]["references"]
