"""The hermetic preview end to end: program under mocks, the pack over gRPC, exit codes and outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from preview.cli import main
from preview.wire import UNKNOWN
from task_service import contract
from task_service.contract import PREVIEW_UNKNOWN_KEY

ROOT = Path(__file__).resolve().parents[2]
PROD_POLICY = str(ROOT / "policy" / "config" / "prod.json")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prod_preview_is_clean_and_writes_every_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    outputs_file = tmp_path / "outputs.json"
    code, out, err = run(capsys, "-C", str(ROOT), "-s", "prod", "--json", "--outputs", str(outputs_file))
    assert code == 0, err
    result = json.loads(out)
    assert result["policyViolations"] == []
    by_type = Counter(step["newState"]["type"] for step in result["steps"])
    assert by_type["aws:rds/instance:Instance"] == 1 and by_type["aws:cloudwatch/metricAlarm:MetricAlarm"] == 9
    assert by_type["aws:dms/endpoint:Endpoint"] == 2 and by_type["aws:ecs/service:Service"] == 1
    assert result["changeSummary"] == {"create": len(result["steps"])} == {"create": 92}
    text = outputs_file.read_text()
    assert UNKNOWN not in text  # the engine's sentinel is never written as a value
    outputs = json.loads(text)
    assert result["steps"][0]["newState"]["outputs"] == {name: UNKNOWN for name in outputs[PREVIEW_UNKNOWN_KEY]} | {
        name: value for name, value in outputs.items() if name != PREVIEW_UNKNOWN_KEY
    }
    unknown = outputs.pop(PREVIEW_UNKNOWN_KEY)
    assert unknown == sorted(unknown) and "targetGroupArn" in unknown  # unknown until deployed
    assert set(outputs) | set(unknown) == {o.name for o in contract.expected(dms_enabled=True)}
    assert not set(outputs) & set(unknown)
    assert outputs["canaryWeight"] == 0 and outputs["listenerRulePriority"] == 10  # integers, as the CLI prints
    # the canary progression cannot read live weights here: said, not silently passed
    assert [(d["severity"], d["message"].split("]")[0]) for d in result["diagnostics"]] == [("info", "not applicable: [alb-canary-progression")]


def test_dev_preview_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-C", str(ROOT), "-s", "dev")
    assert code == 0
    assert "Previewing update (task-service/dev)" in out
    assert " +   ├─ task-service:database:TaskServiceDb" in out  # children sorted by name: db before route
    assert "aws:rds/instance:Instance" in out and "task-service-db-instance" in out
    assert "dbAddress" in out and "output<string>" in out
    assert "+ 73 to create" in out
    assert "[multi-az]" in out and "❌" not in out  # single-AZ dev is advisory only
    assert "aws:dms/" not in out


@pytest.mark.parametrize(
    "changes,policy,resource",
    [
        ({"task-service:canaryWeight": 30}, "alb-canary-weights", "task-service-route-rule"),
        ({"task-service:db.backupRetentionDays": 3}, "rds-backup-retention", "task-service-db-instance"),
        ({"task-service:db.multiAz": False}, "multi-az", "task-service-db-instance"),
        ({"task-service:autoscaling.max": 12}, "ecs-autoscaling-capacity", "task-service-scaling-target"),
    ],
)
def test_mandatory_violation_exits_1_naming_policy_and_resource(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    write_stack: Callable[..., str],
    changes: dict[str, Any],
    policy: str,
    resource: str,
) -> None:
    stack = write_stack("bad", changes)
    code, out, _ = run(capsys, "-C", str(project), "-s", stack, "--policy-pack-config", PROD_POLICY)
    assert code == 1
    mandatory = out.split("❌ mandatory", 1)[1].split("\n\n", 1)[0]
    assert f"[{policy}]" in mandatory and resource in mandatory


def test_bad_config_exits_2_naming_the_key(capsys: pytest.CaptureFixture[str], project: Path, write_stack: Callable[..., str]) -> None:
    stack = write_stack("bad", {"task-service:autoscaling.min": 5, "task-service:autoscaling.max": 2})
    code, out, err = run(capsys, "-C", str(project), "-s", stack)
    assert code == 2 and out == ""
    assert err.strip() == "error: task-service:autoscaling.max must be >= min (min=5, max=2) in Pulumi.bad.yaml"


def test_missing_stack_file_exits_2_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-C", str(ROOT), "-s", "staging")
    assert code == 2 and "Pulumi.staging.yaml not found" in err


def test_malformed_stack_file_and_missing_policy_config(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    (project / "Pulumi.broken.yaml").write_text("config:\n  task-service:db: {instanceClass: [\n")
    code, _, err = run(capsys, "-C", str(project), "-s", "broken")
    assert code == 2 and "Pulumi.broken.yaml is not valid YAML" in err
    code, _, err = run(capsys, "-C", str(ROOT), "-s", "prod", "--policy-pack-config", str(project / "nope.json"))
    assert code == 2 and "nope.json not found" in err


def test_module_entry_point_runs_quietly_without_a_terminal() -> None:
    """What CI and the README run: no progress noise on a pipe, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "preview", "-s", "dev", "--no-policy"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("Previewing update (task-service/dev)")
