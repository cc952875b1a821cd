"""Reading the weighted listener rule, shared by verify, canary status and rollback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from runbook.aws import error_text
from runbook.errors import BadInput
from runbook.pack import health_gate
from task_service import contract


@dataclass(frozen=True)
class RuleState:
    """The live forward action of the canary rule: weight per target group ARN."""

    arn: str
    priority: str
    weights: dict[str, int]
    stickiness: dict[str, Any] | None = None
    other_actions: list[dict[str, Any]] = field(default_factory=list)

    def weight(self, target_group_arn: str) -> int:
        return self.weights.get(target_group_arn, 0)

    def service_share(self, service_arn: str) -> float:
        """The service's exact share of the rule's traffic in percent (ALB weights are relative)."""
        total = sum(self.weights.values())
        return 100.0 * self.weight(service_arn) / total if total else 0.0


def read_rule(elbv2: Any, rule_arn: str) -> RuleState:
    """Describe the rule; a rule that does not exist is bad input (wrong outputs or wrong account)."""
    try:
        rules = elbv2.describe_rules(RuleArns=[rule_arn]).get("Rules", [])
    except ClientError as err:
        raise BadInput(f"listener rule {rule_arn} cannot be described: {error_text(err)}") from None
    if not rules:
        raise BadInput(f"listener rule {rule_arn} does not exist.")
    rule = rules[0]
    weights: dict[str, int] = {}
    stickiness = None
    others = []
    for action in rule.get("Actions", []):
        if action.get("Type") != "forward":
            others.append(action)
            continue
        config = action.get("ForwardConfig")
        if config and config.get("TargetGroups"):
            for group in config["TargetGroups"]:
                weights[str(group.get("TargetGroupArn"))] = int(group.get("Weight", 1))
            stickiness = config.get("TargetGroupStickinessConfig")
        elif action.get("TargetGroupArn"):
            weights[action["TargetGroupArn"]] = 1
    return RuleState(rule_arn, str(rule.get("Priority", "")), weights, stickiness, others)


def weighted_forward(
    monolith_arn: str, service_arn: str, service_weight: int, stickiness: dict[str, Any] | None, order: int = 1
) -> list[dict[str, Any]]:
    """The forward action that routes `service_weight`% to the service, keeping both groups."""
    config: dict[str, Any] = {
        "TargetGroups": [
            {"TargetGroupArn": monolith_arn, "Weight": 100 - service_weight},
            {"TargetGroupArn": service_arn, "Weight": service_weight},
        ]
    }
    if stickiness is not None:
        config["TargetGroupStickinessConfig"] = stickiness
    return [{"Type": "forward", "Order": order, "ForwardConfig": config}]


def dimension_target_group(target_group_arn: str) -> str:
    """CloudWatch's TargetGroup dimension: the `targetgroup/<name>/<id>` suffix of the ARN."""
    return health_gate.group_dimension(target_group_arn)


def dimension_load_balancer(listener_arn: str) -> str:
    """CloudWatch's LoadBalancer dimension: `app/<name>/<id>` from the listener ARN."""
    try:
        return health_gate.load_balancer_dimension(listener_arn)
    except ValueError as err:
        raise BadInput(f"{contract.LISTENER_ARN.name}: {err}.") from None
