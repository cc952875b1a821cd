"""A canary's story told to moto's CloudWatch, minute by minute, as the ALB and ECS would publish it.

Per minute: RequestCount split between the canary and the monolith by the weight, the canary's 5xx count (only
when nonzero, as the ALB reports it), its TargetResponseTime as raw values (percentiles need them), and the ECS
service's CPU and memory. Minutes are counted back from the current one (1 = the minute before this one), with
datapoints stamped at the half minute, so a test that crosses a minute boundary still covers the gate's window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

ALB = "AWS/ApplicationELB"
MAX_DATUMS = 500  # PutMetricData accepts 1000 per call; half keeps each request small


@dataclass
class Telemetry:
    cloudwatch: Any
    load_balancer: str
    """CloudWatch's LoadBalancer dimension, `app/<name>/<id>`."""
    canary_group: str
    """CloudWatch's TargetGroup dimension of the canary, `targetgroup/<name>/<id>`."""
    baseline_group: str
    cluster: str
    service: str

    def _alb(self, metric: str, group: str, stamp: datetime, **value: Any) -> dict[str, Any]:
        dims = [{"Name": "LoadBalancer", "Value": self.load_balancer}, {"Name": "TargetGroup", "Value": group}]
        return {"MetricName": metric, "Dimensions": dims, "Timestamp": stamp, **value}

    def _ecs(self, metric: str, stamp: datetime, value: float) -> dict[str, Any]:
        dims = [{"Name": "ClusterName", "Value": self.cluster}, {"Name": "ServiceName", "Value": self.service}]
        return {"MetricName": metric, "Dimensions": dims, "Timestamp": stamp, "Value": value}

    def minutes(self, first: int, last: int, *, weight: float, requests: int = 400, error_percent: float = 0.0,
                latency_ms: Sequence[float] = (110, 150, 190, 240), cpu: float = 40.0, memory: float = 55.0) -> None:
        """Minutes `first`..`last` ago at `weight`% of `requests` per minute on the canary."""
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        alb: list[dict[str, Any]] = []
        ecs: list[dict[str, Any]] = []
        for ago in range(first, last + 1):
            stamp = now - timedelta(minutes=ago) + timedelta(seconds=30)
            canary = round(requests * weight / 100.0)
            errors = round(canary * error_percent / 100.0)
            if canary:
                alb.append(self._alb("RequestCount", self.canary_group, stamp, Value=canary))
            if canary and latency_ms:
                alb.append(self._alb("TargetResponseTime", self.canary_group, stamp,
                                     Values=[ms / 1000.0 for ms in latency_ms]))
            if errors:
                alb.append(self._alb("HTTPCode_Target_5XX_Count", self.canary_group, stamp, Value=errors))
            if requests - canary:
                alb.append(self._alb("RequestCount", self.baseline_group, stamp, Value=requests - canary))
            ecs += [self._ecs("CPUUtilization", stamp, cpu), self._ecs("MemoryUtilization", stamp, memory)]
        self._put(ALB, alb)
        self._put("AWS/ECS", ecs)

    def soaked(self, weight: float, minutes: int = 36, **kwargs: Any) -> None:
        """A whole window (and a few minutes either side) at `weight`."""
        self.minutes(1, minutes, weight=weight, **kwargs)

    def _put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        for start in range(0, len(data), MAX_DATUMS):
            self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + MAX_DATUMS])
