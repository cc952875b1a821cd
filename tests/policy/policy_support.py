"""Constants and helpers the policy tests share (imported by module name: conftest is not importable safely)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import policy_factories as f
from preview.analyzer_requests import Resource, resources_from_recording
from preview.engine import Recording, run_program

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def stack_resources(recording: Recording) -> list[Resource]:
    """A recorded program run as the resources the engine sends the pack."""
    return resources_from_recording(recording.resources, project=recording.project, stack=recording.stack)


def recorded(stack: str, overrides: Optional[dict[str, Any]] = None) -> list[Resource]:
    """The program run for `stack` (with config `overrides`), as the pack receives it."""
    return stack_resources(run_program(ROOT, stack, overrides))


@dataclass
class Alb:
    """The monolith's ALB in moto: listener, both target groups, and (after `route`) the priority-10 rule."""

    client: Any
    listener_arn: str
    monolith_arn: str
    task_arn: str
    rule_arn: Optional[str] = None

    def route(self, weight: int, *, tag: bool = True) -> None:
        """Create (or re-weight) the priority-10 rule with `weight` percent on the task service."""
        actions = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": self.monolith_arn, "Weight": 100 - weight},
            {"TargetGroupArn": self.task_arn, "Weight": weight},
        ]}}]
        if self.rule_arn:
            self.client.modify_rule(RuleArn=self.rule_arn, Actions=actions)
            return
        kwargs: dict[str, Any] = {}
        if tag:
            kwargs["Tags"] = [{"Key": "CanaryTargetGroup", "Value": "task-service-tg"}]
        self.rule_arn = self.client.create_rule(
            ListenerArn=self.listener_arn, Priority=10, Actions=actions,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/tasks", "/api/tasks/*"]}}],
            **kwargs)["Rules"][0]["RuleArn"]

    def desired(self, weight: int) -> Any:
        """The program's rule at `weight`, pointed at this ALB (the new group's ARN unknown, as in preview)."""
        props = f.listener_rule(weight, task_arn=self.task_arn, listenerArn=self.listener_arn)
        props["actions"][0]["forward"]["targetGroups"][0]["arn"] = self.monolith_arn
        return f.resource(f.LISTENER_RULE, "task-service-rule", props)
