"""The gate's logic on CloudWatch answers in the API's documented shape (GetMetricData's MetricDataResults: ids,
timestamps newest first, values, StatusCode), including percentiles with CloudWatch's fractional values, which
moto cannot produce. These responses are written by hand after the API reference, not recorded from an account.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from task_service_policies import health_gate as gate
from task_service_policies.health_gate import Finding, Outcome, Thresholds, Window

NOW = datetime(2026, 12, 1, 9, 40, 27, tzinfo=timezone.utc)
DEFAULTS = Thresholds.from_config()
SUBJECT = gate.Subject(
    load_balancer="app/myteacher-alb/50dc6c495c0c9188",
    canary_group_arn="arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/task-service-tg/1d2b4a0eea7c14b0",
    baseline_group_arns=("arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/myteacher-app-tg/73e2d6bc24d8a067",),
    cluster="task-service-cluster", service="task-service", alarm_names=("task-service-api-5xx-rate-high",),
    load_test_parameter="/task-service/loadtest/result")


def response(weight: float, *, minutes: int = 30, p50: float = 0.1432, p95: float = 0.3871, cpu: float = 41.5,
             errors: int = 0) -> dict[str, Any]:
    """A GetMetricData response for the window ending at NOW's window end, newest datapoint first."""
    start, end = gate.window_bounds(DEFAULTS, NOW)
    stamps = [end - timedelta(minutes=i + 1) for i in range(minutes)]
    canary = round(3000 * weight / 100)
    return {
        "MetricDataResults": [
            {"Id": "canary", "Label": "RequestCount", "Timestamps": stamps, "Values": [float(canary)] * minutes,
             "StatusCode": "Complete"},
            {"Id": "base0", "Label": "RequestCount", "Timestamps": stamps, "Values": [3000.0 - canary] * minutes,
             "StatusCode": "Complete"},
            {"Id": "errors", "Label": "HTTPCode_Target_5XX_Count", "Timestamps": stamps[:1] if errors else [],
             "Values": [float(errors)] if errors else [], "StatusCode": "Complete"},
            {"Id": "p50", "Label": "TargetResponseTime", "Timestamps": [start], "Values": [p50], "StatusCode": "Complete"},
            {"Id": "p95", "Label": "TargetResponseTime", "Timestamps": [start], "Values": [p95], "StatusCode": "Complete"},
            {"Id": "cpu", "Label": "CPUUtilization", "Timestamps": stamps, "Values": [cpu] * minutes,
             "StatusCode": "Complete"},
            {"Id": "memory", "Label": "MemoryUtilization", "Timestamps": stamps, "Values": [52.25] * minutes,
             "StatusCode": "Complete"},
        ],
        "Messages": [],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


def window(*pages: dict[str, Any]) -> Window:
    series: dict[str, dict[datetime, float]] = {}
    for page in pages:
        gate.parse_results(page["MetricDataResults"], series)
    start, end = gate.window_bounds(DEFAULTS, NOW)
    return Window(start, end, series)


def findings(w: Window, weight: float, thresholds: Thresholds = DEFAULTS) -> dict[str, Finding]:
    found = [gate.soak_finding(w, weight, thresholds), *gate.traffic_findings(w, SUBJECT, thresholds)]
    return {f.gate: f for f in found}


def test_the_window_is_whole_minutes_before_the_lag() -> None:
    start, end = gate.window_bounds(DEFAULTS, NOW)
    assert (start, end) == (datetime(2026, 12, 1, 9, 8, tzinfo=timezone.utc), datetime(2026, 12, 1, 9, 38, tzinfo=timezone.utc))


def test_queries_ask_cloudwatch_for_what_the_gate_needs() -> None:
    queries = {q["Id"]: q["MetricStat"] for q in gate.metric_queries(SUBJECT, DEFAULTS)}
    assert set(queries) == {"canary", "base0", "errors", "p50", "p95", "cpu", "memory"}
    assert (queries["p95"]["Stat"], queries["p95"]["Period"]) == ("p95", 1800)
    assert (queries["canary"]["Stat"], queries["canary"]["Period"]) == ("Sum", 60)
    assert queries["canary"]["Metric"]["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": "app/myteacher-alb/50dc6c495c0c9188"},
        {"Name": "TargetGroup", "Value": "targetgroup/task-service-tg/1d2b4a0eea7c14b0"}]
    assert queries["base0"]["Metric"]["Dimensions"][1]["Value"] == "targetgroup/myteacher-app-tg/73e2d6bc24d8a067"
    assert queries["cpu"]["Metric"] == {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization", "Dimensions": [
        {"Name": "ClusterName", "Value": "task-service-cluster"}, {"Name": "ServiceName", "Value": "task-service"}]}


def test_a_healthy_recorded_window_passes_with_fractional_percentiles() -> None:
    found = findings(window(response(5)), 5)
    assert all(f.ok for f in found.values()), found
    assert found["soak"].detail == "30 of 30 minutes at 5%"
    assert found["p95 latency"].detail == "387.1 ms (gate < 500 ms)"
    assert found["p50 latency"].detail == "143.2 ms (gate < 200 ms)"
    assert found["error rate"].detail == "0% of 4500 requests (gate < 1%)"


@pytest.mark.parametrize("changes,gate_name", [
    ({"p95": 0.5}, "p95 latency"), ({"p50": 0.2}, "p50 latency"), ({"cpu": 70.0}, "cpu"), ({"errors": 45}, "error rate"),
])
def test_each_gate_is_a_strict_upper_bound(changes: dict[str, Any], gate_name: str) -> None:
    found = findings(window(response(5, **changes)), 5)
    assert [g for g, f in found.items() if not f.ok] == [gate_name]
    assert found[gate_name].outcome is Outcome.BREACH


def test_pages_combine_and_order_does_not_matter() -> None:
    whole = response(25)
    first, second = copy.deepcopy(whole), copy.deepcopy(whole)
    for page, half in ((first, slice(0, 15)), (second, slice(15, 30))):
        for result in page["MetricDataResults"]:
            if len(result["Timestamps"]) == 30:
                result["Timestamps"], result["Values"] = result["Timestamps"][half], result["Values"][half]
    second["MetricDataResults"] = list(reversed(second["MetricDataResults"]))
    assert findings(window(first, second), 25)["soak"].detail == "30 of 30 minutes at 25%"


def test_the_soak_counts_back_from_the_newest_minute() -> None:
    page = response(25)
    canary, base = page["MetricDataResults"][0], page["MetricDataResults"][1]
    for i in range(18, 30):  # older minutes: the canary was at 5%
        canary["Values"][i], base["Values"][i] = 150.0, 2850.0
    soak = findings(window(page), 25)["soak"]
    assert soak.outcome is Outcome.WAIT
    assert soak.detail == "18 of 30 minutes at 25% (at 09:19 UTC the canary took 5% of requests, not 25%)"


def test_a_minute_without_datapoints_ends_the_soak() -> None:
    page = response(5)
    for result in page["MetricDataResults"][:2]:
        del result["Timestamps"][10], result["Values"][10]
    soak = findings(window(page), 5)["soak"]
    assert (soak.outcome, soak.detail) == (Outcome.WAIT, "10 of 30 minutes at 5% (no RequestCount datapoint for 09:27 UTC)")


def test_the_share_tolerance_is_configurable() -> None:
    page = response(5)
    page["MetricDataResults"][0]["Values"] = [240.0] * 30  # 240 of 3000 + 150 = 7.6%
    assert not findings(window(page), 5)["soak"].ok
    assert findings(window(page), 5, Thresholds.from_config({"shareTolerancePercent": 3}))["soak"].ok


def test_at_100_percent_the_monolith_may_report_nothing() -> None:
    page = response(100)
    page["MetricDataResults"][1].update(Timestamps=[], Values=[])
    assert findings(window(page), 100)["soak"].ok


def test_nothing_at_all_is_missing_data_not_a_breach() -> None:
    empty = {"MetricDataResults": [{"Id": q["Id"], "Timestamps": [], "Values": [], "StatusCode": "Complete"}
                                   for q in gate.metric_queries(SUBJECT, DEFAULTS)]}
    found = findings(window(empty), 5)
    assert {f.outcome for f in found.values()} == {Outcome.MISSING}
    assert found["soak"].detail == "0 of 30 minutes at 5%: no RequestCount datapoint for 09:37 UTC (missing data)"


def test_thresholds_come_from_the_schema_and_a_stack_config() -> None:
    assert DEFAULTS == Thresholds(30, 2.0, 2, 1.0, 200.0, 500.0, 70.0, 80.0, False, 24.0)
    overlaid = Thresholds.from_config({"soakMinutes": 10, "requireLoadTest": True, "enforcementLevel": "mandatory"})
    assert (overlaid.soak_minutes, overlaid.require_load_test, overlaid.max_p95_ms) == (10, True, 500.0)


LOAD = '{"passed": %s, "finishedAt": "%s", "p95Ms": 182.5, "errorRatePercent": 0.2, "requests": 15000}'


@pytest.mark.parametrize("text,outcome,detail", [
    (LOAD % ("true", "2026-12-01T08:00:00Z"), Outcome.PASS, "passed (finished 2026-12-01 08:00 UTC; p95Ms 182.5"),
    (LOAD % ("true", "2026-12-01T17:00:00+09:00"), Outcome.PASS, "finished 2026-12-01 08:00 UTC"),
    (LOAD % ("false", "2026-12-01T08:00:00Z"), Outcome.BREACH, "the last load test failed"),
    (LOAD % ("true", "2026-11-29T08:00:00Z"), Outcome.MISSING, "older than 24 h"),
    (LOAD % ("true", "2026-12-01T08:00:00"), Outcome.ERROR, "is not a load-test result"),  # no zone: not UTC
    (LOAD % ("true", "2026-12-02T08:00:00Z"), Outcome.ERROR, "which is in the future"),
    ('{"passed": "yes", "finishedAt": "2026-12-01T08:00:00Z"}', Outcome.ERROR, "is not a load-test result"),
    ("[]", Outcome.ERROR, "is not a load-test result"),
])
def test_load_test_results_are_judged(text: str, outcome: Outcome, detail: str) -> None:
    found = gate.judge_load_test(text, "/task-service/loadtest/result", DEFAULTS, NOW)
    assert found.outcome is outcome and detail in found.detail, found


QUERY = {"MetricDataQueries": gate.metric_queries(SUBJECT, DEFAULTS)[:1], "StartTime": NOW - timedelta(minutes=5),
         "EndTime": NOW}


def _cloudwatch(**kwargs: Any) -> Any:
    import boto3

    # A fresh session: boto3's default one keeps the credentials an earlier test resolved.
    return boto3.session.Session().client("cloudwatch", region_name="ap-northeast-1", **kwargs)


def test_no_credentials_means_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, moto_endpoint: str) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(gate.Unreachable, match="no AWS credentials"):
        gate.call(_cloudwatch(endpoint_url=moto_endpoint), "get_metric_data", "cloudwatch:GetMetricData", **QUERY)


def test_a_closed_endpoint_means_unreachable(unreachable_aws: dict[str, str]) -> None:
    from botocore.config import Config

    client = _cloudwatch(endpoint_url=unreachable_aws["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                         aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(gate.Unreachable, match="EndpointConnectionError"):
        gate.call(client, "get_metric_data", "cloudwatch:GetMetricData", **QUERY)


def test_other_aws_errors_stay_client_errors(moto_endpoint: str) -> None:
    """Neither a refusal nor unreachable: a bad request is the gate's ERROR finding, not a skip."""
    client = _cloudwatch(endpoint_url=moto_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    with pytest.raises(ClientError):
        gate.call(client, "get_metric_data", "cloudwatch:GetMetricData", **{**QUERY, "StartTime": NOW, "EndTime": NOW})


def test_dimensions() -> None:
    assert gate.load_balancer_dimension(
        "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/myteacher-alb/50dc6c495c0c9188/f2f7dc8e") \
        == "app/myteacher-alb/50dc6c495c0c9188"
    with pytest.raises(ValueError, match="not an ALB listener ARN"):
        gate.load_balancer_dimension("arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/x/1")
    assert gate.group_dimension(SUBJECT.canary_group_arn) == "targetgroup/task-service-tg/1d2b4a0eea7c14b0"
