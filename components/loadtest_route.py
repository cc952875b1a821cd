"""LoadTestRoute: a way for the load test to reach the Task Service before the canary gives it any traffic.

Created only with `testRoute.enabled: true`; all parented to the component and named `<name>-...`:
- a generated header value (40 letters and digits: ALB treats `*` and `?` in a condition as wildcards) kept in
  Secrets Manager as `task-service/test-route-header` (`{"header": "X-Task-Service-Test", "value": ...}`),
  encrypted with the data key; `runbook loadtest` reads it and sends it, never printing it;
- a listener rule on the monolith's listener, at its own priority *before* the weighted rule (ALB evaluates the
  lowest number first), matching the same paths and requiring the header `TEST_ROUTE_HEADER` with that value, and
  forwarding to the service's target group only. Requests without the header never match it, so ordinary users
  keep following the canary weights; the policy pack recognises the rule by that header condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from components.settings import Bool, ListenerPriority, Settings
from task_service.canary import TEST_ROUTE_HEADER
from task_service.naming import Naming, Role

VALUE_LENGTH = 40


class LoadTestRouteSettings(Settings):
    """`task-service:testRoute`: the load test's own route to the service (off unless asked for)."""

    enabled: Bool = False
    priority: ListenerPriority = 9
    """Must sort before `route.priority` (checked with the other sections), or the weighted rule answers first."""


@dataclass
class LoadTestRouteArgs:
    """Inputs of LoadTestRoute."""

    settings: LoadTestRouteSettings
    naming: Naming
    listener_arn: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    """The service's own target group (never the monolith's)."""
    path_patterns: Sequence[str]
    """The weighted rule's paths: the test route takes the same requests, when they carry the header."""
    kms_key_arn: pulumi.Input[str]
    recovery_window_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


class LoadTestRoute(pulumi.ComponentResource):
    """Header value in Secrets Manager, and the listener rule that only requests carrying it match."""

    secret: aws.secretsmanager.Secret
    listener_rule: aws.lb.ListenerRule

    def __init__(self, name: str, args: LoadTestRouteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:alb:LoadTestRoute", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        password = random.RandomPassword(f"{name}-value", length=VALUE_LENGTH, special=False, opts=child)
        # Secret explicitly, wherever it goes: state, diffs and the preview never show it.
        value: pulumi.Output[str] = pulumi.Output.secret(password.result)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=args.naming.of(Role.TEST_ROUTE_SECRET),
            description=f"Value of the {TEST_ROUTE_HEADER} header that routes a request to the Task Service only (load test)",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-secret-version",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.json_dumps({"header": TEST_ROUTE_HEADER, "value": value}),
            opts=child,
        )
        self.listener_rule = aws.lb.ListenerRule(
            f"{name}-rule",
            listener_arn=args.listener_arn,
            priority=args.settings.priority,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=list(args.path_patterns)),
                ),
                aws.lb.ListenerRuleConditionArgs(
                    http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                        http_header_name=TEST_ROUTE_HEADER, values=[value]
                    ),
                ),
            ],
            actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=args.target_group_arn)],
            tags={**tags, "Name": f"{args.naming.of(Role.TARGET_GROUP)}-test-route"},
            opts=child,
        )
        self.register_outputs(
            {"secretArn": self.secret.arn, "listenerRuleArn": self.listener_rule.arn, "priority": args.settings.priority}
        )
