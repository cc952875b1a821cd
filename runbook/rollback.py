"""`rollback`: send 100% of /api/tasks/* back to the monolith now, optionally scale the service to 0.

The rule keeps both target groups (monolith 100 / service 0), so going forward again is only a
weight change. Every step runs even when an earlier one fails; the run is timed against the
5-minute target of seed 001. The stack still says the old canaryWeight afterwards, so the
follow-up (config set to 0 + deploy) is printed: otherwise the next `pulumi up` undoes the rollback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from runbook.alb import read_rule, weighted_forward
from runbook.aws import Aws, error_text
from runbook.canary import CONFIG_KEY, up_command
from runbook.errors import BadInput, EXIT_FAILED, EXIT_OK
from runbook.outputs import Outputs
from task_service import contract

TARGET_SECONDS = 300

NEEDS = (
    contract.LISTENER_RULE_ARN,
    contract.TARGET_GROUP_ARN,
    contract.MONOLITH_TARGET_GROUP_ARN,
    contract.CLUSTER_NAME,
    contract.SERVICE_NAME,
)


@dataclass
class Step:
    """One AWS call the rollback makes, printable for --dry-run."""

    name: str
    service: str
    operation: str
    params: dict[str, Any]

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.service}.{self.operation}({args})"


def _plan_route(out: Outputs, aws: Aws) -> tuple[list[Step], str]:
    """The change that routes everything to the monolith. A rule that cannot be read, or that forwards to a target
    group the outputs do not name, is bad input: rewriting it would drop that group without a word."""
    monolith, service = out.string(contract.MONOLITH_TARGET_GROUP_ARN), out.string(contract.TARGET_GROUP_ARN)
    rule = read_rule(aws.client("elbv2"), out.string(contract.LISTENER_RULE_ARN))
    strangers = sorted(set(rule.weights) - {monolith, service})
    if strangers:
        raise BadInput(
            f"listener rule {rule.arn} forwards to {len(rule.weights)} target groups, {', '.join(strangers)} not among the"
            f" outputs' monolith ({monolith}) and service ({service}); refusing to rewrite it. Fix the rule or the outputs."
        )
    state = f"monolith {rule.weight(monolith)} / service {rule.weight(service)}"
    if rule.weights == {monolith: 100, service: 0}:
        return [], f"listener rule already at {state}"
    order = max((int(a.get("Order", 0)) for a in rule.other_actions), default=0) + 1
    actions = rule.other_actions + weighted_forward(monolith, service, 0, rule.stickiness, order)
    return [Step("route 100% to the monolith", "elbv2", "modify_rule", {"RuleArn": rule.arn, "Actions": actions})], f"listener rule at {state}"


def _plan_scale(out: Outputs, aws: Aws) -> tuple[list[Step], str]:
    cluster, service = out.string(contract.CLUSTER_NAME), out.string(contract.SERVICE_NAME)
    resource = f"service/{cluster}/{service}"
    steps = []
    targets = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource], ScalableDimension="ecs:service:DesiredCount"
    )["ScalableTargets"]
    if targets and (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) != (0, 0):
        steps.append(
            Step(
                "pin autoscaling at 0 so it does not start tasks again",
                "application-autoscaling",
                "register_scalable_target",
                {
                    "ServiceNamespace": "ecs",
                    "ResourceId": resource,
                    "ScalableDimension": "ecs:service:DesiredCount",
                    "MinCapacity": 0,
                    "MaxCapacity": 0,
                },
            )
        )
    found = aws.client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    desired = found[0]["desiredCount"] if found else 0
    if desired != 0:
        steps.append(Step("scale the service to 0", "ecs", "update_service", {"cluster": cluster, "service": service, "desiredCount": 0}))
    return steps, f"service desired count {desired}"


def follow_up(stack: str, scaled: bool) -> str:
    lines = [
        f"follow-up (the stack still holds the old {CONFIG_KEY}; the next `pulumi up` would undo this):",
        f"  pulumi config set {CONFIG_KEY} 0 -s {stack}",
        f"  {up_command(stack)}",
    ]
    if scaled:
        lines.append(f"  when the service may run again: {up_command(stack, refresh=True)}  (restores autoscaling min/max and desired count)")
    return "\n".join(lines)


def _interactive_confirm() -> bool:
    answer = input("Type 'rollback' to route all /api/tasks/* traffic back to the monolith: ")
    return answer.strip() == "rollback"


def run(
    out: Outputs,
    aws: Aws,
    stack: str,
    *,
    yes: bool,
    dry_run: bool,
    scale_to_zero: bool,
    emit: Callable[[str], Any] = print,
    interactive: Callable[[], bool] = lambda: sys.stdin.isatty(),
    confirm: Callable[[], bool] = _interactive_confirm,
) -> int:
    out.require(*NEEDS)
    if not (yes or dry_run) and not interactive():
        raise BadInput("refusing to roll back without confirmation: stdin is not a terminal. Rerun with --yes (or --dry-run to see the calls).")

    started = time.monotonic()
    failures: list[str] = []
    steps, state = _plan_route(out, aws)  # BadInput (no such rule, wrong region, strange groups): exit 2, nothing changed
    emit(state)
    if scale_to_zero:
        try:
            scale_steps, scale_state = _plan_scale(out, aws)
            steps += scale_steps
            emit(scale_state)
        except ClientError as err:
            failures.append(f"reading the service's scale: {error_text(err)}")
            emit(f"FAILED reading the service's scale: {error_text(err)}")

    if not steps and not failures:
        emit("nothing to change: traffic already goes 100% to the monolith" + (" and the service is at 0" if scale_to_zero else "") + ".")
        emit(follow_up(stack, scale_to_zero))
        return EXIT_OK
    if dry_run:
        emit("dry run; would call:")
        for step in steps:
            emit(f"  {step.describe()}")
        return EXIT_FAILED if failures else EXIT_OK
    if not yes:
        for step in steps:
            emit(f"  will {step.name}: {step.describe()}")
        if not confirm():
            emit("not confirmed; nothing changed.")
            return EXIT_FAILED
        started = time.monotonic()

    for step in steps:
        try:
            getattr(aws.client(step.service), step.operation)(**step.params)
            emit(f"done: {step.name}")
        except (ClientError, BotoCoreError) as err:
            failures.append(f"{step.name}: {error_text(err)}")
            emit(f"FAILED: {step.name}: {error_text(err)}")
    elapsed = time.monotonic() - started

    try:
        emit(f"now: {_plan_route(out, aws)[1].replace('already ', '')}")
    except (BadInput, ClientError, BotoCoreError) as err:
        emit(f"could not re-read the listener rule: {err}")
    verdict = "within" if elapsed < TARGET_SECONDS else "OVER"
    emit(f"rollback took {elapsed:.1f} s ({verdict} the {TARGET_SECONDS // 60}-minute target)")
    if failures:
        emit(f"{len(failures)} step(s) failed: " + "; ".join(failures))
    emit(follow_up(stack, scale_to_zero))
    return EXIT_FAILED if failures else EXIT_OK
