"""`canary status`: gate logic on explicit numbers, and the live read against moto."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from runbook.alb import dimension_load_balancer, dimension_target_group
from runbook.canary import Metric, Metrics, allowed, deploy_command, gate_checks
from runbook.cli import main
from runbook.report import Status
from task_service import contract
from task_service.canary import next_step
from tests.runbook import moto_stack

HEALTHY = Metrics(Metric(1000), Metric(0.5), Metric(180.0), Metric(40.0), Metric(55.0))


def test_steps_follow_the_plan() -> None:
    assert [next_step(w) for w in (0, 5, 25, 50, 100)] == [5, 25, 50, 100, None]
    assert next_step(10) == 25


@pytest.mark.parametrize(
    ("metrics", "failing"),
    [
        (HEALTHY, []),
        (Metrics(Metric(1000), Metric(1.0), Metric(180.0), Metric(40.0), Metric(55.0)), ["error rate"]),
        (Metrics(Metric(1000), Metric(0.1), Metric(500.0), Metric(40.0), Metric(55.0)), ["p95 latency"]),
        (Metrics(Metric(1000), Metric(0.1), Metric(100.0), Metric(70.0), Metric(80.0)), ["cpu", "memory"]),
    ],
)
def test_gates_are_strict_upper_bounds(metrics: Metrics, failing: list[str]) -> None:
    checks = gate_checks(25, metrics)
    assert [c.name for c in checks if c.status is Status.FAIL] == failing
    assert allowed(checks) is (not failing)


def test_a_gate_without_data_blocks_the_next_step() -> None:
    metrics = Metrics(Metric(1000), Metric(0.1), Metric(None, "no p95"), Metric(40.0), Metric(55.0))
    checks = gate_checks(5, metrics)
    assert next(c for c in checks if c.name == "p95 latency").status is Status.NA
    assert not allowed(checks)


def test_traffic_gates_do_not_apply_at_zero_percent() -> None:
    no_traffic = Metrics(Metric(None), Metric(None, "no requests"), Metric(None, "no p95"), Metric(30.0), Metric(40.0))
    assert allowed(gate_checks(0, no_traffic))
    assert not allowed(gate_checks(5, no_traffic))


def test_cloudwatch_dimensions_come_from_the_arns() -> None:
    listener = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/myteacher-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
    group = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/task-service-tg/73e2d6bc24d8a067"
    assert dimension_load_balancer(listener) == "app/myteacher-alb/50dc6c495c0c9188"
    assert dimension_target_group(group) == "targetgroup/task-service-tg/73e2d6bc24d8a067"


def _put(stack: moto_stack.Stack, namespace: str, name: str, dimensions: dict[str, str], values: list[float]) -> None:
    now = datetime.now(timezone.utc)
    stack.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()], "Timestamp": now - timedelta(minutes=i + 1), "Value": value}
            for i, value in enumerate(values)
        ],
    )


def _ecs_metrics(stack: moto_stack.Stack, cpu: list[float], memory: list[float]) -> None:
    ecs = {"ClusterName": stack.value(contract.CLUSTER_NAME), "ServiceName": stack.value(contract.SERVICE_NAME)}
    _put(stack, "AWS/ECS", "CPUUtilization", ecs, cpu)
    _put(stack, "AWS/ECS", "MemoryUtilization", ecs, memory)


def _alb_metrics(stack: moto_stack.Stack, requests: list[float], errors: list[float]) -> None:
    alb = {
        "LoadBalancer": dimension_load_balancer(stack.value(contract.LISTENER_ARN)),
        "TargetGroup": dimension_target_group(stack.value(contract.TARGET_GROUP_ARN)),
    }
    _put(stack, "AWS/ApplicationELB", "RequestCount", alb, requests)
    _put(stack, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, errors)


def _rows(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"PASS", "FAIL", "N/A"}:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_at_fifty_percent_reads_rates_and_blocks_without_p95(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _alb_metrics(stack, requests=[300, 500, 200], errors=[3, 2, 0])
    _ecs_metrics(stack, cpu=[20, 45, 30], memory=[50, 60])
    code = main(["canary", "status", "--outputs", outputs_file(stack.outputs)])
    text = capsys.readouterr().out
    rows = _rows(text)
    assert code == 1
    assert rows["error rate"] == ("PASS", "0.50% (gate < 1%)")
    assert rows["cpu"] == ("PASS", "45.00% (gate < 70%)")
    assert rows["memory"] == ("PASS", "60.00% (gate < 80%)")
    assert rows["p95 latency"][0] == "N/A" and "no p95" in rows["p95 latency"][1]
    assert "next step: 50% -> 100%: NOT ALLOWED" in text
    assert "blocked by: p95 latency" in text
    assert deploy_command("prod", 100) in text


def test_high_error_rate_fails_the_gate(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _alb_metrics(stack, requests=[100, 100], errors=[5, 0])
    _ecs_metrics(stack, cpu=[20], memory=[30])
    assert main(["canary", "status", "--outputs", outputs_file(stack.outputs)]) == 1
    assert _rows(capsys.readouterr().out)["error rate"] == ("FAIL", "2.50% (gate < 1%)")


def test_at_zero_percent_with_healthy_service_allows_five(aws_env: str, monkeypatch: pytest.MonkeyPatch, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    built = moto_stack.build(monkeypatch, canary_weight=0)
    _ecs_metrics(built, cpu=[10, 12], memory=[30, 31])
    before = built.rule_weights()
    assert main(["canary", "status", "--outputs", outputs_file(built.outputs)]) == 0
    text = capsys.readouterr().out
    assert "next step: 0% -> 5%: ALLOWED" in text
    assert f"  move forward: {deploy_command('prod', 5)}" in text
    assert built.rule_weights() == before


def test_live_weight_off_config_blocks(stack: moto_stack.Stack, outputs_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack.set_rule_weight(0)
    _ecs_metrics(stack, cpu=[10], memory=[30])
    assert main(["canary", "status", "--outputs", outputs_file(stack.outputs)]) == 1
    status, detail = _rows(capsys.readouterr().out)["live weight == configured"]
    assert status == "FAIL" and "live 0%, configured 50%" in detail
    assert "pulumi config set canaryWeight 0 -s prod" in detail
