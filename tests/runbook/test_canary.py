"""`canary status`: the pack's health gate on the live moto stack, the soak progress, and the next step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runbook.alb import dimension_load_balancer, dimension_target_group
from runbook.canary import deploy_command, thresholds_from
from runbook.cli import main
from runbook.errors import BadInput
from runbook.pack import health_gate
from task_service import contract
from task_service.canary import next_step
from tests.runbook import canary_story, moto_stack
from tests.runbook.report_rows import check_rows


def test_steps_follow_the_plan() -> None:
    assert [next_step(w) for w in (0, 5, 25, 50, 100)] == [5, 25, 50, 100, None]
    assert next_step(10) == 25


def test_cloudwatch_dimensions_come_from_the_arns() -> None:
    listener = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/myteacher-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
    group = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/task-service-tg/73e2d6bc24d8a067"
    assert dimension_load_balancer(listener) == "app/myteacher-alb/50dc6c495c0c9188"
    assert dimension_target_group(group) == "targetgroup/task-service-tg/73e2d6bc24d8a067"
    with pytest.raises(BadInput, match="listenerArn: .* is not an ALB listener ARN"):
        dimension_load_balancer(group)


def status(outputs_file: Any, stack: moto_stack.Stack, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["canary", "status", "--outputs", outputs_file(stack.outputs), *extra])
    return code, capsys.readouterr().out


def test_a_healthy_soak_allows_the_next_step(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    canary_story.telemetry(stack).soaked(50)
    canary_story.all_alarms_ok(stack)
    code, text = status(outputs_file, stack, capsys)
    rows = check_rows(text)
    assert code == 0, text
    assert "soak: 30 of 30 minutes at 50%" in text
    assert rows["p95 latency"] == ("PASS", "240 ms (gate < 500 ms)")
    assert rows["p50 latency"] == ("PASS", "150 ms (gate < 200 ms)")
    assert rows["cpu"] == ("PASS", "40% peak (gate < 70%)")
    assert rows["alarms"] == ("PASS", "none of 9 in ALARM")
    assert "gate thresholds: policy/config/prod.json (alb-canary-health-gate), soak window 30 minutes" in text
    assert "next step: 50% -> 100%: ALLOWED" in text and f"  move forward: {deploy_command('prod', 100)}" in text


def test_the_soak_progress_is_read_back_from_cloudwatch(aws_env: str, monkeypatch: pytest.MonkeyPatch, outputs_file: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    built = moto_stack.build(monkeypatch, canary_weight=5)
    story = canary_story.telemetry(built)
    story.minutes(1, 20, weight=5)
    story.minutes(21, 40, weight=0)
    code, text = status(outputs_file, built, capsys)
    soak = check_rows(text)["soak"]
    assert code == 1 and soak[0] == "FAIL"
    done = int(soak[1].split(" of ")[0])
    assert 17 <= done <= 19 and f"soak: {done} of 30 minutes at 5% (at " in text
    assert "next step: 5% -> 25%: NOT ALLOWED" in text
    assert "(blocked by: soak)" in text and "  watch the step: python -m runbook canary watch --outputs " in text
    assert f"when it ends healthy: {deploy_command('prod', 25)}" in text
    assert "  to go back instead: python -m runbook rollback --yes --outputs " in text


def test_a_breached_gate_blocks(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    canary_story.telemetry(stack).soaked(50, error_percent=2.0)
    code, text = status(outputs_file, stack, capsys)
    assert code == 1
    assert check_rows(text)["error rate"] == ("FAIL", "2% of 6000 requests (gate < 1%)")
    assert "blocked by: error rate" in text


def test_missing_data_blocks_as_not_available(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    canary_story.telemetry(stack).soaked(50, latency_ms=())
    code, text = status(outputs_file, stack, capsys)
    status_p95, detail = check_rows(text)["p95 latency"]
    assert code == 1 and status_p95 == "N/A" and "CloudWatch returned no TargetResponseTime p95" in detail


def test_at_zero_percent_healthy_targets_and_a_load_test_allow_five(aws_env: str, monkeypatch: pytest.MonkeyPatch,
                                                                     outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    built = moto_stack.build(monkeypatch, canary_weight=0)
    canary_story.all_alarms_ok(built)
    before = built.rule_weights()
    code, text = status(outputs_file, built, capsys)
    assert code == 1 and check_rows(text)["load test"][0] == "N/A"  # prod requires a load test before the first step
    canary_story.load_test(built)
    code, text = status(outputs_file, built, capsys)
    assert code == 0, text
    assert check_rows(text)["targets"] == ("PASS", f"2/2 healthy in {dimension_target_group(built.value(contract.TARGET_GROUP_ARN))}")
    assert "next step: 0% -> 5%: ALLOWED" in text and f"  move forward: {deploy_command('prod', 5)}" in text
    assert built.rule_weights() == before


def test_live_weight_off_config_blocks(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack.set_rule_weight(0)
    code, text = status(outputs_file, stack, capsys)
    state, detail = check_rows(text)["live weight == configured"]
    assert code == 1 and state == "FAIL" and "live 0%, configured 50%" in detail
    assert "pulumi config set canaryWeight 0 -s prod" in detail


def test_a_shorter_window_and_bad_windows(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    canary_story.telemetry(stack).minutes(1, 12, weight=50)
    code, text = status(outputs_file, stack, capsys, "--window-minutes", "10")
    assert code == 0 and "soak: 10 of 10 minutes at 50%" in text
    assert main(["canary", "status", "--outputs", outputs_file(stack.outputs), "--window-minutes", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --window-minutes must be within 1..1440, got 0."


def test_thresholds_come_from_the_stack_policy_config(tmp_path: Path) -> None:
    assert thresholds_from(tmp_path / "absent.json") == health_gate.Thresholds.from_config()
    path = tmp_path / "prod.json"
    path.write_text(json.dumps({health_gate.POLICY_NAME: {"soakMinutes": 45, "maxP95Ms": 300, "enforcementLevel": "mandatory"}}))
    found = thresholds_from(path)
    assert (found.soak_minutes, found.max_p95_ms, found.max_cpu) == (45, 300.0, 70.0)
    path.write_text(json.dumps({health_gate.POLICY_NAME: {"soakMinutes": "half an hour"}}))
    with pytest.raises(BadInput, match=r"prod.json: alb-canary-health-gate.soakMinutes: 'half an hour' is not of type 'integer'"):
        thresholds_from(path)
    path.write_text("{not json")
    with pytest.raises(BadInput, match="cannot be read as a policy config"):
        thresholds_from(path)
    for hostile in ('{"alb-canary-health-gate": {}, "alb-canary-health-gate": {"soakMinutes": 1}}', "[]", b"\xff"):
        path.write_bytes(hostile if isinstance(hostile, bytes) else hostile.encode())
        with pytest.raises(BadInput, match="cannot be read as a policy config"):
            thresholds_from(path)
