"""`alb-canary-health-gate` against moto's server on loopback, driven over the Analyzer protocol as the engine does.

Each case puts its own story into moto (metric data minute by minute, alarm states, registered targets, the
load-test result) and asks the prod pack about one change of the rule's weight. moto computes no percentiles; the
session's server is taught them (tests/moto_percentiles.py). moto names CloudWatch's IAM actions `monitoring:*`
where AWS says `cloudwatch:*`, so the refused-identity case grants both spellings.
"""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional

import boto3
import pytest

from policy_support import FAKE_AWS, POLICY_DIR, Alb
from preview.analyzer_client import PolicyPackServer
from preview.wire import UNKNOWN
from task_service_policies import health_gate
from tests.canary_telemetry import Telemetry

GATE = health_gate.POLICY_NAME
PROD = json.loads((POLICY_DIR / "config" / "prod.json").read_text())[GATE]
REGION = FAKE_AWS["AWS_DEFAULT_REGION"]


@dataclass
class Estate:
    alb: Alb
    telemetry: Telemetry
    cloudwatch: Any
    ssm: Any

    def alarm(self, name: str, state: str = "ALARM") -> None:
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    def load_test(self, *, passed: bool = True, age: timedelta = timedelta(hours=1), text: Optional[str] = None) -> None:
        finished = (datetime.now(timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
        value = text or json.dumps({"passed": passed, "finishedAt": finished, "p95Ms": 180, "errorRatePercent": 0.1,
                                    "requests": 15000})
        self.ssm.put_parameter(Name=PROD["loadTestParameter"], Value=value, Type="String", Overwrite=True)


def _alarm(cloudwatch: Any, name: str) -> None:
    cloudwatch.put_metric_alarm(AlarmName=name, MetricName="CPUUtilization", Namespace="AWS/ECS", Statistic="Average",
                                Period=60, EvaluationPeriods=1, Threshold=80, ComparisonOperator="GreaterThanThreshold")


@pytest.fixture
def estate(alb: Alb) -> Estate:
    """The prod stack's alarms (OK), two healthy targets in the canary group, and the telemetry writer."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for name in PROD["alarmNames"]:
        _alarm(cloudwatch, name)
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test")
    alb.client.register_targets(TargetGroupArn=alb.task_arn, Targets=[{"Id": "10.0.1.10", "Port": 3001},
                                                                      {"Id": "10.0.2.10", "Port": 3001}])
    telemetry = Telemetry(cloudwatch, health_gate.load_balancer_dimension(alb.listener_arn),
                          health_gate.group_dimension(alb.task_arn), health_gate.group_dimension(alb.monolith_arn),
                          PROD["ecsCluster"], PROD["ecsService"])
    return Estate(alb, telemetry, cloudwatch, boto3.client("ssm", region_name=REGION))


def gate(pack: PolicyPackServer, alb: Alb, desired: int) -> list[str]:
    """The gate's mandatory messages about moving the rule to `desired` (never not-applicable here)."""
    result = pack.analyze_resource(alb.desired(desired))
    assert result.not_applicable_for(GATE) == [], result.not_applicable
    found = result.for_policy(GATE)
    assert all(d.enforcement_level == "mandatory" for d in found)
    return [d.message.split("\nRemediation:")[0].split("\n", 1)[1] for d in found]  # after the description


# above 0%: soak, traffic gates, alarms

def test_a_healthy_soak_lets_the_next_step_through(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.telemetry.soaked(5)
    estate.alb.route(5)
    assert gate(moto_pack, estate.alb, 25) == []


@pytest.mark.parametrize("story,expected", [
    ({"error_percent": 5.0}, "raising the canary from 5% to 25%: error rate: 5% of 600 requests (gate < 1%)"),
    ({"latency_ms": (120, 180, 600)}, "p95 latency: 600 ms (gate < 500 ms)"),
    ({"latency_ms": (250, 260, 270)}, "p50 latency: 260 ms (gate < 200 ms)"),
    ({"cpu": 75.0}, "cpu: 75% peak (gate < 70%)"),
    ({"memory": 85.0}, "memory: 85% peak (gate < 80%)"),
], ids=["5xx", "p95", "p50", "cpu", "memory"])
def test_each_breached_gate_blocks_the_raise(moto_pack: PolicyPackServer, estate: Estate, story: dict[str, Any],
                                             expected: str) -> None:
    estate.telemetry.soaked(5, **story)
    estate.alb.route(5)
    [message] = gate(moto_pack, estate.alb, 25)
    assert expected in message


def test_one_bad_minute_of_cpu_is_enough(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.telemetry.minutes(1, 10, weight=25)
    estate.telemetry.minutes(11, 11, weight=25, cpu=90.0)
    estate.telemetry.minutes(12, 36, weight=25)
    estate.alb.route(25)
    assert [m for m in gate(moto_pack, estate.alb, 50) if "cpu: 90% peak" in m]


def test_an_alarm_of_this_stack_blocks_another_stacks_does_not(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.telemetry.soaked(25)
    estate.alb.route(25)
    _alarm(estate.cloudwatch, "task-service-dev-api-5xx-rate-high")  # shares prod's prefix `task-service`
    estate.alarm("task-service-dev-api-5xx-rate-high")
    assert gate(moto_pack, estate.alb, 50) == []
    estate.alarm("task-service-ecs-cpu-high")
    assert gate(moto_pack, estate.alb, 50) == [
        "raising the canary from 25% to 50%: alarms: in ALARM: task-service-ecs-cpu-high."]


def test_a_missing_alarm_blocks(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.telemetry.soaked(5)
    estate.alb.route(5)
    estate.cloudwatch.delete_alarms(AlarmNames=["task-service-db-cpu-high"])
    [message] = gate(moto_pack, estate.alb, 25)
    assert "alarms exist: no such alarm: task-service-db-cpu-high" in message


def test_no_metrics_at_all_blocks_naming_the_metric(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.alb.route(5)
    messages = gate(moto_pack, estate.alb, 25)
    assert any("soak: 0 of 30 minutes at 5%: no RequestCount datapoint" in m and "missing data" in m
               for m in messages)
    assert any("error rate: no RequestCount for targetgroup/task-service-tg/" in m for m in messages)
    assert any("no CPUUtilization for ECS service task-service-cluster/task-service" in m for m in messages)


def test_a_metric_returning_nothing_blocks_naming_it(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.telemetry.soaked(5, latency_ms=())
    estate.alb.route(5)
    messages = gate(moto_pack, estate.alb, 25)
    assert len(messages) == 2
    assert all("CloudWatch returned no TargetResponseTime" in m and "(missing data)" in m for m in messages)


def test_a_raise_minutes_ago_restarted_the_soak(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.telemetry.minutes(1, 7, weight=25)
    estate.telemetry.minutes(8, 40, weight=5)
    estate.alb.route(25)
    [message] = gate(moto_pack, estate.alb, 50)
    assert "soak:" in message and " of 30 minutes at 25% (at " in message
    assert "the canary took 5% of requests, not 25%" in message
    streak = int(message.split("soak: ")[1].split(" of")[0])
    assert 4 <= streak <= 6


@pytest.mark.parametrize("live,desired", [(25, 5), (25, 0), (50, 25), (5, 5)])
def test_lowering_or_keeping_the_weight_always_passes(moto_pack: PolicyPackServer, estate: Estate, live: int,
                                                      desired: int) -> None:
    estate.telemetry.soaked(live, error_percent=50.0, cpu=99.0)
    estate.alarm("task-service-api-5xx-rate-high")
    estate.alb.route(live)
    assert gate(moto_pack, estate.alb, desired) == []


# from 0%: targets, alarms, load test

def test_first_step_with_healthy_targets_and_a_passing_load_test(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.alb.route(0)
    estate.load_test()
    assert gate(moto_pack, estate.alb, 5) == []


@pytest.mark.parametrize("load_test,expected", [
    ({"passed": False}, "load test: the last load test failed (finished"),
    ({"age": timedelta(hours=30)}, "load test: the last passing load test is older than 24 h"),
    ({"text": "{not json"}, "is not a load-test result"),
    (None, "load test: no load-test result at /task-service/loadtest/result (requireLoadTest)"),
], ids=["failed", "stale", "garbage", "missing"])
def test_first_step_needs_a_recent_passing_load_test(moto_pack: PolicyPackServer, estate: Estate,
                                                     load_test: Optional[dict[str, Any]], expected: str) -> None:
    estate.alb.route(0)
    if load_test is not None:
        estate.load_test(**load_test)
    [message] = gate(moto_pack, estate.alb, 5)
    assert expected in message


def test_a_missing_load_test_passes_where_it_is_not_required(moto_pack: PolicyPackServer, estate: Estate) -> None:
    config = json.loads((POLICY_DIR / "config" / "prod.json").read_text())
    config[GATE]["requireLoadTest"] = False
    estate.alb.route(0)
    try:
        moto_pack.configure(config)
        assert gate(moto_pack, estate.alb, 5) == []
    finally:
        moto_pack.configure(POLICY_DIR / "config" / "prod.json")


def test_first_step_needs_registered_targets_and_no_alarm(moto_pack: PolicyPackServer, estate: Estate) -> None:
    estate.alb.route(0)
    estate.load_test()
    estate.alb.client.deregister_targets(TargetGroupArn=estate.alb.task_arn,
                                         Targets=[{"Id": "10.0.1.10", "Port": 3001}, {"Id": "10.0.2.10", "Port": 3001}])
    estate.alarm("task-service-api-unhealthy-hosts")
    messages = gate(moto_pack, estate.alb, 5)
    assert any("targets: no targets registered in targetgroup/task-service-tg/" in m for m in messages)
    assert any("alarms: in ALARM: task-service-api-unhealthy-hosts" in m for m in messages)


def test_a_new_rule_at_the_first_step_is_gated_like_a_raise_from_zero(moto_pack: PolicyPackServer,
                                                                      estate: Estate) -> None:
    assert gate(moto_pack, estate.alb, 5) == [
        "raising the canary from 0% to 5%: load test: no load-test result at /task-service/loadtest/result "
        "(requireLoadTest)."]
    created = estate.alb.desired(5)
    created.properties["actions"][0]["forward"]["targetGroups"][1]["arn"] = UNKNOWN
    [diag] = moto_pack.analyze_resource(created).for_policy(GATE)
    assert "the canary target group has no ARN yet" in diag.message


# who may read

@contextmanager
def iam_enforced(endpoint: str) -> Iterator[None]:
    """moto checks every request against IAM meanwhile (its server's reset-auth switch)."""
    def switch(count: str) -> None:
        request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=5).close()

    switch("0")
    try:
        yield
    finally:
        switch("inf")


def previewer(moto_endpoint: str) -> dict[str, str]:
    """An IAM user that may read everything the gate reads except GetMetricData, as the pack's environment."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="previewer")
    allowed = ["elasticloadbalancing:Describe*", "ssm:GetParameter", "cloudwatch:DescribeAlarms",
               "monitoring:DescribeAlarms"]
    iam.put_user_policy(UserName="previewer", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}]}))
    key = iam.create_access_key(UserName="previewer")["AccessKey"]
    return {**FAKE_AWS, "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_SESSION_TOKEN": ""}


def test_a_refused_identity_blocks_the_raise_naming_the_permission(moto_endpoint: str, estate: Estate) -> None:
    estate.telemetry.soaked(5)
    estate.alb.route(5)
    with PolicyPackServer(POLICY_DIR, project="task-service", stack="prod", env=previewer(moto_endpoint)) as pack:
        pack.configure(POLICY_DIR / "config" / "prod.json")
        with iam_enforced(moto_endpoint):
            raised, lowered = gate(pack, estate.alb, 25), gate(pack, estate.alb, 0)
    [message] = raised
    assert message.startswith("raising the canary from 5% to 25%: metrics: AWS refused cloudwatch:GetMetricData (")
    assert message.endswith("): grant it to this identity.")
    assert lowered == []


def test_unreadable_live_state_stays_not_applicable(prod_pack: PolicyPackServer, alb: Alb) -> None:
    result = prod_pack.analyze_resource(alb.desired(25))
    assert result.for_policy(GATE) == []
    [na] = result.not_applicable_for(GATE)
    assert "cannot be read" in na.reason and "health gate unchecked" in na.reason


def test_a_live_rule_without_the_canary_yet_is_a_first_step(moto_pack: PolicyPackServer, estate: Estate) -> None:
    """The live rule forwards to the monolith alone: the canary's group comes from the desired rule."""
    estate.alb.client.create_rule(
        ListenerArn=estate.alb.listener_arn, Priority=10, Actions=[{"Type": "forward", "TargetGroupArn": estate.alb.monolith_arn}],
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/tasks", "/api/tasks/*"]}}])
    estate.load_test()
    assert gate(moto_pack, estate.alb, 5) == []
    estate.alb.client.deregister_targets(TargetGroupArn=estate.alb.task_arn, Targets=[{"Id": "10.0.1.10", "Port": 3001}])
    estate.alb.client.deregister_targets(TargetGroupArn=estate.alb.task_arn, Targets=[{"Id": "10.0.2.10", "Port": 3001}])
    [message] = gate(moto_pack, estate.alb, 5)
    assert "raising the canary from 0% to 5%: targets: no targets registered in targetgroup/task-service-tg/" in message
