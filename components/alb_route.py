"""AlbRoute: the weighted canary route for /api/tasks on the monolith's existing ALB.

Creates, all parented to the component and named `<name>-...`:
- the target group `task-service-tg` (ip targets, HTTP on the container port, health check `/health`);
- one listener rule on the monolith's listener (priority 10, `/api/tasks` and `/api/tasks/*`) that forwards
  by weight: monolith `100 - w`, Task Service `w`. Both groups are always named, even at 0 and 100, so every
  canary step is an in-place weight change, never a replacement (a priority change would replace the rule and
  can collide with `PriorityInUse`). The rule carries the tag `CanaryTargetGroup=<target group name>` so the
  policy pack and the runbook can tell the canary from the baseline;
- alarms on the Task Service target group: 5xx rate > 1%, p95 response time > 500 ms, unhealthy hosts > 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Mapping

import pulumi
import pulumi_aws as aws
from pydantic import Field, StrictStr, model_validator

from components.common import metric_alarm
from components.settings import UNIQUE, ListenerPriority, Settings, invalid, matches
from task_service.canary import CANARY_TAG
from task_service.naming import Naming, Role

_LB_FROM_LISTENER = re.compile(r":listener/(app/[^/]+/[^/]+)/")
_TG_SUFFIX = re.compile(r":(targetgroup/[^/]+/[^/]+)\Z")
PATH_PATTERN = r"/[A-Za-z0-9_\-.$/~\"'@:+&*?]{0,127}"
"""An ALB path pattern: at most 128 characters (PathPatternConditionConfig), the characters the ALB guide lists."""
MAX_PATTERNS = 3
"""Match evaluations per condition (ALB listener rule quota); the rule's one path-pattern condition holds them all.
The load test's rule adds its header to the same patterns: 4 of the 5 evaluations ALB allows per rule."""
MAX_WILDCARDS = 5
"""Wildcards (`*`, `?`) per rule (ALB listener rule quota)."""


def load_balancer_arn_suffix(listener_arn: str) -> str:
    """CloudWatch's LoadBalancer dimension (`app/<name>/<id>`) is embedded in the listener ARN."""
    match = _LB_FROM_LISTENER.search(listener_arn)
    if not match:
        raise ValueError(f"not an application load balancer listener ARN: {listener_arn!r}")
    return match.group(1)


def target_group_arn_suffix(target_group_arn: str) -> str:
    """CloudWatch's TargetGroup dimension (`targetgroup/<name>/<id>`), for groups this stack did not create."""
    match = _TG_SUFFIX.search(target_group_arn)
    if not match:
        raise ValueError(f"not a target group ARN: {target_group_arn!r}")
    return match.group(1)


class RouteSettings(Settings):
    """`task-service:route`: which requests the weighted rule takes, and where it sits on the listener."""

    path_patterns: Annotated[
        tuple[Annotated[StrictStr, matches(PATH_PATTERN, "URL paths such as /api/tasks/* (at most 128 characters)")], ...],
        Field(min_length=1, max_length=MAX_PATTERNS),
        UNIQUE,
    ] = ("/api/tasks", "/api/tasks/*")
    """At most 3 patterns with at most 5 wildcards between them (ALB listener rule quotas)."""
    priority: ListenerPriority = 10
    """Never change it on a live rule: a new priority replaces the rule."""

    @model_validator(mode="after")
    def _wildcards(self) -> "RouteSettings":
        count = sum(pattern.count("*") + pattern.count("?") for pattern in self.path_patterns)
        if count > MAX_WILDCARDS:
            raise invalid(f"must hold at most {MAX_WILDCARDS} wildcards (* or ?) between them, an ALB limit", "pathPatterns", count)
        return self


@dataclass
class AlbRouteArgs:
    """Inputs of AlbRoute."""

    settings: RouteSettings
    naming: Naming
    vpc_id: pulumi.Input[str]
    listener_arn: pulumi.Input[str]
    """The monolith ALB's listener that serves /api/tasks today."""
    monolith_target_group_arn: pulumi.Input[str]
    """The monolith's target group: the baseline of the canary."""
    canary_weight: int
    """Percent of matching requests sent to the Task Service (0..100)."""
    alarm_topic_arn: pulumi.Input[str]
    container_port: int = 3001
    health_check_path: str = "/health"
    tags: Mapping[str, str] = field(default_factory=dict)


class AlbRoute(pulumi.ComponentResource):
    """Target group + weighted listener rule that moves /api/tasks from the monolith to the Task Service."""

    target_group: aws.lb.TargetGroup
    listener_rule: aws.lb.ListenerRule
    alarm_names: pulumi.Output[list[str]]
    load_balancer_arn_suffix: pulumi.Output[str]
    """The monolith ALB's CloudWatch `LoadBalancer` dimension, for these alarms and the dashboard alike."""

    def __init__(self, name: str, args: AlbRouteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:alb:AlbRoute", name, None, opts)
        if not 0 <= args.canary_weight <= 100:
            raise ValueError(f"canary_weight must be within 0..100, got {args.canary_weight}")
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        target_group_name = args.naming.of(Role.TARGET_GROUP)

        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            name=target_group_name,
            vpc_id=args.vpc_id,
            target_type="ip",
            protocol="HTTP",
            port=args.container_port,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=args.health_check_path,
                protocol="HTTP",
                port="traffic-port",
                matcher="200",
                interval=30,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags={**tags, "Name": target_group_name},
            opts=child,
        )

        self.listener_rule = aws.lb.ListenerRule(
            f"{name}-rule",
            listener_arn=args.listener_arn,
            priority=args.settings.priority,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=list(args.settings.path_patterns)),
                )
            ],
            actions=[
                aws.lb.ListenerRuleActionArgs(
                    type="forward",
                    forward=aws.lb.ListenerRuleActionForwardArgs(
                        target_groups=[
                            aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                                arn=args.monolith_target_group_arn, weight=100 - args.canary_weight
                            ),
                            aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                                arn=self.target_group.arn, weight=args.canary_weight
                            ),
                        ],
                        stickiness=aws.lb.ListenerRuleActionForwardStickinessArgs(enabled=False, duration=1),
                    ),
                )
            ],
            tags={**tags, "Name": f"{target_group_name}-canary", CANARY_TAG: target_group_name},
            opts=child,
        )

        self.load_balancer_arn_suffix = pulumi.Output.from_input(args.listener_arn).apply(load_balancer_arn_suffix)
        self.alarm_names = self._alarms(name, args, tags)

        self.register_outputs(
            {
                "targetGroupArn": self.target_group.arn,
                "targetGroupName": self.target_group.name,
                "targetGroupArnSuffix": self.target_group.arn_suffix,
                "listenerRuleArn": self.listener_rule.arn,
                "priority": args.settings.priority,
                "canaryWeight": args.canary_weight,
                "alarmNames": self.alarm_names,
            }
        )

    def _alarms(self, name: str, args: AlbRouteArgs, tags: Mapping[str, str]) -> pulumi.Output[list[str]]:
        """5xx rate, p95 latency and unhealthy hosts of the Task Service's target group."""
        dims = {"TargetGroup": self.target_group.arn_suffix, "LoadBalancer": self.load_balancer_arn_suffix}

        def alb_metric(metric: str, stat: str) -> aws.cloudwatch.MetricAlarmMetricQueryMetricArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace="AWS/ApplicationELB", metric_name=metric, stat=stat, period=60, dimensions=dims
            )

        alarms = [
            metric_alarm(
                f"{name}-5xx-alarm",
                alarm_name=args.naming.of(Role.ALARM_API_5XX),
                description="Task Service 5xx responses above 1% of requests (critical)",
                metric_queries=[
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="errors", metric=alb_metric("HTTPCode_Target_5XX_Count", "Sum"), return_data=False
                    ),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="requests", metric=alb_metric("RequestCount", "Sum"), return_data=False
                    ),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="rate",
                        expression="IF(requests > 0, 100 * errors / requests, 0)",
                        label="5xx rate (%)",
                        return_data=True,
                    ),
                ],
                threshold=1,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=tags,
            ),
            metric_alarm(
                f"{name}-latency-alarm",
                alarm_name=args.naming.of(Role.ALARM_API_LATENCY),
                description="Task Service p95 target response time above 500 ms (warning)",
                namespace="AWS/ApplicationELB",
                metric_name="TargetResponseTime",
                dimensions=dims,
                extended_statistic="p95",
                threshold=0.5,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=tags,
            ),
            metric_alarm(
                f"{name}-unhealthy-alarm",
                alarm_name=args.naming.of(Role.ALARM_API_UNHEALTHY),
                description="Task Service target group has unhealthy targets",
                namespace="AWS/ApplicationELB",
                metric_name="UnHealthyHostCount",
                dimensions=dims,
                statistic="Maximum",
                threshold=0,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                topic_arn=args.alarm_topic_arn,
                parent=self,
                tags=tags,
            ),
        ]
        return pulumi.Output.all(*[a.name for a in alarms])
